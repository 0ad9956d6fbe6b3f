"""The store holds the one rule of record changes: a record is changed at most once, amended or
retracted, not both (``record_changes_once``), on SQLite and on PostgreSQL alike.

The API checks first (:func:`ledger.records.changes.require_changeable`); this constraint is what
decides between two requests that both passed the check at the same moment.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from ledger.records.changes import refused_by_store
from ledger.store.changes import amendment_statement, is_change_taken, retraction_statement
from ledger.store.database import INTEGRITY_ERRORS, Database, open_database, with_tx
from ledger.store.intake import Statement
from ledger.store.records import INSERT_RECORD, RecordIds, RecordPayload, new_records


@pytest.fixture(params=["sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    url = request.getfixturevalue("database_url") if request.param == "postgres" else None
    db = open_database(tmp_path, url=url)
    try:
        yield db
    finally:
        db.close()


def write(db: Database, statement: Statement) -> None:
    """One statement, in a transaction of its own."""
    sql, rows = statement
    with_tx(db.conn, functools.partial(db.conn.executemany, sql, rows))


def stored_records(db: Database, count: int) -> list[str]:
    """``count`` records of one organisation, stored; their ids."""
    (organisation_id,) = db.conn.execute(
        "INSERT INTO organisations (name, key_name, address, emergency, created_at) "
        "VALUES ('Org A', 'org-a', ?, 0, 1) RETURNING id",
        ("0x" + "aa" * 20,),
    ).fetchone()
    payloads = [RecordPayload(os.urandom(32), None) for _ in range(count)]
    records = new_records(payloads, RecordIds(db), kind="record", organisation_id=organisation_id, app_id=None)
    write(db, (INSERT_RECORD, [r.as_row() for r in records]))
    return [r.record_id for r in records]


def test_a_record_takes_one_change_whatever_its_kind(store: Database) -> None:
    amended, replacement, retracted, other = stored_records(store, 4)
    write(store, amendment_statement(amended, replacement))
    write(store, retraction_statement(retracted, "ENTERED_IN_ERROR"))

    for second in (
        retraction_statement(amended, "ENTERED_IN_ERROR"),  # amended, then retracted
        amendment_statement(retracted, other),  # retracted, then amended
        amendment_statement(amended, other),  # amended twice
        retraction_statement(retracted, "DUPLICATE"),  # retracted twice
    ):
        with pytest.raises(INTEGRITY_ERRORS) as caught:
            write(store, second)
        assert is_change_taken(caught.value), caught.value
        refusal = refused_by_store(caught.value)
        assert refusal is not None and (refusal.code, type(refusal).__name__) == (
            "already_changed",
            "AlreadyChangedError",
        )

    rows = store.conn.execute("SELECT record_id, kind FROM record_changes ORDER BY id").fetchall()
    assert [tuple(r) for r in rows] == [(amended, "amend"), (retracted, "retract")]
    # The replacement named by an amendment may still be changed itself, once.
    write(store, retraction_statement(replacement, "ENTERED_IN_ERROR"))


def test_other_constraint_failures_are_not_taken_for_a_change(store: Database) -> None:
    (record_id,) = stored_records(store, 1)
    with pytest.raises(INTEGRITY_ERRORS) as caught:  # names a record that does not exist
        write(store, retraction_statement("no-such-record", "ENTERED_IN_ERROR"))
    assert not is_change_taken(caught.value) and refused_by_store(caught.value) is None
    write(store, retraction_statement(record_id, "ENTERED_IN_ERROR"))
