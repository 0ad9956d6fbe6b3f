"""Records, batches and amendments in the off-chain store.

A record row holds what must stay off chain: the digest, the salt, the patient and metadata. A
batch row holds a sealed Merkle tree's root and leaves; it becomes ``anchored`` once the root is on
chain, with where and when. Receipts are derived from the two.
"""

from __future__ import annotations

import sqlite3
import time
from collections import OrderedDict
from dataclasses import dataclass
from threading import Lock
from typing import Any

from ledger.anchoring import AnchoredBatch
from ledger.merkle import MerkleTree


@dataclass(frozen=True)
class NewRecord:
    """A record as acknowledged to the client (durable once inserted)."""

    record_id: str
    kind: str
    organisation_id: int
    app_id: int | None
    digest: bytes
    salt: bytes
    leaf: bytes
    patient: str | None
    content_type: str | None
    metadata: str | None
    created_at: float

    def as_row(self) -> tuple[Any, ...]:
        return (self.record_id, self.kind, self.organisation_id, self.app_id, self.digest, self.salt,
                self.leaf, self.patient, self.content_type, self.metadata, self.created_at)


INSERT_RECORD = """
    INSERT INTO records (record_id, kind, organisation_id, app_id, digest, salt, leaf, patient,
                         content_type, metadata, created_at)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
"""


@dataclass(frozen=True)
class StoredRecord(NewRecord):
    """A record as stored: its row id and, once sealed, its batch."""

    id: int
    batch_id: int | None


@dataclass(frozen=True)
class Batch:
    """A sealed batch; the anchor fields are set once its root is on chain."""

    id: int
    organisation_id: int
    root: bytes
    leaf_count: int
    leaves: bytes
    sealed_at: float
    state: str
    tx_hash: bytes | None
    block_number: int | None
    anchored_at: int | None
    anchorer: str | None
    gas_used: int | None

    @property
    def anchored(self) -> bool:
        return self.state == "anchored"

    def leaf_list(self) -> list[bytes]:
        return [self.leaves[i:i + 32] for i in range(0, len(self.leaves), 32)]


_RECORD_COLUMNS = ("record_id, kind, organisation_id, app_id, digest, salt, leaf, patient, content_type, "
                   "metadata, created_at, id, batch_id")
_BATCH_COLUMNS = ("id, organisation_id, root, leaf_count, leaves, sealed_at, state, tx_hash, block_number, "
                  "anchored_at, anchorer, gas_used")


def get_record(conn: sqlite3.Connection, record_id: str) -> StoredRecord | None:
    row = conn.execute(f"SELECT {_RECORD_COLUMNS} FROM records WHERE record_id = ?", (record_id,)).fetchone()
    return StoredRecord(*row) if row else None


def records_by_digest(conn: sqlite3.Connection, digest: bytes, limit: int = 100) -> list[StoredRecord]:
    rows = conn.execute(f"SELECT {_RECORD_COLUMNS} FROM records WHERE digest = ? ORDER BY id LIMIT ?",
                        (digest, limit)).fetchall()
    return [StoredRecord(*row) for row in rows]


def records_by_leaf(conn: sqlite3.Connection, leaf: bytes) -> list[StoredRecord]:
    rows = conn.execute(f"SELECT {_RECORD_COLUMNS} FROM records WHERE leaf = ? ORDER BY id", (leaf,)).fetchall()
    return [StoredRecord(*row) for row in rows]


def get_batch(conn: sqlite3.Connection, batch_id: int) -> Batch | None:
    row = conn.execute(f"SELECT {_BATCH_COLUMNS} FROM batches WHERE id = ?", (batch_id,)).fetchone()
    return Batch(*row) if row else None


def unanchored_batches(conn: sqlite3.Connection) -> list[Batch]:
    rows = conn.execute(f"SELECT {_BATCH_COLUMNS} FROM batches WHERE state = 'sealed' ORDER BY id").fetchall()
    return [Batch(*row) for row in rows]


def pending_summary(conn: sqlite3.Connection) -> dict[int, tuple[int, float]]:
    """Per organisation: how many records wait for a batch, and when the oldest arrived."""
    rows = conn.execute(
        "SELECT organisation_id, COUNT(*), MIN(created_at) FROM records WHERE batch_id IS NULL "
        "GROUP BY organisation_id"
    ).fetchall()
    return {org: (count, oldest) for org, count, oldest in rows}


def pending_count(conn: sqlite3.Connection) -> int:
    return int(conn.execute("SELECT COUNT(*) FROM records WHERE batch_id IS NULL").fetchone()[0])


def seal_batch(conn: sqlite3.Connection, organisation_id: int, max_size: int) -> Batch | None:
    """Seal up to ``max_size`` of an organisation's oldest pending records into one batch, atomically."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        rows = conn.execute(
            "SELECT id, leaf FROM records WHERE organisation_id = ? AND batch_id IS NULL ORDER BY id LIMIT ?",
            (organisation_id, max_size),
        ).fetchall()
        if not rows:
            conn.execute("ROLLBACK")
            return None
        leaves = [leaf for _, leaf in rows]
        tree = MerkleTree.from_leaves(leaves)
        if conn.execute("SELECT 1 FROM batches WHERE root = ?", (tree.root,)).fetchone():
            # the same leaves again (a replayed record): salts make this practically impossible
            conn.execute("ROLLBACK")
            raise RuntimeError("sealed root already exists")
        cursor = conn.execute(
            "INSERT INTO batches (organisation_id, root, leaf_count, leaves, sealed_at, state) "
            "VALUES (?, ?, ?, ?, ?, 'sealed')",
            (organisation_id, tree.root, len(leaves), b"".join(leaves), time.time()),
        )
        batch_id = cursor.lastrowid
        conn.execute(
            "UPDATE records SET batch_id = ? WHERE organisation_id = ? AND batch_id IS NULL AND id <= ?",
            (batch_id, organisation_id, rows[-1][0]),
        )
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    assert batch_id is not None
    batch = get_batch(conn, batch_id)
    assert batch is not None
    return batch


def mark_anchored(conn: sqlite3.Connection, batch_id: int, anchored: AnchoredBatch) -> None:
    with_tx(conn, lambda: conn.execute(
        "UPDATE batches SET state = 'anchored', tx_hash = ?, block_number = ?, anchored_at = ?, anchorer = ?, "
        "gas_used = ? WHERE id = ?",
        (bytes.fromhex(anchored.tx_hash.removeprefix("0x")), anchored.block_number, anchored.anchored_at,
         anchored.anchorer, anchored.gas_used, batch_id),
    ))


def with_tx(conn: sqlite3.Connection, action: Any) -> Any:
    """Run ``action()`` inside one IMMEDIATE transaction."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        result = action()
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return result


class TreeCache:
    """Recently used batch trees, rebuilt from their stored leaves on a miss (a few ms for 4,096)."""

    def __init__(self, size: int = 64) -> None:
        self._size = size
        self._trees: OrderedDict[int, MerkleTree] = OrderedDict()
        self._lock = Lock()

    def tree(self, batch: Batch) -> MerkleTree:
        with self._lock:
            tree = self._trees.get(batch.id)
            if tree is not None:
                self._trees.move_to_end(batch.id)
                return tree
        tree = MerkleTree.from_leaves(batch.leaf_list())
        with self._lock:
            self._trees[batch.id] = tree
            while len(self._trees) > self._size:
                self._trees.popitem(last=False)
        return tree
