"""A consistent copy of the store as one SQLite file: what an auditor is given as "the API's index".

Works on either store while the service runs: the rows are read in one snapshot (a repeatable-read
transaction on PostgreSQL, one read transaction on SQLite) and written into a new SQLite file with
the SQLite store's own schema, so ``careledger-audit audit --index`` reads a PostgreSQL deployment's
index the same way as a SQLite one. API keys' hashes and stored idempotent answers are left out:
an auditor needs neither.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from ledger.exceptions import InputError
from ledger.store.database import Connection, Database, SqliteConnection, migrate

EXPORTED_TABLES = (
    "organisations",
    "batches",
    "records",
    "record_changes",
    "access_events",
    "chain_events",
    "chain_index_state",
)
_REFERENCED_TABLES = ("apps",)  # access_events and records name apps: ids kept, keys left out
_BATCH_ROWS = 10_000


def export_index(db: Database, target: Path) -> dict[str, int]:
    """Write the store's tables into a new SQLite file ``target``; returns rows copied per table.

    Whole or not at all: on any failure the partial file is removed.

    Raises:
        InputError: ``target`` exists already, or cannot be written (no such directory, no permission).
        StorageFullError: The disk under ``target`` filled up (``storage_full``).
    """
    target = Path(target)
    if target.exists():
        raise InputError(f"{target} exists already; the export writes a new file", field="target")
    try:
        return _export(db, target)
    except (sqlite3.Error, OSError) as err:  # a full disk is StorageFullError already (SqliteConnection)
        raise InputError(f"cannot write {target}: {err}", field="target") from err


def _export(db: Database, target: Path) -> dict[str, int]:
    out = sqlite3.connect(target, factory=SqliteConnection)
    out.isolation_level = None
    copied: dict[str, int] = {}
    source = db.conn
    try:
        migrate(out)
        out.execute("PRAGMA foreign_keys=OFF")
        out.execute("BEGIN")
        source.execute("BEGIN ISOLATION LEVEL REPEATABLE READ" if db.shared else "BEGIN")
        try:
            for table in _REFERENCED_TABLES:
                rows = source.execute(
                    f"SELECT id, organisation_id, name, key_prefix, roles, created_at, revoked_at FROM {table}"
                ).fetchall()
                out.executemany(
                    f"INSERT INTO {table} (id, organisation_id, name, key_hash, key_prefix, roles, "
                    f"created_at, revoked_at) VALUES (?, ?, ?, randomblob(32), ?, ?, ?, ?)",
                    rows,
                )
                copied[table] = len(rows)
            for table in EXPORTED_TABLES:
                copied[table] = _copy_table(source, out, table)
        finally:
            source.execute("ROLLBACK")
        out.execute("COMMIT")
    except BaseException:
        out.close()
        target.unlink(missing_ok=True)
        raise
    out.close()
    return copied


def _copy_table(source: Connection, out: sqlite3.Connection, table: str) -> int:
    columns = [row[1] for row in out.execute(f"PRAGMA table_info({table})")]
    names = ", ".join(columns)
    rows = source.execute(f"SELECT {names} FROM {table}").fetchall()
    placeholders = ", ".join("?" for _ in columns)
    for start in range(0, len(rows), _BATCH_ROWS):
        out.executemany(f"INSERT INTO {table} ({names}) VALUES ({placeholders})", rows[start : start + _BATCH_ROWS])
    return len(rows)
