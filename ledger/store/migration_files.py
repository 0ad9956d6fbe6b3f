"""The shipped schema migrations: numbered SQL files in a package, one package per database.

Numbers rise from 1 and are never reused, but they may skip: a number is taken when a change is
started, and changes land in any order (a branch may ship 0010 before the 0009 of another). The
runners therefore record every migration they applied, not only the highest, and apply whatever
shipped migration a database has not had yet, in number order.
"""

from __future__ import annotations

import re
from importlib import resources

from ledger.exceptions import IntegrityError, PackageDataError

SQLITE = "ledger.store.migrations"
POSTGRES = "ledger.store.migrations_postgres"
_MIGRATION_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")


def migration_files(package: str) -> list[tuple[int, str, str]]:
    """``(version, file name, SQL)`` of every migration in ``package``, in number order (each number once)."""
    found = []
    for entry in resources.files(package).iterdir():
        match = _MIGRATION_NAME.match(entry.name)
        if match:
            found.append((int(match.group(1)), entry.name, entry.read_text("utf-8")))
    found.sort()
    if not found:
        raise PackageDataError(f"no migrations in {package}: the install lacks its SQL files", package=package)
    versions = [v for v, _, _ in found]
    if len(set(versions)) != len(versions) or versions[0] < 1:
        raise IntegrityError(f"migration numbers in {package} must be distinct and start at 1 or above")
    return found


def migrations_to_apply(shipped: list[tuple[int, str, str]], applied: set[int]) -> list[tuple[int, str, str]]:
    """The ``shipped`` migrations a database that had ``applied`` has not had yet, in number order. A
    database that had one this code does not ship is newer than the code: :class:`IntegrityError`."""
    unknown = sorted(applied - {version for version, _, _ in shipped})
    if unknown:
        raise IntegrityError(
            f"database schema version {max(applied)} is newer than this code ({shipped[-1][0]}): "
            f"it had migrations {unknown}, which this code does not ship"
        )
    return [migration for migration in shipped if migration[0] not in applied]
