"""A payload to its digest: one function for registering and for verifying."""

from __future__ import annotations

import base64

import pytest

from ledger.exceptions import InputError
from ledger.records.hashing import digest_bytes, digest_json
from ledger.records.payloads import payload_digest


def test_each_kind_of_payload_gives_its_digest() -> None:
    document = {"resourceType": "Observation", "status": "final"}
    assert payload_digest(document=document) == digest_json(document)
    assert payload_digest(content=base64.b64encode(b"%PDF-1.7").decode()) == digest_bytes(b"%PDF-1.7")
    assert payload_digest(digest="0x" + "ab" * 32) == bytes.fromhex("ab" * 32)
    assert payload_digest() is None


@pytest.mark.parametrize("content", ["%%%", "YWJj=x", "not base64!"])
def test_content_that_is_not_base64_is_an_input_error(content: str) -> None:
    with pytest.raises(InputError) as caught:
        payload_digest(content=content)
    assert caught.value.details["field"] == "content"
