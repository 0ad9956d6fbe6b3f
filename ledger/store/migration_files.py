"""The shipped schema migrations: numbered SQL files in a package, one package per database."""

from __future__ import annotations

import re
from importlib import resources

from ledger.exceptions import IntegrityError, PackageDataError

SQLITE = "ledger.store.migrations"
POSTGRES = "ledger.store.migrations_postgres"
_MIGRATION_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")


def migration_files(package: str) -> list[tuple[int, str, str]]:
    """``(version, file name, SQL)`` of every migration in ``package``, in order of their numbers.

    Numbers start at 1 and are unique; they may have gaps (a feature takes its number before the ones
    below it are merged), and the runners apply each number once whatever the order it arrived in.
    """
    found = []
    for entry in resources.files(package).iterdir():
        match = _MIGRATION_NAME.match(entry.name)
        if match:
            found.append((int(match.group(1)), entry.name, entry.read_text("utf-8")))
    found.sort()
    if not found:
        raise PackageDataError(f"no migrations in {package}: the install lacks its SQL files", package=package)
    versions = [v for v, _, _ in found]
    if versions[0] < 1 or len(set(versions)) != len(versions):
        raise IntegrityError(f"migration numbers in {package} must start at 1 and be unique", versions=versions)
    return found
