"""The receipt's published JSON Schema: what the model and the fast parser accept, versioned, and
old versions refused with a clear message."""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

import jsonschema
import pytest

from ledger.auditor.receipt_format import parse_receipt
from ledger.exceptions import InvalidProofError
from ledger.records.receipts import OLD_VERSION_PROBLEM, RECEIPT_VERSION, SCHEMA_FILE, Receipt, receipt_schema

SCHEMA = json.loads(resources.files("ledger.records").joinpath(SCHEMA_FILE).read_text())


def test_the_committed_schema_is_the_models() -> None:
    assert receipt_schema() == SCHEMA, "regenerate ledger/records/receipt.schema.json from receipt_schema()"
    assert SCHEMA["$id"].endswith(f":v{RECEIPT_VERSION}") and SCHEMA["properties"]["version"]["const"] == 2


def _receipt() -> dict[str, Any]:
    return Receipt(
        chain_id=1,
        contract="0x" + "11" * 20,
        transaction_hash=b"\x22" * 32,
        block_number=7,
        anchored_at=1_700_000_000,
        anchorer="0x" + "33" * 20,
        root=b"\x44" * 32,
        leaf_count=1,
        leaf=b"\x44" * 32,
        proof=[],
        digest=b"\x55" * 32,
        salt=b"\x66" * 32,
    ).to_dict()


def test_issued_receipts_conform_and_tampered_shapes_do_not() -> None:
    receipt = _receipt()
    jsonschema.validate(receipt, SCHEMA)
    parse_receipt(json.dumps(receipt))  # the fast parser accepts what the schema does
    for bad in ({**receipt, "root": "0x12"}, {**receipt, "extra": 1}, {**receipt, "version": 3}):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(bad, SCHEMA)
        with pytest.raises(InvalidProofError):
            parse_receipt(json.dumps(bad))
        with pytest.raises(InvalidProofError):
            Receipt.parse(bad)


def test_a_version_1_receipt_is_refused_with_a_reason() -> None:
    old = {**_receipt(), "version": 1}
    with pytest.raises(InvalidProofError) as model:
        Receipt.parse(old)
    with pytest.raises(InvalidProofError) as fast:
        parse_receipt(json.dumps(old))
    assert OLD_VERSION_PROBLEM in model.value.message and OLD_VERSION_PROBLEM in fast.value.message
