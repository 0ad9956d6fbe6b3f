"""Attacks by one consortium member on another's records, through the running service (issue 12).

Org A registers records through the API; Org B is another organisation of the same consortium with
its own anchoring key (``ANCHORER_ROLE``), which uses it directly on the contract, as any member
can. Whatever B does, a change only A may make never shows on A's records.
"""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from api.service import Service
from ledger.auditor.chain_reader import open_reader
from ledger.auditor.verify import ChainFacts, verify_one
from ledger.records.anchoring import RecordInBatch
from ledger.records.hashing import commitment, digest_bytes, leaf_hash, new_salt
from ledger.records.merkle import MerkleTree
from ledger.records.receipts import Receipt
from ledger.store.apps import Role
from tests.api.conftest import PATIENT, MakeApp
from tests.api.test_records_api import DOC, receipt_of

REASON = "ENTERED_IN_ERROR"


def register(client: TestClient, headers: dict[str, str], value: int) -> str:
    """Register one observation with heart rate ``value``; its record id."""
    document = {**DOC, "valueQuantity": {"value": value, "unit": "/min"}}
    answer = client.post("/v1/records", json={"patient": PATIENT, "document": document}, headers=headers)
    assert answer.status_code == 202, answer.text
    record_id: str = answer.json()["recordId"]
    return record_id


def in_tree(receipt: Receipt, tree: MerkleTree) -> RecordInBatch:
    """A's record (its salt and digest are in its receipt) as a leaf of another tree."""
    return RecordInBatch(
        tree.root, commitment(receipt.salt, receipt.digest), tuple(tree.proof(leaf_hash(receipt.salt, receipt.digest)))
    )


def verdict(client: TestClient, receipt: Receipt) -> dict[str, Any]:
    """The public ``/v1/verify`` answer for a receipt."""
    answer = client.post("/v1/verify", json={"receipt": receipt.to_dict()})
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def test_another_member_cannot_retract_or_amend_a_record_through_a_root_of_its_own(
    client: TestClient, service: Service, make_app: MakeApp
) -> None:
    """The attack of issue 12, point 1: B anchors ``[leafA1, leafA2, leafB]`` and retracts A1 and amends
    A2 against its own root. A's records stay as they were, to the public verifier and to A."""
    headers_a, org_a = make_app({Role.REGISTRAR, Role.READER}, organisation="Org A Hospital")
    _, org_b = make_app({Role.REGISTRAR}, organisation="Org B Clinic")
    ids = [register(client, headers_a, value) for value in (71, 72)]
    receipt_a1, receipt_a2 = (Receipt.parse(receipt_of(client, headers_a, record_id)) for record_id in ids)
    b = service.signer_for(org_b.id)
    salt_b, digest_b = new_salt(), digest_bytes(b"org B's own record")
    leaf_b = leaf_hash(salt_b, digest_b)
    tree_b = MerkleTree.from_leaves([receipt_a1.leaf, receipt_a2.leaf, leaf_b])
    anchors = service.ledger.anchors
    anchors.anchor(tree_b.root, tree_b.leaf_count, b)
    own_b = RecordInBatch(tree_b.root, commitment(salt_b, digest_b), tuple(tree_b.proof(leaf_b)))

    anchors.retract(in_tree(receipt_a1, tree_b), REASON, b)  # allowed: B's own anchoring of those leaves
    anchors.amend(in_tree(receipt_a2, tree_b), own_b, b)
    service.index_now()

    for receipt in (receipt_a1, receipt_a2):
        answer = verdict(client, receipt)
        assert answer["match"] is True and answer["organisation"] == org_a.name, answer
        assert (answer["retracted"], answer["retractionReason"], answer["amendedBy"]) == (False, None, None)
        by_document = client.post("/v1/verify", json={"digest": "0x" + receipt.digest.hex()}).json()
        (anchoring,) = by_document["anchorings"]
        assert (anchoring["organisation"], anchoring["anchorer"]) == (org_a.name, org_a.address)
        assert (anchoring["retracted"], anchoring["amendedBy"]) == (False, None)
    with open_reader(rpc_url=service.settings.rpc_url, data_dir=service.settings.data_dir) as reader:
        facts = ChainFacts(reader)
        for receipt in (receipt_a1, receipt_a2):
            audited = verify_one(receipt.to_json(), facts=facts)
            assert audited.valid and (audited.amended_by, audited.retraction_reason) == (None, None)
    # A itself can still retract its own record, and only that shows.
    assert client.post(f"/v1/records/{ids[0]}/retract", json={"reason": "DUPLICATE"}, headers=headers_a).status_code
    service.batcher.run_once()
    service.index_now()
    answer = verdict(client, receipt_a1)
    assert (answer["match"], answer["retracted"], answer["retractionReason"]) == (True, True, "DUPLICATE")
