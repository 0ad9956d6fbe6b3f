"""The fast receipt parser accepts exactly what the pydantic model accepts, and the memoised proof
walk gives exactly ``ledger.records.merkle.process_proof``'s root."""

from __future__ import annotations

import json
import random
from typing import Any

import pytest

from ledger.auditor.receipt_format import LocalVerifier, parse_receipt
from ledger.exceptions import InvalidProofError
from ledger.records.hashing import digest_bytes, new_salt
from ledger.records.merkle import MerkleTree, process_proof
from ledger.records.receipts import Receipt
from tests.ledger.auditor.conftest import Scenario

MALFORMED: list[tuple[str, Any, str]] = [
    ("root", "0x12", "root"),
    ("root", "0x" + "zz" * 32, "root"),
    ("root", " 0x" + "11" * 32 + " ", "root"),
    ("salt", "0x" + "11 " * 21 + "1", "salt"),
    ("leaf", 42, "leaf"),
    ("proof", "0x" + "11" * 32, "proof"),
    ("proof", ["0x" + "11" * 31 + "1"], "proof"),
    ("proof", ["0x" + "11" * 32] * 65, "proof"),
    ("chainId", 0, "chainId"),
    ("blockNumber", -1, "blockNumber"),
    ("leafCount", 0, "leafCount"),
    ("anchorer", "0x1234", "anchorer"),
    ("contract", "0x" + "aB" * 20, "contract"),
    ("version", 3, "version"),
    ("version", 1, "version"),
    ("digestAlgorithm", "sha-1", "digestAlgorithm"),
    ("extra", 1, "extra"),
]


@pytest.mark.parametrize(("field", "value", "named"), MALFORMED, ids=[f"{f}={v!r}"[:40] for f, v, _ in MALFORMED])
def test_malformed_receipts_are_refused_like_the_model_does(
    scenario: Scenario, field: str, value: Any, named: str
) -> None:
    data = {**scenario.receipts[0].to_dict(), field: value}
    text = json.dumps(data)
    with pytest.raises(InvalidProofError):
        Receipt.parse(text)
    with pytest.raises(InvalidProofError) as caught:
        parse_receipt(text)
    assert caught.value.details["field"] == named


@pytest.mark.parametrize(("field", "value"), [("chainId", True), ("anchoredAt", "5"), ("blockNumber", 7.0)])
def test_numbers_must_be_json_integers(scenario: Scenario, field: str, value: Any) -> None:
    """Stricter than the model's lax mode, which coerces these: a receipt is machine-written."""
    with pytest.raises(InvalidProofError) as caught:
        parse_receipt(json.dumps({**scenario.receipts[0].to_dict(), field: value}))
    assert caught.value.details["field"] == field


@pytest.mark.parametrize("text", [b"", b"[]", b"{", b"null", b'{"chainId": 1}'])
def test_not_a_receipt_at_all(text: bytes) -> None:
    with pytest.raises(InvalidProofError):
        parse_receipt(text)


def test_valid_receipts_parse_to_the_models_values(scenario: Scenario) -> None:
    for receipt in scenario.receipts:
        for text in (
            receipt.to_json(),
            json.dumps({k: v for k, v in receipt.to_dict().items() if k not in ("type", "version", "treeFormat")}),
        ):
            parsed = parse_receipt(text)
            model = Receipt.parse(text)
            assert (parsed.claim.root, parsed.leaf, parsed.proof, parsed.digest, parsed.salt) == (
                model.root,
                model.leaf,
                tuple(model.proof),
                model.digest,
                model.salt,
            )
            assert (parsed.claim.anchorer, parsed.claim.contract, parsed.claim.block_number) == (
                model.anchorer,
                model.contract,
                model.block_number,
            )


def test_memoised_walk_equals_process_proof() -> None:
    rng = random.Random(7)
    trees = [
        MerkleTree.from_records([(new_salt(), digest_bytes(b"%d-%d" % (t, i))) for i in range(n)])
        for t, n in enumerate((1, 2, 3, 100, 257))
    ]
    verifier = LocalVerifier(memo_limit=500)  # small: the memo empties itself along the way
    cases = []
    for tree in trees:
        for leaf in tree.leaves:
            proof = tree.proof(leaf)
            cases.append((leaf, proof))
            if proof:
                broken = list(proof)
                broken[rng.randrange(len(proof))] = bytes(32)
                cases.append((leaf, broken))
                cases.append((leaf, proof[:-1]))
                cases.append((leaf, [*proof, tree.root]))
    rng.shuffle(cases)
    for leaf, proof in cases * 2:
        assert verifier.root_of(leaf, b"".join(proof)) == process_proof(leaf, proof)
