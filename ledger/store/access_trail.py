"""The access trail in the off-chain store (``access_events``): one row per access attempt.

Each row sits beside the ``audit`` record whose digest is that of the row's canonical document, so
the trail is anchored with the organisation's other records. Pages are read by typed filters
(a patient, an organisation, or both; optionally a time window), oldest first, after a row id.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from ledger.store.database import Connection
from ledger.store.intake import Statement

_INSERT = """
    INSERT INTO access_events (record_id, organisation_id, app_id, patient, scope, purpose, decision, reason,
                               document, created_at, chain_tx)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
"""
_COLUMNS = (
    "id, record_id, organisation_id, app_id, patient, scope, purpose, decision, reason, document, created_at, chain_tx"
)


@dataclass(frozen=True)
class AccessEvent:
    """One access attempt as stored; ``patient`` in lower case, ``document`` the anchored canonical JSON."""

    id: int
    record_id: str
    organisation_id: int
    app_id: int
    patient: str
    scope: str
    purpose: str
    decision: str
    reason: str | None
    document: str
    created_at: float
    chain_tx: bytes | None


def access_event_statement(
    *,
    record_id: str,
    organisation_id: int,
    app_id: int,
    patient: str,
    scope: str,
    purpose: str,
    decision: str,
    reason: str | None,
    document: str,
    created_at: float,
    chain_tx: bytes | None,
) -> Statement:
    """The statement writing one attempt (in the same submission as its audit record)."""
    row = (record_id, organisation_id, app_id, patient.lower(), scope, purpose, decision, reason, document,
           created_at, chain_tx)  # fmt: skip
    return _INSERT, [row]


def access_events(
    conn: Connection,
    *,
    patient: str | None = None,
    organisation_id: int | None = None,
    after: int = 0,
    limit: int,
    since: float | None = None,
    until: float | None = None,
    decisions: Collection[str] | None = None,
) -> list[AccessEvent]:
    """Attempts about ``patient`` and/or by ``organisation_id`` with ids above ``after``, oldest first;
    with ``since`` and/or ``until``, only those made at or after ``since`` and before ``until``
    (unix seconds); with ``decisions``, only those decided so."""
    if patient is None and organisation_id is None:
        raise ValueError("the access trail is read for a patient, an organisation or both")
    conditions, params = ["id > ?"], list[object]([after])
    if patient is not None:
        conditions.append("patient = ?")
        params.append(patient.lower())
    if organisation_id is not None:
        conditions.append("organisation_id = ?")
        params.append(organisation_id)
    if since is not None:
        conditions.append("created_at >= ?")
        params.append(since)
    if until is not None:
        conditions.append("created_at < ?")
        params.append(until)
    if decisions is not None:
        chosen = sorted(decisions)
        conditions.append(f"decision IN ({', '.join('?' for _ in chosen)})" if chosen else "1 = 0")
        params.extend(chosen)
    rows = conn.execute(
        f"SELECT {_COLUMNS} FROM access_events WHERE {' AND '.join(conditions)} ORDER BY id LIMIT ?",
        (*params, limit),
    ).fetchall()
    return [_event(row) for row in rows]


def access_event(conn: Connection, event_id: int) -> AccessEvent | None:
    """One attempt by its id in the trail."""
    row = conn.execute(f"SELECT {_COLUMNS} FROM access_events WHERE id = ?", (event_id,)).fetchone()
    return _event(row) if row is not None else None


def _event(row: Any) -> AccessEvent:
    (id_, record_id, organisation_id, app_id, patient, scope, purpose, decision, reason, document, created_at,
     chain_tx) = row  # fmt: skip
    return AccessEvent(id_, record_id, organisation_id, app_id, patient, scope, purpose, decision, reason, document,
                       created_at, bytes(chain_tx) if chain_tx is not None else None)  # fmt: skip
