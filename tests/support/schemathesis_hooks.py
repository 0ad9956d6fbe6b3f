"""Hooks for ``schemathesis run`` against a served CareLedger (the run's config names this module).

They teach the generator what the OpenAPI document states in words a regular expression cannot
carry, as a real client would send it; none of them touches a check or a response:

- ``format: eip55-address``: an address is ``0x`` and 40 hex digits and, in mixed case, its EIP-55
  checksum. Drawn from the pattern alone, a mixed-case address almost never has a valid checksum
  (and the server refuses it, as it should: a mistyped address is never granted consent).
- ``Idempotency-Key``: a client sends one key per distinct request. Generated headers repeat the
  same few keys with different bodies, which the server rightly answers with 422
  ``idempotency_key_reused``; each valid key is therefore made unique to its request's body, so a
  repeated request still replays its first answer.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

import schemathesis
from eth_utils import to_checksum_address
from hypothesis import strategies as st

from api.idempotency import KEY_PATTERN, MAX_KEY_LENGTH
from ledger.values import ADDRESS_FORMAT

IDEMPOTENCY_KEY = "Idempotency-Key"
_KEY = re.compile(KEY_PATTERN)
_SUFFIX_LENGTH = 17  # "." and 16 hex digits of the body's hash


def _address(raw: bytes, spelling: str) -> str:
    if spelling == "checksum":
        return str(to_checksum_address(raw))
    return "0x" + (raw.hex().upper() if spelling == "upper" else raw.hex())


schemathesis.openapi.format(
    ADDRESS_FORMAT,
    st.builds(_address, st.binary(min_size=20, max_size=20), st.sampled_from(["checksum", "lower", "upper"])),
)


def _request_hash(case: schemathesis.Case) -> str:
    body = json.dumps(case.body, default=repr)  # in the order sent: the server hashes the bytes
    return hashlib.sha256(f"{case.method} {case.formatted_path}\n{body}".encode()).hexdigest()[:16]


@schemathesis.hook
def before_call(context: schemathesis.HookContext, case: schemathesis.Case, kwargs: dict[str, Any]) -> None:
    """Make a valid ``Idempotency-Key`` unique to the request it comes with (an invalid one is left
    as generated: it is there to be refused)."""
    headers = case.headers or {}
    name = next((n for n in headers if n.lower() == IDEMPOTENCY_KEY.lower()), None)
    if name is None:
        return
    key = headers[name]
    if not isinstance(key, str) or len(key) > MAX_KEY_LENGTH or not _KEY.fullmatch(key):
        return
    headers[name] = f"{key.strip()[: MAX_KEY_LENGTH - _SUFFIX_LENGTH]}.{_request_hash(case)}"
