"""The chain event index in the store (``chain_events``, ``chain_index_state``): written by
:class:`ledger.chain.indexer.ChainIndexer`, read by everything that shows history.

Rows are keyed by ``(block_number, log_index)`` and inserted with ``OR IGNORE``, so writing a range
twice changes nothing; a range's events and the new high-water mark are written in one transaction.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ledger.store.database import Connection, with_tx
from ledger.values import decode_code

CODE_FIELDS = frozenset({"scope", "purpose", "reason"})

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

    def consent_terms(self) -> tuple[str, str, str]:
        """``(grantee, scope, purpose)``: which of the patient's consents a ``ConsentGranted`` or
        ``ConsentRevoked`` changed (with ``patient``, the consent's key)."""
        return self.fields["grantee"], self.fields["scope"], self.fields["purpose"]


def readable(name: str, value: Any) -> Any:
    """An event argument as JSON: codes decoded, bytes as 0x-hex, the rest as web3 gives it."""
    if isinstance(value, bytes) and name in CODE_FIELDS:
        return decode_code(value)
    if isinstance(value, bytes):
        return "0x" + value.hex()
    return value


def write_indexed_range(conn: Connection, events: Sequence[IndexedEvent], last_block: int) -> int:
    """Store the events of a range of blocks and mark ``last_block`` indexed, atomically; returns
    the events that were new."""
    rows = [
        (e.block_number, e.log_index, e.tx_hash, e.contract, e.event, e.patient,
         json.dumps(e.fields, sort_keys=True, separators=(",", ":")), e.block_time)
        for e in events
    ]  # fmt: skip

    def write() -> int:
        inserted = conn.executemany(_INSERT_EVENT, rows).rowcount if rows else 0
        conn.execute(_SET_LAST_BLOCK, (last_block, time.time()))
        return inserted

    inserted: int = with_tx(conn, write)
    return inserted


def clear_chain_index(conn: Connection) -> None:
    """Drop every indexed event and the high-water mark (to read everything again)."""
    with_tx(conn, lambda: (conn.execute("DELETE FROM chain_events"), conn.execute("DELETE FROM chain_index_state")))


def indexed_to(conn: Connection) -> int | None:
    """The newest indexed block, or None before the first pass."""
    row = conn.execute("SELECT last_block FROM chain_index_state WHERE id = 1").fetchone()
    return int(row[0]) if row else None


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


def changes_of_leaf(conn: Connection, leaf: bytes) -> list[tuple[str, dict[str, Any]]]:
    """Every indexed ``RecordAmended`` (naming ``leaf`` as the original) and ``RecordRetracted``
    (naming ``leaf``), whoever recorded it, in chain order: ``(event name, fields)``."""
    rows = conn.execute(
        "SELECT event, fields FROM chain_events WHERE event IN ('RecordAmended', 'RecordRetracted') AND "
        "coalesce(json_extract(fields, '$.originalLeaf'), json_extract(fields, '$.leaf')) = ? "
        "ORDER BY block_number, log_index",
        ("0x" + leaf.hex(),),
    ).fetchall()
    return [(str(event), json.loads(fields)) for event, fields in rows]
