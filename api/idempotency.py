"""``Idempotency-Key``: a repeated POST returns the first answer and writes nothing twice.

The stored answer is written in the same intake submission as the request's records, so either
both are durable or neither is. Keys are scoped to the calling app and remembered for the
configured time (``idempotency_key_ttl``, a day by default); after that a key is new again. A key
reused for a different request (other path or body) is a 422 ``idempotency_key_reused``, as the
IETF Idempotency-Key draft asks.
"""

from __future__ import annotations

import hashlib
import re
import time
from typing import Any

import orjson
from fastapi.responses import Response

from ledger.exceptions import IdempotencyKeyReusedError, InputError
from ledger.store.database import Database
from ledger.store.idempotency import answer_statements, stored_answer
from ledger.store.intake import Statement

MAX_KEY_LENGTH = 255
KEY_PATTERN = r"^[ -~]*[!-~][ -~]*$"
"""Visible ASCII, spaces between (HTTP servers strip the spaces around a header's value)."""
_KEY = re.compile(KEY_PATTERN)


def request_hash(method: str, path: str, body: bytes) -> bytes:
    return hashlib.sha256(method.encode() + b" " + path.encode() + b"\n" + body).digest()


def check_key(key: str | None) -> str | None:
    if key is None:
        return None
    if len(key) > MAX_KEY_LENGTH or not _KEY.fullmatch(key):
        raise InputError(
            f"Idempotency-Key must be 1-{MAX_KEY_LENGTH} visible ASCII characters", field="Idempotency-Key"
        )
    return key


def replay(db: Database, app_id: int, key: str, fingerprint: bytes, *, ttl: float) -> Response | None:
    """The stored answer for this key, or None if the key is new (or expired). Raises if the key
    answered another request."""
    stored = stored_answer(db.conn, app_id, key, since=time.time() - ttl)
    if stored is None:
        return None
    if stored.request_hash != fingerprint:
        raise IdempotencyKeyReusedError("this Idempotency-Key was used for a different request", idempotency_key=key)
    return Response(
        content=stored.body,
        status_code=stored.status_code,
        media_type="application/json",
        headers={"Idempotent-Replayed": "true"},
    )


def remember(
    app_id: int, key: str, fingerprint: bytes, status_code: int, body: Any, *, ttl: float
) -> tuple[list[Statement], bytes]:
    """The statements that store the answer (over an expired one of the same key), and the answer's bytes."""
    encoded = orjson.dumps(body)
    now = time.time()
    return answer_statements(app_id, key, fingerprint, status_code, encoded, now=now, expired_before=now - ttl), encoded
