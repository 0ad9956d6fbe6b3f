"""Records, batches and amendments in the off-chain store.

A record row holds what must stay off chain: the digest, the salt, the patient and metadata. A
batch row holds a sealed Merkle tree's root and leaves; it becomes ``anchored`` once the root is on
chain, with where and when. Receipts are derived from the two. A batch's leaves are its records'
leaves, plus any padding leaves mixed in when its root had to change before it was anchored
(:func:`reseal_batch`): random values that are no record's leaf.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from threading import Lock
from typing import Any, Protocol

import sha3

from ledger.exceptions import InvalidHexError
from ledger.store.database import Connection, Database, with_tx
from ledger.store.intake import Statement

MAX_ROW_ID = 2**63 - 1
"""The largest row id: SQLite and PostgreSQL integers are signed 64-bit (larger ids name no row)."""


@dataclass(slots=True)
class NewRecord:
    """A record as acknowledged to the client (durable once inserted)."""

    id: int
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
    fhir_version: str | None

    def as_row(self) -> tuple[Any, ...]:
        return (
            self.id,
            self.record_id,
            self.kind,
            self.organisation_id,
            self.app_id,
            self.digest,
            self.salt,
            self.leaf,
            self.patient,
            self.content_type,
            self.metadata,
            self.created_at,
            self.fhir_version,
        )


INSERT_RECORD = """
    INSERT INTO records (id, record_id, kind, organisation_id, app_id, digest, salt, leaf, patient,
                         content_type, metadata, created_at, fhir_version)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
"""


@dataclass(slots=True)
class StoredRecord(NewRecord):
    """A record as stored and, once sealed, its batch."""

    batch_id: int | None


@dataclass(frozen=True)
class RecordPayload:
    """What a caller gives for one record: its digest, whose it is, and off-chain details (the FHIR
    version its document was validated as, if it is one)."""

    digest: bytes
    patient: str | None
    content_type: str | None = None
    metadata: str | None = None
    fhir_version: str | None = None


RECORD_ID_REGEX = "[0-9a-f]{32}"
"""What a record id is (:class:`RecordIds`): 32 lower-case hex digits."""


class RecordIds:
    """Allocates record ids: increasing row ids, each with a random public tag.

    The public id is the row id in 16 hex digits followed by 16 random hex digits, so ids cannot be
    guessed, and yet every index on them grows at its right edge (cheap appends) instead of taking
    random inserts. On SQLite one process writes the store (the embedded chain's lock guarantees
    it), so ids are counted in memory from the largest stored one. On a shared store each process
    reserves blocks of ids with one atomic UPDATE (``record_id_blocks``) and counts within its block.
    """

    BLOCK = 1024

    def __init__(self, db: Database) -> None:
        self._db = db
        self._lock = Lock()
        if db.shared:
            self._next = self._limit = 0
        else:
            self._next = int(db.conn.execute("SELECT COALESCE(MAX(id), 0) FROM records").fetchone()[0]) + 1
            self._limit = MAX_ROW_ID + 1

    def take(self, count: int) -> range:
        with self._lock:
            if self._next + count > self._limit:
                self._reserve(max(count, self.BLOCK))
            first = self._next
            self._next += count
        return range(first, first + count)

    def _reserve(self, count: int) -> None:
        (end,) = self._db.conn.execute(
            "UPDATE record_id_blocks SET next_id = next_id + ? WHERE id = 1 RETURNING next_id", (count,)
        ).fetchone()
        self._next, self._limit = int(end) - count, int(end)


def new_records(
    payloads: list[RecordPayload], ids: RecordIds, *, kind: str, organisation_id: int, app_id: int | None
) -> list[NewRecord]:
    """Salt and identify records (one system call for all the randomness of a request).

    The hot path of bulk registration: the leaf is hashed inline (it is :func:`ledger.records.hashing.leaf_hash`,
    without its argument checks: digests here are 32 bytes by construction).
    """
    randomness = os.urandom(40 * len(payloads))
    now = time.time()
    keccak = sha3.keccak_256
    built = []
    for index, (row_id, payload) in enumerate(zip(ids.take(len(payloads)), payloads, strict=True)):
        offset = 40 * index
        salt = randomness[offset : offset + 32]
        if len(payload.digest) != 32:
            raise InvalidHexError("a digest must be 32 bytes", field="digest")
        built.append(
            NewRecord(
                row_id,
                f"{row_id:016x}{randomness[offset + 32 : offset + 40].hex()}",
                kind,
                organisation_id,
                app_id,
                payload.digest,
                salt,
                keccak(keccak(salt + payload.digest).digest()).digest(),
                payload.patient,
                payload.content_type,
                payload.metadata,
                now,
                payload.fhir_version,
            )
        )
    return built


class AnchorPlacement(Protocol):
    """Where a batch's root went on chain, as the anchoring client reports it
    (:class:`ledger.records.anchoring.AnchoredBatch`)."""

    @property
    def tx_hash(self) -> bytes: ...
    @property
    def block_number(self) -> int: ...
    @property
    def anchored_at(self) -> int: ...
    @property
    def anchorer(self) -> str: ...
    @property
    def gas_used(self) -> int: ...
    @property
    def block_hash(self) -> bytes | None: ...


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
    block_hash: bytes | None
    confirmed: int

    @property
    def anchored(self) -> bool:
        """The root is on chain (perhaps not yet final)."""
        return self.state == "anchored"

    @property
    def final(self) -> bool:
        """Anchored and as deep in the chain as the configured confirmations require."""
        return self.state == "anchored" and bool(self.confirmed)

    def leaf_list(self) -> list[bytes]:
        return [self.leaves[i : i + 32] for i in range(0, len(self.leaves), 32)]


_RECORD_COLUMNS = (
    "id, record_id, kind, organisation_id, app_id, digest, salt, leaf, patient, content_type, "
    "metadata, created_at, fhir_version, batch_id"
)
_BATCH_COLUMNS = (
    "id, organisation_id, root, leaf_count, leaves, sealed_at, state, tx_hash, block_number, "
    "anchored_at, anchorer, gas_used, block_hash, confirmed"
)


def get_record(conn: Connection, record_id: str) -> StoredRecord | None:
    """A record by its public id (found through the row id it starts with)."""
    try:
        row_id = int(record_id[:16], 16)
    except ValueError:
        return None
    if row_id > MAX_ROW_ID:  # no such row: SQLite and PostgreSQL integers are signed 64-bit
        return None
    row = conn.execute(
        f"SELECT {_RECORD_COLUMNS} FROM records WHERE id = ? AND record_id = ?", (row_id, record_id)
    ).fetchone()
    return StoredRecord(*row) if row else None


def records_by_digest(conn: Connection, digest: bytes, organisation_id: int, limit: int = 100) -> list[StoredRecord]:
    """An organisation's records with a digest: sealed ones through the digest index, pending ones by
    a scan of the (short) pending queue. Indexing digests only at sealing keeps random index inserts
    off the acknowledgement path."""
    rows = conn.execute(
        f"SELECT {_RECORD_COLUMNS} FROM records "
        "WHERE digest = ? AND batch_id IS NOT NULL AND organisation_id = ? "
        f"UNION ALL SELECT {_RECORD_COLUMNS} FROM records "
        "WHERE batch_id IS NULL AND digest = ? AND organisation_id = ? ORDER BY id LIMIT ?",
        (digest, organisation_id, digest, organisation_id, limit),
    ).fetchall()
    return [StoredRecord(*row) for row in rows]


_QUALIFIED_RECORD_COLUMNS = ", ".join(f"records.{name.strip()}" for name in _RECORD_COLUMNS.split(","))


def final_records(
    conn: Connection,
    *,
    organisation_id: int | None = None,
    patient: str | None = None,
    record_id: str | None = None,
    from_row: int = 0,
    limit: int = 100,
) -> list[StoredRecord]:
    """Records whose batch is anchored and final (those with a receipt), in row order from row
    ``from_row`` on: of an organisation, about a patient (lower case), or both; ``record_id`` narrows
    to that one record. The sealed-record indexes on ``(organisation_id, id)`` and ``(patient, id)``
    serve the scopes (migrations 0015 / pg 0013).

    Raises:
        ValueError: Neither ``organisation_id`` nor ``patient`` is given (no search reads every record).
    """
    if organisation_id is None and patient is None:
        raise ValueError("final_records needs an organisation or a patient")
    if from_row > MAX_ROW_ID:  # past every row (and past what the databases' integers hold)
        return []
    where = ["records.batch_id IS NOT NULL", "records.id >= ?"]
    args: list[Any] = [from_row]
    if organisation_id is not None:
        where.append("records.organisation_id = ?")
        args.append(organisation_id)
    if patient is not None:
        where.append("records.patient = ?")
        args.append(patient)
    if record_id is not None:
        try:
            row_id = int(record_id[:16], 16)
        except ValueError:
            return []
        if row_id > MAX_ROW_ID:
            return []
        where += ["records.id = ?", "records.record_id = ?"]
        args += [row_id, record_id]
    rows = conn.execute(
        f"SELECT {_QUALIFIED_RECORD_COLUMNS} FROM records JOIN batches ON batches.id = records.batch_id "
        f"WHERE {' AND '.join(where)} AND batches.state = 'anchored' AND batches.confirmed = 1 "
        "ORDER BY records.id LIMIT ?",
        (*args, limit),
    ).fetchall()
    return [StoredRecord(*row) for row in rows]


def get_batch(conn: Connection, batch_id: int) -> Batch | None:
    row = conn.execute(f"SELECT {_BATCH_COLUMNS} FROM batches WHERE id = ?", (batch_id,)).fetchone()
    return Batch(*row) if row else None


def unanchored_batches(conn: Connection) -> list[Batch]:
    rows = conn.execute(f"SELECT {_BATCH_COLUMNS} FROM batches WHERE state = 'sealed' ORDER BY id").fetchall()
    return [Batch(*row) for row in rows]


def pending_summary(conn: Connection, cap: int) -> dict[int, tuple[int, float]]:
    """Per organisation with pending records: how many (counted up to ``cap``), and when the oldest
    arrived. Bounded work whatever the backlog: each organisation's pending index is read from its
    start and at most ``cap`` entries deep."""
    summary = {}
    for (organisation_id,) in conn.execute("SELECT id FROM organisations").fetchall():
        oldest = conn.execute(
            "SELECT created_at FROM records WHERE organisation_id = ? AND batch_id IS NULL ORDER BY id LIMIT 1",
            (organisation_id,),
        ).fetchone()
        if oldest is None:
            continue
        (count,) = conn.execute(
            "SELECT COUNT(*) FROM "
            "(SELECT 1 FROM records WHERE organisation_id = ? AND batch_id IS NULL LIMIT ?) AS due",
            (organisation_id, cap),
        ).fetchone()
        summary[organisation_id] = (count, oldest[0])
    return summary


def pending_count(conn: Connection) -> int:
    return int(conn.execute("SELECT COUNT(*) FROM records WHERE batch_id IS NULL").fetchone()[0])


def oldest_pending_at(conn: Connection) -> float | None:
    """When the oldest record still waiting for a batch arrived (None if none waits)."""
    oldest = conn.execute("SELECT MIN(created_at) FROM records WHERE batch_id IS NULL").fetchone()[0]
    return float(oldest) if oldest is not None else None


def oldest_in_batch(conn: Connection, batch_id: int) -> float | None:
    """When the oldest record of a batch arrived."""
    oldest = conn.execute("SELECT MIN(created_at) FROM records WHERE batch_id = ?", (batch_id,)).fetchone()[0]
    return float(oldest) if oldest is not None else None


def insert_records_statement(records: list[NewRecord]) -> Statement:
    """The intake statement inserting new records."""
    return INSERT_RECORD, [r.as_row() for r in records]


def seal_batch(
    conn: Connection, organisation_id: int, max_size: int, root_of: Callable[[list[bytes]], bytes]
) -> Batch | None:
    """Seal up to ``max_size`` of an organisation's oldest pending records into one batch whose root
    ``root_of`` gives for their leaves (in id order; :meth:`ledger.records.merkle.MerkleTree.root_of`).

    The rows are read and the root computed before the write lock is taken, so request commits wait only
    for the short UPDATE and INSERT; the UPDATE names the sealed rows by id, and the seal is refused
    if any of them was sealed meanwhile (one batcher seals at a time, so that means a bug).
    """
    rows = conn.execute(
        "SELECT id, leaf FROM records WHERE organisation_id = ? AND batch_id IS NULL ORDER BY id LIMIT ?",
        (organisation_id, max_size),
    ).fetchall()
    if not rows:
        return None
    leaves = [bytes(leaf) for _, leaf in rows]
    root = root_of(leaves)

    def write() -> int:
        cursor = conn.execute(
            "INSERT INTO batches (organisation_id, root, leaf_count, leaves, sealed_at, state) "
            "VALUES (?, ?, ?, ?, ?, 'sealed') RETURNING id",
            (organisation_id, root, len(leaves), b"".join(leaves), time.time()),
        )
        batch_id = int(cursor.fetchone()[0])
        updated = conn.executemany(
            "UPDATE records SET batch_id = ? WHERE id = ? AND batch_id IS NULL",
            [(batch_id, row_id) for row_id, _ in rows],
        ).rowcount
        if updated != len(rows):
            raise RuntimeError(f"sealing batch {batch_id}: {len(rows) - updated} records were sealed meanwhile")
        return batch_id

    batch = get_batch(conn, with_tx(conn, write))
    assert batch is not None
    return batch


def reseal_batch(conn: Connection, batch_id: int, padding: bytes, root_of: Callable[[list[bytes]], bytes]) -> Batch:
    """Give a sealed, not yet anchored batch another root by adding the leaf ``padding`` (32 random
    bytes, no record's leaf) to its leaves; its records stay in it.

    For a root that cannot be anchored as the batch's own (see the batcher): no receipt was issued
    for an unanchored batch, so its root may still change.
    """
    batch = get_batch(conn, batch_id)
    if batch is None or batch.state != "sealed":
        raise RuntimeError(f"batch {batch_id} is not sealed and unanchored: its root cannot change")
    if len(padding) != 32:
        raise ValueError("a padding leaf is 32 bytes")
    leaves = [*batch.leaf_list(), padding]
    root = root_of(leaves)

    def write() -> None:
        updated = conn.execute(
            "UPDATE batches SET root = ?, leaf_count = ?, leaves = ? WHERE id = ? AND state = 'sealed'",
            (root, len(leaves), b"".join(leaves), batch_id),
        ).rowcount
        if updated != 1:
            raise RuntimeError(f"batch {batch_id} was anchored meanwhile: its root cannot change")

    with_tx(conn, write)
    resealed = get_batch(conn, batch_id)
    assert resealed is not None
    return resealed


def unconfirmed_batches(conn: Connection) -> list[Batch]:
    rows = conn.execute(
        f"SELECT {_BATCH_COLUMNS} FROM batches WHERE state = 'anchored' AND confirmed = 0 ORDER BY id"
    ).fetchall()
    return [Batch(*row) for row in rows]


def mark_anchored(conn: Connection, batch_id: int, anchored: AnchorPlacement, *, confirmed: bool) -> None:
    """Record where the batch's root went on chain (``confirmed``: already final)."""
    with_tx(
        conn,
        lambda: conn.execute(
            "UPDATE batches SET state = 'anchored', tx_hash = ?, block_number = ?, anchored_at = ?, anchorer = ?, "
            "gas_used = ?, block_hash = ?, confirmed = ? WHERE id = ?",
            (
                anchored.tx_hash,
                anchored.block_number,
                anchored.anchored_at,
                anchored.anchorer,
                anchored.gas_used,
                anchored.block_hash,
                int(confirmed),
                batch_id,
            ),
        ),
    )


def mark_confirmed(conn: Connection, batch_id: int) -> None:
    with_tx(
        conn, lambda: conn.execute("UPDATE batches SET confirmed = 1 WHERE id = ? AND state = 'anchored'", (batch_id,))
    )


def mark_unanchored(conn: Connection, batch_id: int) -> None:
    """A reorganisation removed the batch's anchoring transaction: back to sealed, to be anchored again."""
    with_tx(
        conn,
        lambda: conn.execute(
            "UPDATE batches SET state = 'sealed', tx_hash = NULL, block_number = NULL, anchored_at = NULL, "
            "anchorer = NULL, gas_used = NULL, block_hash = NULL, confirmed = 0 WHERE id = ? AND confirmed = 0",
            (batch_id,),
        ),
    )
