"""Attacks by one consortium member on another's records, through the running service (issue 12).

Org A registers records through the API; Org B is another organisation of the same consortium with
its own anchoring key (``ANCHORER_ROLE``), which uses it directly on the contract, as any member
can. Whatever B does, A's records stay anchored by A, its receipts name A and verify, and a change
only A may make never shows on A's records. Amendments and retractions follow one rule in the
store and the API too: a record is changed at most once (amended or retracted, not both).
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from api.service import Service
from ledger.auditor.chain_reader import open_reader
from ledger.auditor.cli import app as audit_app
from ledger.auditor.verify import ChainFacts, verify_one
from ledger.records.anchoring import RecordInBatch
from ledger.records.hashing import commitment, digest_bytes, leaf_hash, new_salt
from ledger.records.merkle import MerkleTree, merkle_root
from ledger.records.receipts import Receipt
from ledger.store.apps import Organisation, Role
from ledger.store.export import export_index
from ledger.store.records import StoredRecord, get_record, seal_batch
from tests.api.conftest import PATIENT, MakeApp
from tests.api.test_records_api import DOC, receipt_of
from tests.support.chain_under_test import ChainUnderTest, rpc

REASON = "ENTERED_IN_ERROR"
runner = CliRunner()


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


@dataclass(frozen=True)
class ForeignChanges:
    """A's two records, which B retracted (A1) and amended (A2) through copies in a root of its own."""

    headers_a: dict[str, str]
    org_a: Organisation
    org_b: Organisation
    ids: list[str]
    receipts: tuple[Receipt, Receipt]


def b_changes_copies_of_a_records(client: TestClient, service: Service, make_app: MakeApp) -> ForeignChanges:
    """The attack of issue 12, point 1: B anchors ``[leafA1, leafA2, leafB]`` and retracts A1 and amends
    A2 against its own root (the contract allows it: those are B's anchorings of the leaves)."""
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

    anchors.retract(in_tree(receipt_a1, tree_b), REASON, b)
    anchors.amend(in_tree(receipt_a2, tree_b), own_b, b)
    service.index_now()
    return ForeignChanges(headers_a, org_a, org_b, ids, (receipt_a1, receipt_a2))


def test_another_member_cannot_retract_or_amend_a_record_through_a_root_of_its_own(
    client: TestClient, service: Service, make_app: MakeApp
) -> None:
    """B's changes of copies of A's leaves leave A's records as they were, to the public verifier and to A."""
    attack = b_changes_copies_of_a_records(client, service, make_app)
    headers_a, org_a, ids = attack.headers_a, attack.org_a, attack.ids
    receipt_a1, receipt_a2 = attack.receipts

    for receipt in (receipt_a1, receipt_a2):
        answer = verdict(client, receipt)
        assert answer["match"] is True and answer["organisation"] == org_a.name, answer
        assert (answer["retracted"], answer["retractionReason"], answer["amendedBy"]) == (False, None, None)
        by_digest = client.post("/v1/verify/lookup", json={"digest": "0x" + receipt.digest.hex()}, headers=headers_a)
        (anchoring,) = by_digest.json()["anchorings"]
        assert (anchoring["organisation"], anchoring["anchorer"]) == (org_a.name, org_a.address)
        assert (anchoring["retracted"], anchoring["amendedBy"]) == (False, None)
    with open_reader(rpc_url=service.settings.rpc_url_text, data_dir=service.settings.data_dir) as reader:
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


def test_the_auditor_reports_the_changes_another_member_recorded_of_a_records_leaves(
    client: TestClient, service: Service, make_app: MakeApp, tmp_path: Path, chain_under_test: ChainUnderTest
) -> None:
    """Issue 12: changes count only when made by the record's anchorer, and the auditor reports the
    others. ``audit --index`` on A's index names both of B's changes (``change_by_other_account``,
    exit 1); ``verify`` of A's receipt stays VALID and lists B's change as a discrepancy. Before,
    ``audit`` said "no discrepancies" and ``verify`` VALID with a note that the record was retracted."""
    attack = b_changes_copies_of_a_records(client, service, make_app)
    index = tmp_path / "index.sqlite3"
    export_index(service.db, index)
    chain = ["--data-dir", str(service.settings.data_dir), *chain_under_test.rpc_options()]

    audited = runner.invoke(audit_app, ["audit", *chain, "--index", str(index), "--output", "json"])
    assert audited.exit_code == 1, audited.output
    report = json.loads(audited.stdout)
    foreign = [d for d in report["discrepancies"] if d["kind"] == "change_by_other_account"]
    # B is an organisation of this service too, so its root anchored behind the service's back is also missing
    # from the index (and its leaf total differs): reported as well.
    assert report["discrepancyCounts"] == {
        "chain_root_missing_from_index": 1,
        "change_by_other_account": 2,
        "leaf_total_mismatch": 1,
    }, report["discrepancies"]
    assert sorted(d["subject"] for d in foreign) == sorted(f"record {record_id}" for record_id in attack.ids)
    b_account = attack.org_b.address.lower()
    assert {d["actual"].split(" in root")[0] for d in foreign} == {
        f"retraction by {b_account}",
        f"amendment by {b_account}",
    }

    receipt_file = tmp_path / "a1.receipt.json"
    receipt_file.write_text(attack.receipts[0].to_json())
    verified = runner.invoke(audit_app, ["verify", "--receipt", str(receipt_file), *chain, "--output", "json"])
    assert verified.exit_code == 0, verified.output
    outcome = json.loads(verified.stdout)
    assert outcome["valid"] is True and outcome["retractionReason"] is None
    (line,) = outcome["foreignChanges"]
    assert line.startswith(f"{attack.org_b.address} recorded a retraction of this record's leaf"), line
    assert "discrepancy" in verified.stderr


def anchored_by(service: Service, record_ids: list[str], org: Organisation) -> list[Receipt]:
    """Receipts of ``record_ids``, checked to name ``org``'s account and to verify (API and auditor)."""
    receipts = []
    for record_id in record_ids:
        record = service.receipt_of(_stored(service, record_id))
        assert record is not None, f"record {record_id} has no receipt"
        assert record.anchorer == org.address, (record.anchorer, org.address)
        receipts.append(record)
    return receipts


def _stored(service: Service, record_id: str) -> StoredRecord:
    record = get_record(service.db.conn, record_id)
    assert record is not None
    return record


def test_a_member_anchoring_a_sealed_root_first_neither_blocks_nor_is_credited(
    client: TestClient, service: Service, make_app: MakeApp
) -> None:
    """The attack of issue 12, point 2: B sees A's sealed root (in the pool, every node does) and
    anchors it first. A's batcher anchors the root itself: A's receipts name A, verify, and A can
    still retract its own record."""
    service.batcher.stop()  # the test orders the steps: seal, B's anchor, A's batcher
    headers_a, org_a = make_app({Role.REGISTRAR, Role.READER}, organisation="Org A Hospital")
    _, org_b = make_app({Role.REGISTRAR}, organisation="Org B Clinic")
    ids = [register(client, headers_a, value) for value in (60, 61, 62)]
    batch = seal_batch(service.db.conn, org_a.id, 100, merkle_root)
    assert batch is not None and batch.leaf_count == 3
    hijack = service.ledger.anchors.anchor(batch.root, batch.leaf_count, service.signer_for(org_b.id))
    assert hijack.anchorer == org_b.address

    assert service.batcher.run_once() == 1
    receipts = anchored_by(service, ids, org_a)
    assert all(r.transaction_hash != hijack.tx_hash for r in receipts)
    for receipt in receipts:
        answer = verdict(client, receipt)
        assert answer["match"] is True and answer["organisation"] == org_a.name, answer
    with open_reader(rpc_url=service.settings.rpc_url_text, data_dir=service.settings.data_dir) as reader:
        facts = ChainFacts(reader)
        assert all(verify_one(r.to_json(), facts=facts).valid for r in receipts)
    retracted = client.post(f"/v1/records/{ids[0]}/retract", json={"reason": REASON}, headers=headers_a)
    assert retracted.status_code == 202, retracted.text
    service.batcher.run_once()
    service.index_now()
    record = client.get(f"/v1/records/{ids[0]}", headers=headers_a).json()
    assert record["retraction"]["state"] == "done", record
    assert verdict(client, receipts[0])["retracted"] is True


def test_a_front_run_in_the_same_block_neither_blocks_nor_is_credited(
    client: TestClient, service: Service, make_app: MakeApp, chain_under_test: ChainUnderTest
) -> None:
    """The hijack as a node's pool allows it: with automine off, B sends the anchoring of A's sealed
    root with a higher tip while A's batcher sends its own; one block holds both, B's first. A's
    transaction succeeds all the same and A's receipts name A."""
    url = chain_under_test.rpc_url
    if url is None:
        pytest.skip("orders transactions within a block: needs a node with automine off (CARELEDGER_TEST_CHAIN=anvil)")
    service.batcher.stop()
    headers_a, org_a = make_app({Role.REGISTRAR, Role.READER}, organisation="Org A Hospital")
    _, org_b = make_app({Role.REGISTRAR}, organisation="Org B Clinic")
    ids = [register(client, headers_a, value) for value in (90, 91, 92)]
    batch = seal_batch(service.db.conn, org_a.id, 100, merkle_root)
    assert batch is not None
    b, chain = service.signer_for(org_b.id), service.ledger.chain
    rpc(url, "evm_setAutomine", False)
    try:
        tip = 100 * 10**9
        front_run = service.ledger.anchors.contract.functions.anchor(batch.root, batch.leaf_count).build_transaction(
            {
                "from": b.address,
                "nonce": chain.w3.eth.get_transaction_count(b.address, "pending"),
                "gas": 200_000,
                "maxPriorityFeePerGas": tip,
                "maxFeePerGas": 4 * chain.w3.eth.get_block("latest")["baseFeePerGas"] + tip,
                "chainId": chain.chain_id,
            }
        )
        front_run_hash = rpc(url, "eth_sendRawTransaction", b.sign_transaction(front_run).raw_transaction.to_0x_hex())
        anchored: list[object] = []
        batcher = threading.Thread(target=lambda: anchored.append(service.batcher.run_once()))
        batcher.start()
        deadline = time.monotonic() + 30
        while int(rpc(url, "txpool_status")["pending"], 16) < 2:
            assert time.monotonic() < deadline and batcher.is_alive(), anchored
            time.sleep(0.02)
        rpc(url, "evm_mine")
        batcher.join(60)
    finally:
        rpc(url, "evm_setAutomine", True)
    assert anchored == [1]
    receipts = anchored_by(service, ids, org_a)
    hijack = chain.transaction_receipt(bytes.fromhex(front_run_hash[2:]))
    own = chain.transaction_receipt(receipts[0].transaction_hash)
    assert hijack["status"] == own["status"] == 1
    assert hijack["blockNumber"] == own["blockNumber"] and hijack["transactionIndex"] < own["transactionIndex"]
    for receipt in receipts:
        answer = verdict(client, receipt)
        assert answer["match"] is True and answer["organisation"] == org_a.name, answer


def test_an_unusable_anchor_of_our_own_is_not_adopted_the_batch_is_resealed(
    client: TestClient, service: Service, make_app: MakeApp
) -> None:
    """If the root under A's own account is already taken by something the batcher did not send (here
    A's key anchoring it with another leaf count), the batcher adopts nothing: it mixes a fresh
    padding leaf into the batch and anchors the new root, so every claim of the receipts holds."""
    service.batcher.stop()
    headers_a, org_a = make_app({Role.REGISTRAR, Role.READER}, organisation="Org A Hospital")
    ids = [register(client, headers_a, value) for value in (80, 81)]
    batch = seal_batch(service.db.conn, org_a.id, 100, merkle_root)
    assert batch is not None
    stray = service.ledger.anchors.anchor(batch.root, batch.leaf_count + 5, service.signer_for(org_a.id))

    assert service.batcher.run_once() == 1
    receipts = anchored_by(service, ids, org_a)
    assert {r.root for r in receipts} != {batch.root} and all(r.transaction_hash != stray.tx_hash for r in receipts)
    with open_reader(rpc_url=service.settings.rpc_url_text, data_dir=service.settings.data_dir) as reader:
        facts = ChainFacts(reader)
        for receipt in receipts:
            audited = verify_one(receipt.to_json(), facts=facts)
            assert audited.valid, audited.failures
    for receipt in receipts:
        assert verdict(client, receipt)["match"] is True


def test_concurrent_amend_and_retract_of_one_record_accept_exactly_one(
    client: TestClient, service: Service, make_app: MakeApp
) -> None:
    """Issue 12, point 4: ten records, each sent an amendment and a retraction at the same moment.
    Exactly one of each pair is accepted; the other is 409 ``already_changed`` (the store's
    one-change-per-record constraint decides when both passed the check)."""
    headers, _ = make_app({Role.REGISTRAR, Role.READER})
    record_ids = [register(client, headers, 100 + n) for n in range(10)]
    app = client.app

    async def race(record_id: str) -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
        async with httpx.AsyncClient(transport=transport, base_url="http://test", headers=headers) as http:
            corrected = {"patient": PATIENT, "document": {**DOC, "status": "amended"}}
            return list(
                await asyncio.gather(
                    http.post(f"/v1/records/{record_id}/amend", json=corrected),
                    http.post(f"/v1/records/{record_id}/retract", json={"reason": REASON}),
                )
            )

    async def all_races() -> list[list[httpx.Response]]:
        return [await race(record_id) for record_id in record_ids]

    outcomes = client.portal.call(all_races)  # type: ignore[union-attr]  # on the app's own event loop
    decided_by_store = 0
    for record_id, answers in zip(record_ids, outcomes, strict=True):
        statuses = sorted(a.status_code for a in answers)
        assert statuses == [202, 409], (record_id, [(a.status_code, a.text) for a in answers])
        (refused,) = [a for a in answers if a.status_code == 409]
        assert refused.json()["code"] == "already_changed", refused.text
        decided_by_store += "concurrent request" in refused.json()["message"]
        (changes,) = service.db.conn.execute(
            "SELECT COUNT(*) FROM record_changes WHERE record_id = ?", (record_id,)
        ).fetchone()
        assert changes == 1
    assert decided_by_store > 0, "no pair raced past the API's check: the store's constraint was never tried"
    amendments = sum(a.status_code == 202 and "amends" in a.json() for answers in outcomes for a in answers)
    (records,) = service.db.conn.execute("SELECT COUNT(*) FROM records").fetchone()
    assert records == len(record_ids) + amendments  # a refused amendment left no replacement behind
    # and the accepted change is the one that reaches the chain, once
    service.batcher.run_once()
    for record_id in record_ids:
        assert receipt_of(client, headers, record_id)
    service.batcher.run_once()
    rows = service.db.conn.execute("SELECT state, error FROM record_changes").fetchall()
    assert len(rows) == 10 and {tuple(r) for r in rows} == {("done", None)}, rows
