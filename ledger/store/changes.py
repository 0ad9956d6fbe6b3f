"""Amendments and retractions in the off-chain store (``record_changes``): requested, sent, confirmed.

A change is requested by the record's organisation (a row in ``pending``), sent on chain by the
batcher once the records it names are anchored (``done`` with its transaction, or ``failed`` with
the contract's error), and final once its transaction is deep enough (``confirmed``).

The unique index ``record_changes_once`` holds the one rule of record changes (the contract and
the API hold it too): a record is changed at most once, amended or retracted, not both. Of two
concurrent requests that both passed the API's check, the store takes the first and refuses the
other (:func:`is_change_taken`).
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass
from typing import Any, Literal

import psycopg

from ledger.store.database import Connection
from ledger.store.intake import Statement

ChangeKind = Literal["amend", "retract"]

_INSERT = (
    "INSERT INTO record_changes (kind, record_id, replacement_id, reason, requested_at, state) "
    "VALUES (?, ?, ?, ?, ?, 'pending')"
)


@dataclass(frozen=True)
class RecordChange:
    """One amendment or retraction as stored."""

    id: int
    kind: ChangeKind
    record_id: str
    replacement_id: str | None
    reason: str | None
    state: str
    tx_hash: bytes | None
    error: str | None


def amendment_statement(record_id: str, replacement_id: str) -> Statement:
    """The statement requesting that ``record_id`` be marked superseded by ``replacement_id``."""
    return _INSERT, [("amend", record_id, replacement_id, None, time.time())]


def retraction_statement(record_id: str, reason: str) -> Statement:
    """The statement requesting that ``record_id`` be retracted with ``reason``."""
    return _INSERT, [("retract", record_id, None, reason, time.time())]


def change_kind_of(conn: Connection, record_id: str) -> ChangeKind | None:
    """The kind of change already requested for the record, if any."""
    row = conn.execute("SELECT kind FROM record_changes WHERE record_id = ?", (record_id,)).fetchone()
    return row[0] if row is not None else None


ONE_CHANGE_INDEX = "record_changes_once"
_SQLITE_ONE_CHANGE = "UNIQUE constraint failed: record_changes.record_id"


def is_change_taken(err: BaseException) -> bool:
    """Whether ``err`` is the one-change-per-record constraint refusing a second change of a record
    (and not another constraint of the table, such as a record that does not exist)."""
    if isinstance(err, psycopg.errors.UniqueViolation):
        return err.diag.constraint_name == ONE_CHANGE_INDEX
    return isinstance(err, sqlite3.IntegrityError) and str(err) == _SQLITE_ONE_CHANGE


def changes_naming(conn: Connection, record_id: str) -> list[RecordChange]:
    """Every change of the record, or amending another record into it."""
    rows = conn.execute(
        "SELECT id, kind, record_id, replacement_id, reason, state, tx_hash, error FROM record_changes "
        "WHERE record_id = ? OR replacement_id = ?",
        (record_id, record_id),
    ).fetchall()
    return [_change(row) for row in rows]


def pending_changes(conn: Connection) -> list[RecordChange]:
    """Changes not sent yet, oldest first."""
    rows = conn.execute(
        "SELECT id, kind, record_id, replacement_id, reason, state, tx_hash, error FROM record_changes "
        "WHERE state = 'pending' ORDER BY id"
    ).fetchall()
    return [_change(row) for row in rows]


def unconfirmed_changes(conn: Connection) -> list[tuple[int, bytes, int]]:
    """``(change id, transaction, organisation id)`` of sent changes not final yet, oldest first."""
    rows = conn.execute(
        "SELECT c.id, c.tx_hash, r.organisation_id FROM record_changes c "
        "JOIN records r ON r.record_id = c.record_id "
        "WHERE c.state = 'done' AND c.confirmed = 0 AND c.tx_hash IS NOT NULL ORDER BY c.id"
    ).fetchall()
    return [(int(change_id), bytes(tx_hash), int(organisation_id)) for change_id, tx_hash, organisation_id in rows]


def mark_sent(conn: Connection, change_id: int, *, tx_hash: bytes | None, error: str | None, final: bool) -> None:
    """Record the outcome of sending a change (``failed`` if ``error``)."""
    conn.execute(
        "UPDATE record_changes SET state = ?, tx_hash = ?, error = ?, confirmed = ? WHERE id = ?",
        ("failed" if error else "done", tx_hash, error, int(final), change_id),
    )


def mark_unsent(conn: Connection, change_id: int) -> None:
    """A reorganisation removed the change's transaction: pending again (unless already final)."""
    conn.execute(
        "UPDATE record_changes SET state = 'pending', tx_hash = NULL WHERE id = ? AND confirmed = 0", (change_id,)
    )


def mark_change_confirmed(conn: Connection, change_id: int) -> None:
    """The change's transaction is deep enough: final."""
    conn.execute("UPDATE record_changes SET confirmed = 1 WHERE id = ?", (change_id,))


def _change(row: Any) -> RecordChange:
    change_id, kind, record_id, replacement_id, reason, state, tx_hash, error = row
    return RecordChange(
        int(change_id), kind, record_id, replacement_id, reason, state, bytes(tx_hash) if tx_hash else None, error
    )
