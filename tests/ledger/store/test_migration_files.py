"""The shipped migrations: both packages hold numbered SQL files, and a package with none is refused
(an install that lost its package data must not start on an empty schema). Numbers may skip (a
number taken by a change that has not landed yet), never repeat; the runners apply, in number
order, whatever a database has not had, so a number that lands after a higher one is still applied."""

from __future__ import annotations

import sqlite3
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from ledger.exceptions import IntegrityError, PackageDataError
from ledger.store import database, postgres
from ledger.store.migration_files import POSTGRES, SQLITE, migration_files

Shipped = list[tuple[int, str, str]]


def shipped(*versions: int) -> Shipped:
    """Migrations of these numbers, each creating a table named for its number."""
    return [(v, f"{v:04d}_t.sql", f"CREATE TABLE t{v} (x INTEGER);\n") for v in versions]


@pytest.fixture
def package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, Path]]:
    """A fresh, empty package on ``sys.path``: its name and its folder."""
    name = f"migrations_{uuid.uuid4().hex}"
    folder = tmp_path / name
    folder.mkdir()
    (folder / "__init__.py").write_text("")
    monkeypatch.syspath_prepend(str(tmp_path))
    yield name, folder
    sys.modules.pop(name, None)


@pytest.mark.parametrize("package_name", [SQLITE, POSTGRES])
def test_each_shipped_package_holds_migrations_numbered_from_one(package_name: str) -> None:
    found = migration_files(package_name)
    versions = [version for version, _, _ in found]
    assert versions[0] == 1 and versions == sorted(set(versions))
    assert found and all(sql.strip() for _, _, sql in found)


def test_a_package_without_migrations_is_refused(package: tuple[str, Path]) -> None:
    name, folder = package
    (folder / "notes.sql").write_text("-- not a numbered migration\n")
    with pytest.raises(PackageDataError, match=f"no migrations in {name}") as raised:
        migration_files(name)
    assert raised.value.details == {"package": name}
    assert isinstance(raised.value, IntegrityError)


def test_numbers_may_skip(package: tuple[str, Path]) -> None:
    name, folder = package
    for file_name in ("0001_initial.sql", "0003_later.sql"):
        (folder / file_name).write_text("SELECT 1;\n")
    assert [v for v, _, _ in migration_files(name)] == [1, 3]


def test_a_number_given_twice_is_refused(package: tuple[str, Path]) -> None:
    name, folder = package
    for file_name in ("0001_initial.sql", "0002_one.sql", "0002_other.sql"):
        (folder / file_name).write_text("SELECT 1;\n")
    with pytest.raises(IntegrityError, match="must be distinct") as raised:
        migration_files(name)
    assert not isinstance(raised.value, PackageDataError)


def test_a_package_of_numbered_files_is_read_in_order(package: tuple[str, Path]) -> None:
    name, folder = package
    for file_name in ("0002_second.sql", "0001_first.sql"):
        (folder / file_name).write_text(f"-- {file_name}\n")
    assert migration_files(name) == [
        (1, "0001_first.sql", "-- 0001_first.sql\n"),
        (2, "0002_second.sql", "-- 0002_second.sql\n"),
    ]


def _sqlite_tables(conn: sqlite3.Connection) -> set[str]:
    return {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


def test_sqlite_applies_a_number_that_lands_after_a_higher_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    conn = database.connect(tmp_path / "store.sqlite3")
    conn.isolation_level = None
    monkeypatch.setattr(database, "migrations", lambda: shipped(1, 3))
    assert database.migrate(conn) == 3
    monkeypatch.setattr(database, "migrations", lambda: shipped(1, 2, 3))
    assert database.migrate(conn) == 3
    assert {"t1", "t2", "t3"} <= _sqlite_tables(conn)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 3
    assert database.migrate(conn) == 3  # nothing left to apply


def test_sqlite_store_migrated_before_numbers_were_recorded_counts_as_having_all_up_to_its_version(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    conn = database.connect(tmp_path / "store.sqlite3")
    conn.isolation_level = None
    conn.execute("CREATE TABLE t1 (x INTEGER)")
    conn.execute("CREATE TABLE t2 (x INTEGER)")
    conn.execute("PRAGMA user_version = 2")
    monkeypatch.setattr(database, "migrations", lambda: shipped(1, 2, 4))
    assert database.migrate(conn) == 4  # 1 and 2 are not applied again (their tables exist)
    assert "t4" in _sqlite_tables(conn)


def test_sqlite_store_that_had_a_migration_this_code_lacks_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    conn = database.connect(tmp_path / "store.sqlite3")
    conn.isolation_level = None
    monkeypatch.setattr(database, "migrations", lambda: shipped(1, 2))
    database.migrate(conn)
    monkeypatch.setattr(database, "migrations", lambda: shipped(1, 3))
    with pytest.raises(IntegrityError, match=r"newer than this code.*\[2\]"):
        database.migrate(conn)
    assert "t3" not in _sqlite_tables(conn)


def test_postgres_applies_a_number_that_lands_after_a_higher_one(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(postgres, "migrations", lambda: shipped(1, 3))
    assert postgres.migrate(database_url) == 3
    monkeypatch.setattr(postgres, "migrations", lambda: shipped(1, 2, 3))
    assert postgres.migrate(database_url) == 3
    with psycopg.connect(database_url) as pg:
        assert [r[0] for r in pg.execute("SELECT version FROM schema_version ORDER BY version")] == [1, 2, 3]
        pg.execute("SELECT * FROM t2")
    monkeypatch.setattr(postgres, "migrations", lambda: shipped(1, 3))
    with pytest.raises(IntegrityError, match=r"newer than this code.*\[2\]"):
        postgres.migrate(database_url)
