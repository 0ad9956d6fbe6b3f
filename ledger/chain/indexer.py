"""An index of the contracts' events in the store, so that history never scans the chain per request.

Reading a patient's consent history with ``eth_getLogs`` from the deploy block on every request is
slow (eth-tester walks every block) and grows with the chain. :class:`ChainIndexer` instead reads the
ConsentRegistry and RecordAnchor events once, from the block after the last one it indexed up to the
head, in chunks, and writes them to ``chain_events`` together with the new high-water mark in ONE
transaction per chunk. Rows are keyed by ``(block_number, log_index)`` and inserted with ``OR IGNORE``,
so reading a range twice changes nothing. The index is derived data: :meth:`ChainIndexer.rebuild`
drops it and reads everything again from the deploy block.

The service runs :meth:`ChainIndexer.sync` in a daemon thread every ``interval`` seconds, and
synchronously after it relays a transaction itself, so a client sees its own change at once.
With ``confirmations`` set, it reads only blocks that many deep (a reorganisation shallower than
that cannot undo what it indexed); the embedded chain never reorganises.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import dataclass
from typing import Any

from ledger.chain.client import DEFAULT_CONFIRMATIONS
from ledger.chain.contracts import ANCHOR_EVENTS, CONSENT_EVENTS, CONSENT_REGISTRY, RECORD_ANCHOR
from ledger.chain.events import decode_log, raw_log
from ledger.consent.registry import ConsentRegistryClient
from ledger.exceptions import ChainUnavailableError
from ledger.records.anchoring import UNCHANGED, RecordAnchorClient, RecordStatus
from ledger.store.database import Connection, Database, with_tx
from ledger.values import decode_code

log = logging.getLogger("careledger.indexer")

CODE_FIELDS = frozenset({"scope", "purpose", "reason"})
DEFAULT_CHUNK_BLOCKS = 2_000
DEFAULT_INTERVAL = 0.5
MAX_BACKOFF = 30.0

_EVENT_COLUMNS = "block_number, log_index, tx_hash, contract, event, patient, fields, block_time"
_INSERT_EVENT = f"INSERT OR IGNORE INTO chain_events ({_EVENT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
_SET_LAST_BLOCK = (
    "INSERT INTO chain_index_state (id, last_block, updated_at) VALUES (1, ?, ?) "
    "ON CONFLICT (id) DO UPDATE SET updated_at = excluded.updated_at, last_block = CASE "
    "WHEN excluded.last_block > chain_index_state.last_block THEN excluded.last_block "
    "ELSE chain_index_state.last_block END"
)


@dataclass(frozen=True)
class IndexedEvent:
    """One contract event as indexed: where it is on chain, and its arguments made readable.

    ``fields`` holds every argument but ``patient``: addresses checksummed, scope, purpose and
    reason codes decoded (``"Observation"``), other bytes as 0x-hex, numbers as numbers.
    """

    block_number: int
    log_index: int
    tx_hash: str
    contract: str
    event: str
    patient: str | None
    fields: dict[str, Any]
    block_time: int


def readable(name: str, value: Any) -> Any:
    """An event argument as JSON: codes decoded, bytes as 0x-hex, the rest as web3 gives it."""
    if isinstance(value, bytes) and name in CODE_FIELDS:
        return decode_code(value)
    if isinstance(value, bytes):
        return "0x" + value.hex()
    return value


class ChainIndexer:
    """Keeps ``chain_events`` up to date with the chain, in a thread or on demand.

    Args:
        db: The store.
        consents: The ConsentRegistry whose events are indexed.
        anchors: The RecordAnchor whose events are indexed.
        chunk_blocks: Most blocks read in one ``eth_getLogs`` call (and committed in one transaction).
        confirmations: Index a block only once this many blocks are on top of it (a reorganisation
            of the newest blocks then never leaves orphaned events in the index).
        interval: Seconds between two passes of the background thread.
    """

    def __init__(
        self,
        db: Database,
        consents: ConsentRegistryClient,
        anchors: RecordAnchorClient,
        *,
        chunk_blocks: int = DEFAULT_CHUNK_BLOCKS,
        interval: float = DEFAULT_INTERVAL,
        confirmations: int = DEFAULT_CONFIRMATIONS,
    ) -> None:
        if chunk_blocks < 1:
            raise ValueError("chunk_blocks must be at least 1")
        self.db = db
        self.chain = consents.chain
        self.chunk_blocks = chunk_blocks
        self.interval = interval
        self.confirmations = confirmations
        self.start_block = min(consents.deploy_block, anchors.deploy_block)
        self.addresses = [consents.address, anchors.address]
        self._contracts: dict[str, str] = {consents.address: CONSENT_REGISTRY, anchors.address: RECORD_ANCHOR}
        self._indexed = {CONSENT_REGISTRY: frozenset(CONSENT_EVENTS), RECORD_ANCHOR: frozenset(ANCHOR_EVENTS)}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.last_error: str | None = None
        self.events_indexed = 0

    # --- lifecycle -------------------------------------------------------------------------

    def start(self) -> None:
        """Index in a daemon thread every ``interval`` seconds until :meth:`stop`."""
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="careledger-indexer", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Finish the current chunk and stop."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _loop(self) -> None:
        backoff = 0.0
        while not self._stop.is_set():
            try:
                self.sync()
                backoff, self.last_error = 0.0, None
            except ChainUnavailableError as err:
                backoff = min(MAX_BACKOFF, max(1.0, backoff * 2))
                self.last_error = f"{type(err).__name__}: {err}"
            except Exception as err:  # keep indexing; the error is logged and kept for health checks
                log.exception("indexing failed")
                backoff = min(MAX_BACKOFF, max(1.0, backoff * 2))
                self.last_error = f"{type(err).__name__}: {err}"
            self._stop.wait(backoff or self.interval)

    # --- indexing --------------------------------------------------------------------------

    def last_block(self) -> int:
        """The newest block whose events are all indexed (the block before the deploy block if none)."""
        row = self.db.conn.execute("SELECT last_block FROM chain_index_state WHERE id = 1").fetchone()
        return int(row[0]) if row else self.start_block - 1

    def sync(self) -> int:
        """Index every block after the last indexed one up to the head; returns the events added.

        Safe to call from any thread at any time: passes run one at a time, and a pass started
        after a transaction was mined indexes that transaction's block.
        """
        with self._lock:
            return self._sync_locked()

    def rebuild(self) -> int:
        """Drop the index and read every event again from the deploy block; returns the events indexed.

        Readers see a partial index until it finishes (it commits chunk by chunk).
        """
        with self._lock:
            conn = self.db.conn
            with_tx(
                conn, lambda: (conn.execute("DELETE FROM chain_events"), conn.execute("DELETE FROM chain_index_state"))
            )
            return self._sync_locked()

    def _sync_locked(self) -> int:
        added = 0
        head = self.chain.block_number() - self.confirmations  # only blocks no reorganisation will undo
        start = self.last_block() + 1
        while start <= head and not self._stop.is_set():
            end = min(head, start + self.chunk_blocks - 1)
            added += self._index_range(start, end)
            start = end + 1
        self.events_indexed += added
        return added

    def _index_range(self, first: int, last: int) -> int:
        """Read and store the events of blocks ``first..last``, and mark ``last`` indexed, atomically."""
        events = self._read(first, last)
        rows = [
            (
                e.block_number,
                e.log_index,
                e.tx_hash,
                e.contract,
                e.event,
                e.patient,
                json.dumps(e.fields, sort_keys=True, separators=(",", ":")),
                e.block_time,
            )
            for e in events
        ]
        conn = self.db.conn

        def write() -> int:
            inserted = conn.executemany(_INSERT_EVENT, rows).rowcount if rows else 0
            conn.execute(_SET_LAST_BLOCK, (last, time.time()))
            return inserted

        inserted: int = with_tx(conn, write)
        return inserted

    def _read(self, first: int, last: int) -> list[IndexedEvent]:
        entries = self.chain.get_logs({"fromBlock": first, "toBlock": last, "address": self.addresses})
        events: list[IndexedEvent] = []
        times: dict[int, int] = {}
        for entry in entries:
            log = raw_log(entry)
            contract_name = self._contracts.get(log.address)
            decoded = decode_log(log, contract_name) if contract_name is not None else None
            if decoded is None or decoded.name not in self._indexed[decoded.contract]:
                continue  # role changes and other events nobody reads from the index
            if log.block_number not in times:
                times[log.block_number] = self.chain.block_timestamp(log.block_number)
            args = dict(decoded.args)
            patient = args.pop("patient", None)
            events.append(
                IndexedEvent(
                    block_number=log.block_number,
                    log_index=log.log_index,
                    tx_hash="0x" + log.tx_hash.hex(),
                    contract=decoded.contract,
                    event=decoded.name,
                    patient=str(patient).lower() if patient is not None else None,
                    fields={name: readable(name, value) for name, value in args.items()},
                    block_time=times[log.block_number],
                )
            )
        return events


# --- reading the index ---------------------------------------------------------------------------


def _event(row: Any) -> IndexedEvent:
    block_number, log_index, tx_hash, contract, event, patient, fields, block_time = row
    return IndexedEvent(block_number, log_index, tx_hash, contract, event, patient, json.loads(fields), block_time)


def patient_events(conn: Connection, patient: str) -> list[IndexedEvent]:
    """Every indexed ConsentRegistry event about ``patient``, in chain order."""
    rows = conn.execute(
        f"SELECT {_EVENT_COLUMNS} FROM chain_events WHERE patient = ? ORDER BY block_number, log_index",
        (patient.lower(),),
    ).fetchall()
    return [_event(r) for r in rows]


def all_events(conn: Connection) -> list[IndexedEvent]:
    """The whole index in chain order (for checks and rebuild comparisons)."""
    rows = conn.execute(f"SELECT {_EVENT_COLUMNS} FROM chain_events ORDER BY block_number, log_index").fetchall()
    return [_event(r) for r in rows]


def indexed_record_status(conn: Connection, anchorer: str, root: bytes, leaf: bytes) -> RecordStatus:
    """The amendment or retraction ``anchorer`` recorded of its record ``leaf`` in ``root``, as far as
    the index has read the chain.

    Only that account's changes against that root count: a ``RecordAmended`` or ``RecordRetracted``
    naming the same leaf from another account (which may anchor a tree of its own holding the leaf)
    or another root is about another anchoring, never this record.
    """
    rows = conn.execute(
        "SELECT event, fields FROM chain_events WHERE event IN ('RecordAmended', 'RecordRetracted') AND "
        "coalesce(json_extract(fields, '$.originalLeaf'), json_extract(fields, '$.leaf')) = ? "
        "ORDER BY block_number, log_index",
        ("0x" + leaf.hex(),),
    ).fetchall()
    wanted_anchorer, wanted_root = anchorer.lower(), "0x" + root.hex()
    for event, fields in rows:
        values = json.loads(fields)
        changed_root = values["originalRoot"] if event == "RecordAmended" else values["root"]
        if values["anchorer"].lower() != wanted_anchorer or changed_root != wanted_root:
            continue  # another account's change, or the same leaf in another root
        if event == "RecordAmended":  # a record is changed at most once: the first change is the change
            return RecordStatus(
                bytes.fromhex(values["amendedLeaf"][2:]), None, bytes.fromhex(values["amendedRoot"][2:])
            )
        return RecordStatus(None, values["reason"])
    return UNCHANGED


def indexed_to(conn: Connection) -> int | None:
    """The newest indexed block, or None before the first pass."""
    row = conn.execute("SELECT last_block FROM chain_index_state WHERE id = 1").fetchone()
    return int(row[0]) if row else None


__all__ = [
    "ChainIndexer",
    "IndexedEvent",
    "all_events",
    "indexed_record_status",
    "indexed_to",
    "patient_events",
]
