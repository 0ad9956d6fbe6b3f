"""Chain reorganisations: a receipt is final only after the configured confirmations, and a batch
whose anchoring transaction leaves the canonical chain is anchored again and its receipts reissued."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from api.service import Service
from ledger.records.lifecycle import standing_of
from ledger.records.receipts import verify_receipt
from ledger.store.database import with_tx
from ledger.store.records import INSERT_RECORD, RecordPayload, get_batch, get_record, new_records
from tests.support.chain_under_test import ledger_settings, rpc
from tests.support.processes import ANVIL_DEV_KEY, free_port, running_anvil

pytestmark = pytest.mark.slow
CONFIRMATIONS = 3


@pytest.fixture
def node_and_service(tmp_path: Path) -> Iterator[tuple[str, Service]]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    settings = ledger_settings(
        tmp_path / "data",
        rpc_url=url,
        faucet_key=ANVIL_DEV_KEY,
        keystore_passphrase="reorg",
        confirmations=CONFIRMATIONS,
    )
    with running_anvil(port, None):
        service = Service.open(settings)  # the batcher is driven step by step below, not started
        try:
            yield url, service
        finally:
            service.close()


def register(service: Service, count: int) -> list[str]:
    organisation = service.create_organisation("General Hospital")
    records = new_records(
        [RecordPayload(os.urandom(32), None) for _ in range(count)],
        service.record_ids,
        kind="record",
        organisation_id=organisation.id,
        app_id=None,
    )
    conn = service.db.conn
    with_tx(conn, lambda: conn.executemany(INSERT_RECORD, [r.as_row() for r in records]))
    return [r.record_id for r in records]


def mine(url: str, blocks: int) -> None:
    for _ in range(blocks):
        rpc(url, "evm_mine")


def test_receipts_wait_for_confirmations(node_and_service: tuple[str, Service]) -> None:
    url, service = node_and_service
    (record_id,) = register(service, 1)
    service.batcher.run_once(force=True)
    record = get_record(service.db.conn, record_id)
    assert record is not None
    assert standing_of(service.db.conn, record).stage == "confirming"
    assert service.receipt_of(record) is None  # anchored, but not final yet
    mine(url, CONFIRMATIONS - 1)
    service.batcher.run_once()
    assert service.receipt_of(record) is None
    mine(url, 1)
    service.batcher.run_once()
    receipt = service.receipt_of(record)
    assert receipt is not None and standing_of(service.db.conn, record).stage == "anchored"
    assert verify_receipt(receipt, anchors=service.ledger.anchors).valid


def test_an_anchor_removed_by_a_reorganisation_is_anchored_again(node_and_service: tuple[str, Service]) -> None:
    url, service = node_and_service
    record_ids = register(service, 20)
    before_anchoring = rpc(url, "evm_snapshot")
    service.batcher.run_once(force=True)
    record = get_record(service.db.conn, record_ids[0])
    assert record is not None and record.batch_id is not None
    first = get_batch(service.db.conn, record.batch_id)
    assert first is not None and first.anchored and not first.final
    assert first.anchorer is not None and service.ledger.anchors.anchor_of(first.anchorer, first.root) is not None

    # a competing branch without the anchoring transaction becomes the canonical chain
    assert rpc(url, "evm_revert", before_anchoring) is True
    mine(url, CONFIRMATIONS + 2)
    assert service.ledger.chain.receipt_or_none(first.tx_hash or b"") is None

    service.batcher.run_once()
    assert service.batcher.stats.reorgs == 1
    again = get_batch(service.db.conn, first.id)
    assert again is not None and again.anchored and not again.final  # anchored again, confirming anew
    assert again.block_hash != first.block_hash
    assert service.ledger.chain.receipt_or_none(again.tx_hash or b"") is not None
    mine(url, CONFIRMATIONS)
    service.batcher.run_once()
    for record_id in record_ids:  # every receipt reissued against the new anchoring, and valid
        stored = get_record(service.db.conn, record_id)
        assert stored is not None
        receipt = service.receipt_of(stored)
        assert receipt is not None and receipt.block_number == again.block_number
        assert verify_receipt(receipt, anchors=service.ledger.anchors).valid
    assert service.batcher.stats.reorgs == 1


def test_a_retraction_removed_by_a_reorganisation_is_sent_again(node_and_service: tuple[str, Service]) -> None:
    url, service = node_and_service
    (record_id,) = register(service, 1)
    service.batcher.run_once(force=True)
    mine(url, CONFIRMATIONS)
    service.batcher.run_once()
    conn = service.db.conn
    with_tx(
        conn,
        lambda: conn.execute(
            "INSERT INTO record_changes (kind, record_id, reason, requested_at, state) "
            "VALUES ('retract', ?, 'ENTERED_IN_ERROR', 0, 'pending')",
            (record_id,),
        ),
    )
    before_sending = rpc(url, "evm_snapshot")
    service.batcher.run_once()
    (first_tx,) = conn.execute("SELECT tx_hash FROM record_changes").fetchone()
    assert first_tx is not None
    record = get_record(conn, record_id)
    assert record is not None

    assert rpc(url, "evm_revert", before_sending) is True  # the retraction's block is gone
    mine(url, CONFIRMATIONS + 2)
    service.batcher.run_once()  # noticed, and sent again in the same step
    state, tx_hash, confirmed = conn.execute("SELECT state, tx_hash, confirmed FROM record_changes").fetchone()
    assert state == "done" and tx_hash is not None and not confirmed
    assert service.ledger.chain.receipt_or_none(bytes(tx_hash)) is not None
    mine(url, CONFIRMATIONS)
    service.batcher.run_once()
    assert conn.execute("SELECT confirmed FROM record_changes").fetchone()[0] == 1
    receipt = service.receipt_of(record)
    assert receipt is not None
    leaf_status = service.ledger.anchors.record_status(receipt.anchorer, receipt.root, receipt.leaf)
    assert leaf_status.retraction_reason == "ENTERED_IN_ERROR"
