"""SQLite connections and the migration runner.

The schema lives in numbered SQL files under ``migrations/`` (``0001_initial.sql``, ...). Opening
the database applies, in order and each in its own transaction, the files whose number is above
the recorded ``PRAGMA user_version``; a database newer than the code is refused. Connections use
WAL with ``synchronous=FULL``: a committed transaction survives ``kill -9`` and power loss.
"""

from __future__ import annotations

import re
import sqlite3
import threading
from importlib import resources
from pathlib import Path

from ledger.exceptions import IntegrityError

STORE_FILE = "ledger.sqlite3"
_MIGRATION_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")


def migrations() -> list[tuple[int, str, str]]:
    """``(version, file name, SQL)`` of every shipped migration, in order."""
    found = []
    for entry in resources.files("ledger.store.migrations").iterdir():
        match = _MIGRATION_NAME.match(entry.name)
        if match:
            found.append((int(match.group(1)), entry.name, entry.read_text("utf-8")))
    found.sort()
    if [v for v, _, _ in found] != list(range(1, len(found) + 1)):
        raise IntegrityError("migration numbers must run 1, 2, 3, ... without gaps")
    return found


def connect(path: Path, *, read_only: bool = False) -> sqlite3.Connection:
    """A connection with the store's settings (autocommit off: callers use ``with conn:``)."""
    if read_only:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False, timeout=30)
    else:
        conn = sqlite3.connect(path, check_same_thread=False, timeout=30)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
    conn.execute("PRAGMA foreign_keys=ON")
    conn.execute("PRAGMA busy_timeout=30000")
    return conn


def migrate(conn: sqlite3.Connection) -> int:
    """Bring the schema up to date; return the version it is at."""
    (current,) = conn.execute("PRAGMA user_version").fetchone()
    shipped = migrations()
    if current > len(shipped):
        raise IntegrityError(f"database schema version {current} is newer than this code ({len(shipped)})")
    for version, name, sql in shipped[current:]:
        try:
            conn.execute("BEGIN IMMEDIATE")
            for statement in _statements(sql):
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {version}")
            conn.execute("COMMIT")
        except sqlite3.Error as err:
            conn.execute("ROLLBACK")
            raise IntegrityError(f"migration {name} failed: {err}") from err
    return len(shipped)


def _statements(sql: str) -> list[str]:
    """Split a migration into complete statements (SQLite's own parser decides where one ends)."""
    statements, pending = [], ""
    for line in sql.splitlines(keepends=True):
        pending += line
        if sqlite3.complete_statement(pending):
            statements.append(pending.strip())
            pending = ""
    if pending.strip() and not all(part.strip().startswith("--") or not part.strip()
                                   for part in pending.splitlines()):
        raise IntegrityError("migration ends with an incomplete statement")
    return statements


class Database:
    """The store file, with one connection per thread (sqlite3 connections are not shared)."""

    def __init__(self, path: Path, *, read_only: bool = False) -> None:
        self.path = Path(path)
        self.read_only = read_only
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._guard = threading.Lock()

    @property
    def conn(self) -> sqlite3.Connection:
        """This thread's connection."""
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = connect(self.path, read_only=self.read_only)
            conn.isolation_level = None  # explicit BEGIN/COMMIT only
            self._local.conn = conn
            with self._guard:
                self._all.append(conn)
        return conn

    def close(self) -> None:
        """Close every connection opened through this object."""
        with self._guard:
            for conn in self._all:
                conn.close()
            self._all.clear()
        self._local = threading.local()


def open_database(data_dir: Path, *, read_only: bool = False) -> Database:
    """Open (creating and migrating if needed) the store in ``data_dir``."""
    path = Path(data_dir) / STORE_FILE
    if not read_only:
        Path(data_dir).mkdir(parents=True, exist_ok=True)
        conn = connect(path)
        conn.isolation_level = None
        try:
            migrate(conn)
        finally:
            conn.close()
    return Database(path, read_only=read_only)
