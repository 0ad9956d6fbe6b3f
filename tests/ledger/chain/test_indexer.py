"""The chain event index: complete, idempotent, chunk-size independent, rebuildable, and equal to a scan."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from typer.testing import CliRunner

from api.cli import app as cli
from ledger.chain.indexer import ChainIndexer
from ledger.consent.terms import ConsentKey, GrantTerms
from ledger.records.anchoring import UNCHANGED, RecordInBatch, RecordStatus
from ledger.records.hashing import commitment, digest_bytes, keccak256, leaf_hash, new_salt
from ledger.records.lookup import indexed_record_status
from ledger.records.merkle import MerkleTree
from ledger.runtime import Ledger
from ledger.store import Database, open_database
from ledger.store.chain_index import all_events, indexed_to, patient_events
from tests.support.chain_under_test import FAST_SCRYPT_N, ChainUnderTest

NewAccount = Callable[[], LocalAccount]
HOUR = 3600


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    store = open_database(tmp_path / "store")
    yield store
    store.close()


def indexer_for(ledger: Ledger, db: Database, *, chunk_blocks: int = 2_000, interval: float = 0.5) -> ChainIndexer:
    return ChainIndexer(db, ledger.consents, ledger.anchors, chunk_blocks=chunk_blocks, interval=interval)


def make_history(ledger: Ledger, new_account: NewAccount) -> tuple[LocalAccount, LocalAccount]:
    """A patient with a guardian, a grant, a revocation and a break-glass access; one anchored root."""
    patient, guardian, grantee = new_account(), new_account(), Account.create()
    now = ledger.chain.block_timestamp("latest")
    consents = ledger.consents
    consents.appoint_guardian(patient, guardian.address, now + HOUR)
    key = ConsentKey(patient.address, grantee.address, "Observation", "TREAT")
    consents.grant(GrantTerms(key, now - HOUR, now + HOUR), guardian)
    consents.revoke(key, patient)
    consents.remove_guardian(patient, guardian.address)
    emergency = ledger.anchorer("emergency-org")
    contract = consents.contract
    role = ledger.chain.call(contract.functions.EMERGENCY_ROLE())
    ledger.chain.transact(contract.functions.grantRole(role, emergency.address), ledger.admin)
    consents.record_emergency_access(emergency, patient.address, "*", "ETREAT", "UNCONSCIOUS")
    ledger.anchors.anchor(b"\x42" * 32, 3, emergency)
    return patient, guardian


def test_sync_indexes_every_event_once(ledger: Ledger, db: Database, new_account: NewAccount) -> None:
    patient, guardian = make_history(ledger, new_account)
    indexer = indexer_for(ledger, db)
    assert indexed_to(db.conn) is None
    added = indexer.sync()
    assert indexed_to(db.conn) == ledger.chain.block_number() == indexer.last_block()

    events = patient_events(db.conn, patient.address)
    assert [e.event for e in events] == [
        "GuardianAppointed",
        "ConsentGranted",
        "ConsentRevoked",
        "GuardianRemoved",
        "EmergencyAccessRecorded",
    ]
    assert events[1].fields["actor"] == guardian.address and events[1].fields["scope"] == "Observation"
    assert events[4].fields["reason"] == "UNCONSCIOUS" and events[4].fields["scope"] == "*"
    assert events[4].fields["purpose"] == "ETREAT"
    roots = [e for e in all_events(db.conn) if e.event == "RootAnchored"]
    assert len(roots) == 1 and roots[0].patient is None and roots[0].fields["root"] == "0x" + "42" * 32
    assert added == len(all_events(db.conn)) == 6

    before = all_events(db.conn)
    assert indexer.sync() == 0  # nothing new
    indexer.db.conn.execute("UPDATE chain_index_state SET last_block = ?", (ledger.deployment.deploy_block,))
    assert indexer.sync() == 0  # a range read twice adds nothing
    assert all_events(db.conn) == before


def test_indexed_record_status_is_the_anchorer_s_word_on_its_own_record(ledger: Ledger, db: Database) -> None:
    """Issue 12, point 1, in the index the public verifier reads: a retraction or amendment another
    account records of the same leaf (through a tree of its own) is not the record's; nor is one by
    the same account against another root. Only the anchorer's own change of its record shows."""
    org_a, org_b = ledger.anchorer(), ledger.anchorer("org-b")
    records = [(new_salt(), digest_bytes(b"record %d" % i)) for i in range(3)]
    tree_a = MerkleTree.from_records(records)
    ledger.anchors.anchor(tree_a.root, tree_a.leaf_count, org_a)
    (salt1, digest1), (salt2, digest2), _ = records
    leaf1, leaf2 = leaf_hash(salt1, digest1), leaf_hash(salt2, digest2)
    b_own = (new_salt(), digest_bytes(b"org B's record"))
    tree_b = MerkleTree.from_leaves([leaf1, leaf2, leaf_hash(*b_own)])
    ledger.anchors.anchor(tree_b.root, tree_b.leaf_count, org_b)

    def in_tree(tree: MerkleTree, salt: bytes, digest: bytes) -> RecordInBatch:
        return RecordInBatch(tree.root, commitment(salt, digest), tuple(tree.proof(leaf_hash(salt, digest))))

    ledger.anchors.retract(in_tree(tree_b, salt1, digest1), "ENTERED_IN_ERROR", org_b)
    ledger.anchors.amend(in_tree(tree_b, salt2, digest2), in_tree(tree_b, *b_own), org_b)
    indexer_for(ledger, db).sync()

    for leaf in (leaf1, leaf2):
        assert indexed_record_status(db.conn, org_a.address, tree_a.root, leaf) == UNCHANGED
        assert indexed_record_status(db.conn, org_b.address, tree_a.root, leaf) == UNCHANGED  # B never anchored it
    assert indexed_record_status(db.conn, org_b.address, tree_b.root, leaf1) == RecordStatus(None, "ENTERED_IN_ERROR")
    assert indexed_record_status(db.conn, org_b.address, tree_b.root, leaf2) == RecordStatus(
        leaf_hash(*b_own), None, tree_b.root
    )
    correction = in_tree(tree_a, *records[2])
    ledger.anchors.amend(in_tree(tree_a, salt1, digest1), correction, org_a)
    ledger.anchors.retract(in_tree(tree_a, salt2, digest2), "DUPLICATE", org_a)
    indexer_for(ledger, db).sync()
    assert indexed_record_status(db.conn, org_a.address.lower(), tree_a.root, leaf1) == RecordStatus(
        keccak256(correction.commitment), None, tree_a.root
    )
    assert indexed_record_status(db.conn, org_a.address, tree_a.root, leaf2) == RecordStatus(None, "DUPLICATE")
    for leaf in (leaf1, leaf2):  # both views agree, leaf by leaf
        for anchorer, root in (
            (org_a.address, tree_a.root),
            (org_b.address, tree_b.root),
            (org_b.address, tree_a.root),
        ):
            assert indexed_record_status(db.conn, anchorer, root, leaf) == ledger.anchors.record_status(
                anchorer, root, leaf
            )


def test_the_index_equals_a_scan_of_the_chain(ledger: Ledger, db: Database, new_account: NewAccount) -> None:
    patient, _ = make_history(ledger, new_account)
    indexer_for(ledger, db).sync()
    scanned = ledger.consents.history(patient.address)
    indexed = patient_events(db.conn, patient.address)
    assert [(e.kind, e.block_number, e.log_index, e.tx_hash, e.fields) for e in scanned] == [
        (e.event, e.block_number, e.log_index, e.tx_hash, e.fields) for e in indexed
    ]


def test_small_chunks_and_a_rebuild_give_the_same_index(
    ledger: Ledger, db: Database, tmp_path: Path, new_account: NewAccount
) -> None:
    make_history(ledger, new_account)
    indexer = indexer_for(ledger, db)
    indexer.sync()
    reference = all_events(db.conn)

    other = open_database(tmp_path / "other")
    try:
        chunked = indexer_for(ledger, other, chunk_blocks=1)
        chunked.sync()
        assert all_events(other.conn) == reference
    finally:
        other.close()

    assert indexer.rebuild() == len(reference)
    assert all_events(db.conn) == reference
    assert indexed_to(db.conn) == ledger.chain.block_number()


def test_the_background_thread_follows_the_head(ledger: Ledger, db: Database, new_account: NewAccount) -> None:
    indexer = indexer_for(ledger, db, interval=0.05)
    indexer.start()
    try:
        patient, _ = make_history(ledger, new_account)
        head = ledger.chain.block_number()
        deadline = time.monotonic() + 10
        while indexer.last_block() < head and time.monotonic() < deadline:
            time.sleep(0.02)
        assert len(patient_events(db.conn, patient.address)) == 5
        assert indexer.alive and indexer.last_error is None
    finally:
        indexer.stop()
    assert not indexer.alive


def test_chunk_size_must_be_positive(ledger: Ledger, db: Database) -> None:
    with pytest.raises(ValueError):
        indexer_for(ledger, db, chunk_blocks=0)


def test_the_cli_rebuilds_the_index_of_a_data_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, chain_under_test: ChainUnderTest
) -> None:
    for name, value in {"CARELEDGER_KEYSTORE_SCRYPT_N": str(FAST_SCRYPT_N), **chain_under_test.env()}.items():
        monkeypatch.setenv(name, value)
    data_dir = tmp_path / "data"
    result = CliRunner().invoke(cli, ["rebuild-index", "--data-dir", str(data_dir)])
    assert result.exit_code == 0, result.output
    assert "indexed" in result.output
    store = open_database(data_dir)
    try:
        assert indexed_to(store.conn) is not None
    finally:
        store.close()
