"""Receipts: issued for every record of a batch, verified locally and on chain, tamper named."""

from __future__ import annotations

from typing import Any

import pytest

from ledger.exceptions import InputError, InvalidProofError
from ledger.records.anchoring import RecordInBatch
from ledger.records.hashing import commitment, digest_json, leaf_hash, new_salt
from ledger.records.receipts import Receipt, anchor_batch, verify_receipt
from ledger.runtime import Ledger

DOCUMENTS = [{"resourceType": "Observation", "id": str(i), "valueQuantity": {"value": i}} for i in range(6)]


@pytest.fixture
def anchored(ledger: Ledger) -> list[Receipt]:
    records = [(new_salt(), digest_json(doc)) for doc in DOCUMENTS]
    return anchor_batch(ledger.anchors, records, ledger.anchorer())


def in_batch(receipt: Receipt) -> RecordInBatch:
    return RecordInBatch(receipt.root, commitment(receipt.salt, receipt.digest), tuple(receipt.proof))


def flip(value: bytes, index: int = 0) -> bytes:
    return value[:index] + bytes([value[index] ^ 1]) + value[index + 1 :]


def tampered(receipt: Receipt, **changes: Any) -> Receipt:
    return Receipt.parse({**receipt.to_dict(), **changes})


def failed_checks(receipt: Receipt, ledger: Ledger, **kwargs: Any) -> list[str]:
    return [c.name for c in verify_receipt(receipt, anchors=ledger.anchors, **kwargs).failures]


def test_every_receipt_verifies_with_its_document(ledger: Ledger, anchored: list[Receipt]) -> None:
    roots = {r.root for r in anchored}
    assert len(roots) == 1 and all(r.leaf_count == len(DOCUMENTS) for r in anchored)
    for doc, receipt in zip(DOCUMENTS, anchored, strict=True):
        result = verify_receipt(
            Receipt.parse(receipt.to_json()), document_digest=digest_json(doc), anchors=ledger.anchors
        )
        assert result.valid, result.failures
        assert [c.name for c in result.checks] == [
            "digest",
            "leaf",
            "proof",
            "chain",
            "contract",
            "anchored",
            "anchorer_role",
            "block",
            "anchorer",
            "time",
            "transaction",
            "leaf_count",
            "contract_verdict",
        ]  # every claim the receipt makes
        assert result.amended_by is None and result.retraction_reason is None


def test_receipt_json_holds_no_document_content(anchored: list[Receipt]) -> None:
    text = anchored[0].to_json()
    assert "Observation" not in text and "valueQuantity" not in text
    assert set(anchored[0].to_dict()) == {
        "type",
        "version",
        "chainId",
        "contract",
        "transactionHash",
        "blockNumber",
        "anchoredAt",
        "anchorer",
        "root",
        "leafCount",
        "leaf",
        "proof",
        "digestAlgorithm",
        "digest",
        "salt",
        "treeFormat",
        "leafEncoding",
    }


def test_single_record_is_a_batch_of_one(ledger: Ledger) -> None:
    salt, digest = new_salt(), digest_json({"resourceType": "Patient"})
    (receipt,) = anchor_batch(ledger.anchors, [(salt, digest)], ledger.anchorer())
    assert receipt.root == receipt.leaf == leaf_hash(salt, digest) and receipt.proof == []
    assert verify_receipt(receipt, anchors=ledger.anchors).valid


@pytest.mark.parametrize(
    ("change", "failing"),
    [
        (lambda r: {"digest": "0x" + flip(r.digest).hex()}, ["leaf", "contract_verdict"]),
        (lambda r: {"salt": "0x" + flip(r.salt, 31).hex()}, ["leaf", "contract_verdict"]),
        (lambda r: {"leaf": "0x" + flip(r.leaf).hex()}, ["leaf", "proof"]),
        (
            lambda r: {"proof": ["0x" + flip(r.proof[0]).hex(), *("0x" + p.hex() for p in r.proof[1:])]},
            ["proof", "contract_verdict"],
        ),
        (lambda r: {"proof": ["0x" + p.hex() for p in r.proof[:-1]]}, ["proof", "contract_verdict"]),
        (lambda r: {"root": "0x" + flip(r.root).hex()}, ["proof", "anchored"]),
        (lambda r: {"blockNumber": r.block_number + 1}, ["block"]),
        (lambda r: {"anchoredAt": r.anchored_at - 1}, ["time"]),
        (lambda r: {"anchorer": "0x" + "11" * 20}, ["anchored"]),  # anchors are keyed by account
        (lambda r: {"chainId": r.chain_id + 1}, ["chain"]),
        (lambda r: {"contract": "0x" + "22" * 20}, ["contract"]),
    ],
    ids=[
        "digest",
        "salt",
        "leaf",
        "proof-sibling",
        "truncated-proof",
        "root",
        "block",
        "time",
        "anchorer",
        "chain-id",
        "contract",
    ],
)
def test_tampered_receipt_names_the_failing_step(
    ledger: Ledger, anchored: list[Receipt], change: Any, failing: list[str]
) -> None:
    receipt = anchored[2]
    assert failed_checks(tampered(receipt, **change(receipt)), ledger) == failing


def test_changed_document_fails_at_the_digest(ledger: Ledger, anchored: list[Receipt]) -> None:
    changed = {**DOCUMENTS[1], "valueQuantity": {"value": 999}}
    assert failed_checks(anchored[1], ledger, document_digest=digest_json(changed)) == ["digest"]
    reserialised = {"valueQuantity": {"value": 1.0}, "id": "1", "resourceType": "Observation"}
    assert failed_checks(anchored[1], ledger, document_digest=digest_json(reserialised)) == []


def test_amendment_and_retraction_are_reported(ledger: Ledger, anchored: list[Receipt]) -> None:
    anchorer = ledger.anchorer()
    original, corrected = anchored[0], anchored[1]
    ledger.anchors.amend(in_batch(original), in_batch(corrected), anchorer)
    ledger.anchors.retract(in_batch(anchored[2]), "ENTERED_IN_ERROR", anchorer)
    amended = verify_receipt(original, anchors=ledger.anchors)
    assert amended.valid and amended.amended_by == "0x" + corrected.leaf.hex()
    retracted = verify_receipt(anchored[2], anchors=ledger.anchors)
    assert retracted.valid and retracted.retraction_reason == "ENTERED_IN_ERROR"


@pytest.mark.parametrize(
    "bad",
    [
        {"root": "0x1234"},
        {"salt": "not hex"},
        {"proof": "0x" + "00" * 32},
        {"unexpected": 1},
        {"version": 3},
        {"blockNumber": -1},
        {"contract": "0xnotanaddress"},
        {"salt": "0x" + "11" * 31 + "  "},  # 66 characters, but whitespace makes it 31 bytes
        {"root": "0x" + "11" * 31 + " 1"},
    ],
)
def test_malformed_receipt_is_an_input_error(anchored: list[Receipt], bad: dict[str, Any]) -> None:
    with pytest.raises(InvalidProofError) as caught:
        Receipt.parse({**anchored[0].to_dict(), **bad})
    assert isinstance(caught.value, InputError) and caught.value.details["errors"]


def test_not_json_is_an_input_error() -> None:
    with pytest.raises(InvalidProofError):
        Receipt.parse(b"{not json")
