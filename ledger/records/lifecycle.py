"""Where a stored record stands: pending, sealed, confirming or anchored; its changes; its receipt.

A record is ``pending`` until the batcher seals it into a batch, ``sealed`` until the batch's root
is on chain, ``confirming`` until the configured confirmations are on top, then ``anchored``
(final): only then is a receipt issued, because only then will the chain not take it back.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from ledger.records.anchoring import AnchoredBatch
from ledger.records.receipts import Receipt, issue_receipts
from ledger.records.tree_cache import TreeCache
from ledger.store.changes import RecordChange, changes_naming
from ledger.store.database import Connection
from ledger.store.records import Batch, StoredRecord, get_batch

Stage = Literal["pending", "sealed", "confirming", "anchored"]


@dataclass(frozen=True)
class RecordStanding:
    """A stored record, how far it has come, its batch once sealed, and the changes naming it."""

    record: StoredRecord
    stage: Stage
    batch: Batch | None
    changes: tuple[RecordChange, ...]


def stage_of(batch: Batch | None) -> Stage:
    """The stage of a record in ``batch`` (None: not sealed yet)."""
    if batch is None:
        return "pending"
    if not batch.anchored:
        return "sealed"
    return "anchored" if batch.final else "confirming"


def standing_of(conn: Connection, record: StoredRecord) -> RecordStanding:
    """The record's stage, batch and changes, read from the store."""
    batch = get_batch(conn, record.batch_id) if record.batch_id is not None else None
    return RecordStanding(record, stage_of(batch), batch, tuple(changes_naming(conn, record.record_id)))


def receipt_of(
    conn: Connection, trees: TreeCache, record: StoredRecord, *, chain_id: int, contract: str
) -> Receipt | None:
    """The record's receipt, or None until its batch is anchored and final (confirmed)."""
    if record.batch_id is None:
        return None
    batch = get_batch(conn, record.batch_id)
    if batch is None or not batch.final:
        return None
    (receipt,) = issue_receipts(
        trees.tree(batch), [(record.salt, record.digest)], anchored_batch(batch), chain_id=chain_id, contract=contract
    )
    return receipt


def anchored_batch(batch: Batch) -> AnchoredBatch:
    """Where an anchored batch's root went on chain, as the store holds it."""
    if batch.tx_hash is None or batch.block_number is None or batch.anchored_at is None or batch.anchorer is None:
        raise ValueError(f"batch {batch.id} is not anchored")
    return AnchoredBatch(
        root=batch.root,
        leaf_count=batch.leaf_count,
        anchorer=batch.anchorer,
        tx_hash=batch.tx_hash,
        block_number=batch.block_number,
        anchored_at=batch.anchored_at,
        gas_used=batch.gas_used or 0,
        block_hash=batch.block_hash,
    )
