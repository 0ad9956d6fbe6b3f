"""The store on PostgreSQL: schema, group commit, id blocks shared by processes, the batcher lock,
and a dropped connection failing cleanly."""

from __future__ import annotations

import asyncio
import functools
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psycopg
import pytest

from ledger.chain.keys import Keyring
from ledger.exceptions import DeploymentError, InputError, IntegrityError, StoreLockedError, StoreUnavailableError
from ledger.records.merkle import merkle_root
from ledger.runtime import open_ledger
from ledger.store.database import INTEGRITY_ERRORS, Database, open_database
from ledger.store.intake import Intake, Statement, _merged, _Submission
from ledger.store.locks import BatcherLock, sending_as
from ledger.store.postgres import migrations, to_postgres
from ledger.store.records import INSERT_RECORD, RecordIds, RecordPayload, new_records, seal_batch
from ledger.store.shared_files import DirectoryFiles, PostgresFiles, adopt
from tests.support.chain_under_test import ANVIL_DEV_KEY, ledger_settings
from tests.support.postgres import PostgresServer
from tests.support.processes import wait_until

COLUMNS = (
    "id",
    "record_id",
    "kind",
    "organisation_id",
    "app_id",
    "digest",
    "salt",
    "leaf",
    "patient",
    "content_type",
    "metadata",
    "created_at",
    "fhir_version",
)


def open_store(tmp_path: Path, url: str) -> Database:
    return open_database(tmp_path, url=url)


def add_organisation(db: Database) -> int:
    row = db.conn.execute(
        "INSERT INTO organisations (name, key_name, address, emergency, created_at) "
        "VALUES (?, ?, ?, ?, ?) RETURNING id",
        ("Org", "org", "0x" + "11" * 20, 0, 1),
    ).fetchone()
    return int(row[0])


def payloads(count: int) -> list[RecordPayload]:
    return [RecordPayload(os.urandom(32), None) for _ in range(count)]


def test_statements_are_rewritten_for_postgres() -> None:
    assert to_postgres("BEGIN IMMEDIATE") == "BEGIN"
    assert to_postgres("SELECT a FROM t WHERE b = ? AND c LIKE '10%'") == (
        "SELECT a FROM t WHERE b = %s AND c LIKE '10%%'"
    )
    assert to_postgres("INSERT OR IGNORE INTO t (a) VALUES (?)") == (
        "INSERT INTO t (a) VALUES (%s) ON CONFLICT DO NOTHING"
    )
    assert to_postgres("coalesce(json_extract(fields, '$.leaf'), 1)") == "coalesce((fields::jsonb ->> 'leaf'), 1)"


def test_migrations_apply_once_and_a_newer_schema_is_refused(tmp_path: Path, database_url: str) -> None:
    open_store(tmp_path, database_url).close()
    again = open_store(tmp_path, database_url)  # a second replica starting: nothing to do
    assert again.conn.execute("SELECT count(*) FROM schema_version").fetchone()[0] == len(migrations())
    again.conn.execute("INSERT INTO schema_version (version) VALUES (99)")
    again.close()
    with pytest.raises(Exception, match="newer than this code"):
        open_store(tmp_path, database_url)


def test_group_commit_fails_only_the_conflicting_submission(tmp_path: Path, database_url: str) -> None:
    db = open_store(tmp_path, database_url)
    org = add_organisation(db)
    ids = RecordIds(db)
    first, second = new_records(payloads(2), ids, kind="record", organisation_id=org, app_id=None)
    clash = new_records(payloads(1), ids, kind="record", organisation_id=org, app_id=None)[0]
    clash.record_id = first.record_id  # the public id is UNIQUE

    async def run() -> list[BaseException | None]:
        intake = Intake(db)
        intake.start()
        results = await asyncio.gather(
            intake.submit([(INSERT_RECORD, [first.as_row()])]),
            intake.submit([(INSERT_RECORD, [clash.as_row()])]),
            intake.submit([(INSERT_RECORD, [second.as_row()])]),
            return_exceptions=True,
        )
        await intake.stop()
        assert intake.groups_committed == 1
        return list(results)

    results = asyncio.run(run())
    assert results[0] is None and results[2] is None
    assert isinstance(results[1], INTEGRITY_ERRORS)
    stored = {r for (r,) in db.conn.execute("SELECT record_id FROM records").fetchall()}
    assert stored == {first.record_id, second.record_id}


def test_processes_take_disjoint_increasing_id_blocks(tmp_path: Path, database_url: str) -> None:
    one, two = open_store(tmp_path, database_url), open_store(tmp_path, database_url)
    ids_one, ids_two = RecordIds(one), RecordIds(two)
    taken = [ids_one.take(10), ids_two.take(5), ids_one.take(RecordIds.BLOCK), ids_two.take(3000)]
    numbers = [n for block in taken for n in block]
    assert len(numbers) == len(set(numbers))
    assert list(taken[0]) == list(range(taken[0][0], taken[0][0] + 10))  # contiguous ranges
    assert taken[2][0] > taken[0][-1]  # increasing within a process


def test_one_batcher_lock_holder_and_takeover_when_it_dies(tmp_path: Path, database_url: str) -> None:
    one, two = BatcherLock(open_store(tmp_path, database_url)), BatcherLock(open_store(tmp_path, database_url))
    assert one.hold() is True
    assert two.hold() is False
    assert one.hold() is True  # still ours
    # the holder's session ends as it would when its process is killed: the server frees the lock
    with psycopg.connect(database_url, autocommit=True) as admin:
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE application_name = 'careledger-batcher' AND pid <> pg_backend_pid() "
            "AND pid IN (SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted)"
        )
    # a terminated or closed session lets its locks go once its backend has exited, a moment later
    wait_until(lambda: not advisory_lock_held(database_url), 30, "the killed holder's lock to be freed")
    assert two.hold() is True
    assert one.hold() is False  # noticed that its session, and so the lock, is gone
    two.release()
    wait_until(lambda: not advisory_lock_held(database_url), 30, "the released lock to be freed")
    assert one.hold() is True


def test_two_sealers_never_seal_a_record_twice(tmp_path: Path, database_url: str) -> None:
    """Even without the batcher lock (a holder that lost it and does not know yet), a record
    lands in one batch only: the second sealer's UPDATE finds the rows taken and rolls back."""
    one, two = open_store(tmp_path, database_url), open_store(tmp_path, database_url)
    org = add_organisation(one)
    rows = [
        r.as_row() for r in new_records(payloads(50), RecordIds(one), kind="record", organisation_id=org, app_id=None)
    ]
    one.conn.executemany(INSERT_RECORD, rows)
    # the first sealer has written its batch but not committed when the second one starts
    one.conn.execute("BEGIN")
    (batch_id,) = one.conn.execute(
        "INSERT INTO batches (organisation_id, root, leaf_count, leaves, sealed_at, state) "
        "VALUES (?, ?, 50, ?, 0, 'sealed') RETURNING id",
        (org, os.urandom(32), b""),
    ).fetchone()
    one.conn.execute("UPDATE records SET batch_id = ? WHERE batch_id IS NULL", (batch_id,))
    (first_session,) = one.conn.execute("SELECT pg_backend_pid()").fetchone()
    outcome: list[BaseException | object] = []
    second = threading.Thread(target=lambda: outcome.append(_seal(two, org)))
    second.start()
    wait_until(lambda: blocked_by(database_url, first_session), 30, "the second sealer to wait for the rows' locks")
    one.conn.execute("COMMIT")
    second.join(30)
    assert isinstance(outcome[0], RuntimeError) and "sealed meanwhile" in str(outcome[0])
    assert one.conn.execute("SELECT count(*) FROM batches").fetchone()[0] == 1  # its batch rolled back
    assert one.conn.execute("SELECT count(*) FROM records WHERE batch_id = ?", (batch_id,)).fetchone()[0] == 50


def advisory_lock_held(database_url: str) -> bool:
    """Whether any session holds an advisory lock in the database (the batcher lock is one)."""
    with psycopg.connect(database_url, autocommit=True) as admin:
        row = admin.execute(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted "
            "AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
        ).fetchone()
    return row is not None and row[0] > 0


def blocked_by(database_url: str, session: int) -> bool:
    """Whether another session is waiting for a lock that ``session`` holds (``pg_blocking_pids``)."""
    with psycopg.connect(database_url, autocommit=True) as admin:
        row = admin.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND %s = ANY(pg_blocking_pids(pid))",
            (session,),
        ).fetchone()
    return row is not None and row[0] > 0


def _seal(db: Database, org: int) -> object:
    try:
        return seal_batch(db.conn, org, 100, merkle_root)
    except RuntimeError as err:
        return err


def test_a_dropped_connection_is_a_503_error_and_is_replaced(
    tmp_path: Path, postgres: PostgresServer, database_url: str
) -> None:
    db = open_store(tmp_path, database_url)
    add_organisation(db)
    with psycopg.connect(database_url, autocommit=True) as admin:
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
    with pytest.raises(StoreUnavailableError) as raised:
        db.conn.execute("SELECT count(*) FROM organisations").fetchone()
    assert raised.value.code == "store_unavailable"
    assert db.conn.execute("SELECT count(*) FROM organisations").fetchone()[0] == 1  # a new connection


def test_a_sqlite_store_has_one_writing_process(tmp_path: Path) -> None:
    """Replicas need PostgreSQL: a second writer of a SQLite store is refused, not interleaved."""
    first = open_database(tmp_path)
    with pytest.raises(StoreLockedError) as refused:
        open_database(tmp_path)
    assert refused.value.code == "store_locked" and refused.value.details["holder_pid"] == os.getpid()
    reader = open_database(tmp_path, read_only=True)  # readers (auditors) are not writers
    assert reader.conn.execute("SELECT count(*) FROM records").fetchone()[0] == 0
    first.close()
    open_database(tmp_path).close()  # free again once the writer closed it


def test_text_postgres_cannot_store_is_the_callers_error_and_fails_alone(tmp_path: Path, database_url: str) -> None:
    db = open_store(tmp_path, database_url)
    org = add_organisation(db)
    good, bad = new_records(payloads(2), RecordIds(db), kind="record", organisation_id=org, app_id=None)
    bad.patient = "0xab\x00cd"

    async def run() -> list[BaseException | None]:
        intake = Intake(db)
        intake.start()
        results = await asyncio.gather(
            intake.submit([(INSERT_RECORD, [bad.as_row()])]),
            intake.submit([(INSERT_RECORD, [good.as_row()])]),
            return_exceptions=True,
        )
        await intake.stop()
        return list(results)

    failed, committed = asyncio.run(run())
    assert isinstance(failed, InputError) and failed.code == "invalid_input"
    assert committed is None
    assert [r for (r,) in db.conn.execute("SELECT record_id FROM records").fetchall()] == [good.record_id]


def test_bulk_inserts_go_by_copy_and_fail_alone(tmp_path: Path, database_url: str) -> None:
    """A bulk submission is sent as COPY: its rows land exactly, and one that breaks a constraint or
    holds text PostgreSQL cannot store fails alone, writing nothing, beside one that succeeds."""
    db = open_store(tmp_path, database_url)
    org = add_organisation(db)
    ids = RecordIds(db)
    good = new_records(payloads(500), ids, kind="record", organisation_id=org, app_id=None)
    clashing = new_records(payloads(100), ids, kind="record", organisation_id=org, app_id=None)
    clashing[50].record_id = good[0].record_id
    unstorable = new_records(payloads(100), ids, kind="record", organisation_id=org, app_id=None)
    unstorable[99].metadata = "x\x00y"

    async def run() -> list[BaseException | None]:
        intake = Intake(db)
        intake.start()
        results = await asyncio.gather(
            *(intake.submit([(INSERT_RECORD, [r.as_row() for r in rows])]) for rows in (good, clashing, unstorable)),
            return_exceptions=True,
        )
        await intake.stop()
        return list(results)

    committed, clashed, refused = asyncio.run(run())
    assert committed is None
    assert isinstance(clashed, INTEGRITY_ERRORS)
    assert isinstance(refused, InputError)
    stored = db.conn.execute(f"SELECT {', '.join(COLUMNS)} FROM records ORDER BY id").fetchall()
    assert [tuple(row) for row in stored] == [r.as_row() for r in good]  # every value exactly as given


def test_a_group_sends_the_rows_of_each_statement_together_in_every_submissions_order() -> None:
    async def build() -> list[list[Statement]]:  # a submission needs a running loop
        record_then_event = _Submission([("R", [(1,)]), ("E", [(1,)])])
        record_only = _Submission([("R", [(2,), (3,)])])
        event_then_record = _Submission([("E", [(4,)]), ("R", [(4,)])])
        merged = _merged([record_then_event, record_only])
        unmergeable = _merged([record_then_event, event_then_record])
        return [merged, unmergeable]

    merged, unmergeable = asyncio.run(build())
    assert merged == [("R", [(1,), (2,), (3,)]), ("E", [(1,)])]
    assert unmergeable == [("R", [(1,)]), ("E", [(1,)]), ("E", [(4,)]), ("R", [(4,)])]  # as submitted


def test_replicas_share_keys_and_the_deployment_record_through_the_store(tmp_path: Path, database_url: str) -> None:
    open_store(tmp_path, database_url).close()  # migrated
    shared = PostgresFiles(database_url)
    one, two = (Keyring(shared, "passphrase", scrypt_n=16) for _ in range(2))
    created = one.get_or_create("org-general-hospital")
    assert two.get_or_create("org-general-hospital").address == created.address  # not a second key
    assert two.names() == ["org-general-hospital"]
    assert shared.create("keys/org-general-hospital.json", "another") != "another"  # first write wins
    with pytest.raises(IntegrityError):
        Keyring(shared, "wrong passphrase", scrypt_n=16).get("org-general-hospital")

    # a one-process installation moving onto the shared store keeps its keys and contracts ...
    local = DirectoryFiles(tmp_path / "data")
    Keyring(local, "passphrase", scrypt_n=16).get_or_create("admin")
    local.create("deployment.json", '{"chain_id": 1}')
    adopt(local, shared)
    assert (
        Keyring(shared, "passphrase", scrypt_n=16).get("admin").address
        == Keyring(local, "passphrase", scrypt_n=16).get("admin").address
    )
    # ... but a data directory naming other contracts than the shared record is refused
    stale = DirectoryFiles(tmp_path / "stale")
    stale.create("deployment.json", '{"chain_id": 2}')
    with pytest.raises(DeploymentError):
        adopt(stale, shared)


def test_two_processes_sending_from_one_key_share_its_nonces_through_the_store(
    tmp_path: Path, database_url: str, anvil_url: str
) -> None:
    """Two replicas' chains (separate nonce counters, as in two processes) relay through the same
    key at once; the store's per-account lock makes each read the node's nonce in turn."""
    settings = ledger_settings(
        tmp_path / "data",
        rpc_url=anvil_url,
        faucet_key=ANVIL_DEV_KEY,
        keystore_passphrase="senders",
        database_url=database_url,
    )
    with open_ledger(settings) as first, open_ledger(settings) as second:
        stores = [open_store(tmp_path, database_url), open_store(tmp_path, database_url)]
        for ledger, store in zip((first, second), stores, strict=True):
            ledger.chain.sender_guard = functools.partial(sending_as, store)
        anchorer = first.anchorer()
        assert second.keyring.get("anchorer-default").address == anchorer.address  # one key, shared
        start = first.chain.w3.eth.get_transaction_count(anchorer.address)
        roots = [os.urandom(32) for _ in range(20)]
        jobs = [(first if i % 2 else second, root) for i, root in enumerate(roots)]
        with ThreadPoolExecutor(6) as pool:
            list(pool.map(lambda job: job[0].anchors.anchor(job[1], 1, anchorer), jobs))
        assert all(first.anchors.anchor_of(anchorer.address, root) is not None for root in roots)
        assert first.chain.w3.eth.get_transaction_count(anchorer.address) == start + len(roots)
