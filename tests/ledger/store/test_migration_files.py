"""The shipped migrations: both packages hold numbered SQL files, and a package with none is refused
(an install that lost its package data must not start on an empty schema). Numbers may have gaps
(features take theirs before the ones below are merged); the SQLite runner applies each number once,
whatever order the files arrived in."""

from __future__ import annotations

import sqlite3
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from ledger.exceptions import IntegrityError, PackageDataError
from ledger.store import database
from ledger.store.migration_files import POSTGRES, SQLITE, migration_files


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


@pytest.mark.parametrize("shipped", [SQLITE, POSTGRES])
def test_each_shipped_package_holds_migrations_numbered_from_one(shipped: str) -> None:
    found = migration_files(shipped)
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


def test_numbers_with_a_gap_are_read_and_a_repeated_number_is_refused(package: tuple[str, Path]) -> None:
    name, folder = package
    for file_name in ("0001_initial.sql", "0003_later.sql"):
        (folder / file_name).write_text("SELECT 1;\n")
    assert [version for version, _, _ in migration_files(name)] == [1, 3]
    (folder / "0003_twin.sql").write_text("SELECT 1;\n")
    with pytest.raises(IntegrityError, match="unique") as raised:
        migration_files(name)
    assert not isinstance(raised.value, PackageDataError)


def _migrations(*versions: int) -> list[tuple[int, str, str]]:
    return [(v, f"{v:04d}_t.sql", f"CREATE TABLE t{v} (x INTEGER);\n") for v in versions]


def test_a_migration_merged_below_an_applied_one_is_applied_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    conn = sqlite3.connect(tmp_path / "store.sqlite3", isolation_level=None)
    monkeypatch.setattr(database, "migrations", lambda: _migrations(1, 3))
    assert database.migrate(conn) == 3
    monkeypatch.setattr(database, "migrations", lambda: _migrations(1, 2, 3))  # 2 merged after 3
    assert database.migrate(conn) == 3
    assert database.migrate(conn) == 3
    tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE name LIKE 't%'")}
    assert tables == {"t1", "t2", "t3"}
    assert [v for (v,) in conn.execute("SELECT version FROM schema_migrations ORDER BY version")] == [1, 2, 3]
    monkeypatch.setattr(database, "migrations", lambda: _migrations(1, 2))
    with pytest.raises(IntegrityError, match=r"migrations \[3\], newer than this code"):
        database.migrate(conn)


def test_a_store_that_counted_its_migrations_in_user_version_keeps_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    conn = sqlite3.connect(tmp_path / "store.sqlite3", isolation_level=None)
    conn.execute("CREATE TABLE t1 (x INTEGER)")
    conn.execute("CREATE TABLE t2 (x INTEGER)")
    conn.execute("PRAGMA user_version = 2")  # as the runner before schema_migrations left it
    monkeypatch.setattr(database, "migrations", lambda: _migrations(1, 2, 5))
    assert database.migrate(conn) == 5
    assert [v for (v,) in conn.execute("SELECT version FROM schema_migrations ORDER BY version")] == [1, 2, 5]
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 5


def test_a_package_of_numbered_files_is_read_in_order(package: tuple[str, Path]) -> None:
    name, folder = package
    for file_name in ("0002_second.sql", "0001_first.sql"):
        (folder / file_name).write_text(f"-- {file_name}\n")
    assert migration_files(name) == [
        (1, "0001_first.sql", "-- 0001_first.sql\n"),
        (2, "0002_second.sql", "-- 0002_second.sql\n"),
    ]
