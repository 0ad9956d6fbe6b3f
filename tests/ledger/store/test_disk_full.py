"""The SQLite store on a full disk: writes fail as :class:`StorageFullError` (``storage_full``),
whole (nothing of a refused group commit or seal is written), and the same store, on the same
connection, writes again once space is freed. On a disk of the test's own
(:mod:`tests.support.small_disk`)."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from ledger.exceptions import InputError, StorageFullError
from ledger.records.merkle import merkle_root
from ledger.store.database import Database, open_database, with_tx
from ledger.store.export import export_index
from ledger.store.intake import Intake, Statement
from ledger.store.records import NewRecord, RecordIds, RecordPayload, insert_records_statement, new_records, seal_batch
from tests.support.small_disk import fill

ROWS = 2_000
"""Records per write: far more than the last free page of the disk holds."""


def add_organisation(db: Database) -> int:
    conn = db.conn
    row = with_tx(
        conn,
        lambda: conn.execute(
            "INSERT INTO organisations (name, key_name, address, emergency, created_at) "
            "VALUES (?, ?, ?, ?, ?) RETURNING id",
            ("Org", "org", "0x" + "11" * 20, 0, 1),
        ).fetchone(),
    )
    return int(row[0])


def some_records(ids: RecordIds, organisation_id: int) -> list[NewRecord]:
    payloads = [RecordPayload(os.urandom(32), None) for _ in range(ROWS)]
    return new_records(payloads, ids, kind="record", organisation_id=organisation_id, app_id=None)


def stored_ids(db: Database) -> set[str]:
    return {record_id for (record_id,) in db.conn.execute("SELECT record_id FROM records").fetchall()}


def test_a_full_disk_fails_group_commits_whole_and_the_intake_writes_again_once_freed(small_disk: Path) -> None:
    db = open_database(small_disk / "data")
    org = add_organisation(db)
    ids = RecordIds(db)
    before, refused_one, refused_two, after = (some_records(ids, org) for _ in range(4))

    def submission(records: list[NewRecord]) -> list[Statement]:
        return [insert_records_statement(records)]

    async def run() -> tuple[list[BaseException | None], int]:
        intake = Intake(db)
        intake.start()
        await intake.submit(submission(before))
        filler = fill(small_disk)
        refused = await asyncio.gather(
            intake.submit(submission(refused_one)), intake.submit(submission(refused_two)), return_exceptions=True
        )
        committed_while_full = intake.groups_committed
        filler.unlink()
        await intake.submit(submission(after))  # the same intake and connection, without a restart
        await intake.stop()
        return list(refused), committed_while_full

    refused, committed_while_full = asyncio.run(run())
    assert all(isinstance(err, StorageFullError) and err.code == "storage_full" for err in refused), refused
    assert committed_while_full == 1  # only the group written before the disk filled
    assert stored_ids(db) == {r.record_id for r in before + after}  # nothing of the refused ones
    db.close()


def test_a_full_disk_fails_a_seal_whole_and_the_batch_is_sealed_once_freed(small_disk: Path) -> None:
    db = open_database(small_disk / "data")
    org = add_organisation(db)
    sql, rows = insert_records_statement(some_records(RecordIds(db), org))
    with_tx(db.conn, lambda: db.conn.executemany(sql, rows))
    filler = fill(small_disk)
    with pytest.raises(StorageFullError):
        seal_batch(db.conn, org, ROWS, merkle_root)
    assert not db.conn.in_transaction
    assert db.conn.execute("SELECT count(*) FROM batches").fetchone()[0] == 0
    assert db.conn.execute("SELECT count(*) FROM records WHERE batch_id IS NULL").fetchone()[0] == ROWS
    filler.unlink()
    sealed = seal_batch(db.conn, org, ROWS, merkle_root)
    assert sealed is not None and sealed.leaf_count == ROWS
    assert db.conn.execute("SELECT count(*) FROM records WHERE batch_id = ?", (sealed.id,)).fetchone()[0] == ROWS
    db.close()


@pytest.mark.parametrize("room", [0, 256 << 10], ids=["full", "room-for-the-schema-only"])
def test_an_export_onto_a_full_disk_fails_as_storage_full_and_leaves_no_file(
    tmp_path: Path, small_disk: Path, room: int
) -> None:
    db = open_database(tmp_path / "data")
    org = add_organisation(db)
    for _ in range(4):  # about a MiB of rows: more than the room left
        sql, rows = insert_records_statement(some_records(RecordIds(db), org))
        with_tx(db.conn, lambda sql=sql, rows=rows: db.conn.executemany(sql, rows))
    filler = fill(small_disk)
    if room:
        os.truncate(filler, filler.stat().st_size - room)
    target = small_disk / "index.sqlite"
    with pytest.raises(StorageFullError):
        export_index(db, target)
    assert not target.exists()  # nothing half-written
    filler.unlink()
    assert export_index(db, target)["records"] == 4 * ROWS
    db.close()


def test_an_export_into_a_missing_directory_is_refused_by_name(tmp_path: Path) -> None:
    db = open_database(tmp_path / "data")
    with pytest.raises(InputError, match="cannot write"):
        export_index(db, tmp_path / "no" / "such" / "index.sqlite")
    db.close()
