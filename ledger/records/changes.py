"""Amendments and retractions of records: who may request one, and the statements that request it.

One rule, held in three places: **a record is changed at most once, amended or retracted, not
both** (the contract reverts with ``RecordAnchorAlreadyChanged``; the store's unique index
``record_changes_once`` takes one change per record; the API answers 409 ``already_changed``).
Audit entries are never changed. The request is stored (:mod:`ledger.store.changes`) in the same
intake submission as the answer; the batcher sends it on chain once the records it names are
anchored.

:func:`require_changeable` refuses a change the store already holds; of two concurrent requests
that both passed it, the store's constraint decides, and :func:`refused_by_store` turns its
refusal into the same answer.
"""

from __future__ import annotations

from ledger.exceptions import AlreadyChangedError, NotChangeableError
from ledger.store.changes import amendment_statement, change_kind_of, is_change_taken, retraction_statement
from ledger.store.database import Connection
from ledger.store.intake import Statement
from ledger.store.records import StoredRecord


def require_changeable(conn: Connection, record: StoredRecord) -> None:
    """Refuse a change to a record already changed, or to an audit entry."""
    kind = change_kind_of(conn, record.record_id)
    if kind is not None:
        raise AlreadyChangedError(
            f"record {record.record_id} was already {'amended' if kind == 'amend' else 'retracted'}: "
            "a record is changed at most once",
            record_id=record.record_id,
            change=kind,
        )
    if record.kind != "record":
        raise NotChangeableError("audit entries cannot be amended or retracted", record_id=record.record_id)


def request_amendment(conn: Connection, original: StoredRecord, replacement_id: str) -> Statement:
    """The statement asking that ``original`` be superseded by the record ``replacement_id``."""
    require_changeable(conn, original)
    return amendment_statement(original.record_id, replacement_id)


def request_retraction(conn: Connection, record: StoredRecord, reason: str) -> Statement:
    """The statement asking that ``record`` be retracted for ``reason`` (a code)."""
    require_changeable(conn, record)
    return retraction_statement(record.record_id, reason)


def refused_by_store(err: BaseException) -> AlreadyChangedError | None:
    """The answer to a change the store refused because a concurrent change of the same record was
    written first (its one-change-per-record constraint), or None for any other refusal."""
    if not is_change_taken(err):
        return None
    return AlreadyChangedError("the record was changed by a concurrent request: a record is changed at most once")
