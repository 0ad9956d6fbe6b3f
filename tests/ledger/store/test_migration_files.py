"""The shipped migrations: both packages hold numbered SQL files, and a package with none is refused
(an install that lost its package data must not start on an empty schema)."""

from __future__ import annotations

import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from ledger.exceptions import IntegrityError, PackageDataError
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
    assert [version for version, _, _ in found] == list(range(1, len(found) + 1))
    assert found and all(sql.strip() for _, _, sql in found)


def test_a_package_without_migrations_is_refused(package: tuple[str, Path]) -> None:
    name, folder = package
    (folder / "notes.sql").write_text("-- not a numbered migration\n")
    with pytest.raises(PackageDataError, match=f"no migrations in {name}") as raised:
        migration_files(name)
    assert raised.value.details == {"package": name}
    assert isinstance(raised.value, IntegrityError)


def test_numbers_with_a_gap_are_refused(package: tuple[str, Path]) -> None:
    name, folder = package
    for file_name in ("0001_initial.sql", "0003_later.sql"):
        (folder / file_name).write_text("SELECT 1;\n")
    with pytest.raises(IntegrityError, match="without gaps") as raised:
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
