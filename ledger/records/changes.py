"""Amendments and retractions of records: who may request one, and the statements that request it.

A record is changed at most once of each kind; audit entries are never changed. The request is
stored (:mod:`ledger.store.changes`) in the same intake submission as the answer; the batcher
sends it on chain once the records it names are anchored.
"""

from __future__ import annotations

from ledger.exceptions import ConflictError, InputError
from ledger.store.changes import amendment_statement, change_kind_of, retraction_statement
from ledger.store.database import Connection
from ledger.store.intake import Statement
from ledger.store.records import StoredRecord


def require_changeable(conn: Connection, record: StoredRecord) -> None:
    """Refuse a change to a record already changed, or to an audit entry."""
    kind = change_kind_of(conn, record.record_id)
    if kind is not None:
        raise ConflictError(
            f"record {record.record_id} was already {'amended' if kind == 'amend' else 'retracted'}",
            record_id=record.record_id,
        )
    if record.kind != "record":
        raise InputError("audit entries cannot be amended or retracted", record_id=record.record_id)


def request_amendment(conn: Connection, original: StoredRecord, replacement_id: str) -> Statement:
    """The statement asking that ``original`` be superseded by the record ``replacement_id``."""
    require_changeable(conn, original)
    return amendment_statement(original.record_id, replacement_id)


def request_retraction(conn: Connection, record: StoredRecord, reason: str) -> Statement:
    """The statement asking that ``record`` be retracted for ``reason`` (a code)."""
    require_changeable(conn, record)
    return retraction_statement(record.record_id, reason)
