"""The store's database: SQLite in the data directory (one API process), or PostgreSQL (replicas).

SQLite is the default. Its schema lives in numbered SQL files under ``migrations/``
(``0001_initial.sql``, ...). Opening the database applies, in order and each in its own transaction,
the files it has not had yet (their numbers are recorded in ``schema_migrations``; ``PRAGMA
user_version`` holds the highest); a database newer than the code is refused. Connections use WAL
with ``synchronous=FULL``: a committed transaction survives ``kill -9`` and power loss. A full disk
is :class:`~ledger.exceptions.StorageFullError` (:class:`SqliteConnection`): the failed write is not
committed, and the next one succeeds once space is freed. With a ``database_url``, the store is on
PostgreSQL instead (:mod:`ledger.store.postgres`, its own migrations in ``migrations_postgres/``),
shared by several API processes.

Both hand out :class:`Connection` objects with the part of the ``sqlite3`` interface the store
uses; the store's SQL is written once, in SQLite's dialect, and rewritten for PostgreSQL.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, Protocol, TypeVar

import psycopg

from ledger.exceptions import IntegrityError, StorageFullError, StoreLockedError, StoreUnavailableError
from ledger.files import locks as file_lock
from ledger.store import postgres
from ledger.store.migration_files import SQLITE, migration_files, migrations_to_apply

T = TypeVar("T")

STORE_FILE = "ledger.sqlite3"
STORE_LOCK_FILE = "ledger.sqlite3.lock"

INTEGRITY_ERRORS: tuple[type[Exception], ...] = (sqlite3.IntegrityError, psycopg.IntegrityError)
"""A statement broke a constraint (a unique key taken): the caller's conflict, not an outage."""
STATEMENT_ERRORS: tuple[type[Exception], ...] = (sqlite3.Error, psycopg.DatabaseError)
"""A statement failed; on PostgreSQL a lost connection is raised as StoreUnavailableError instead."""


class Cursor(Protocol):
    """What the store reads from an executed statement."""

    @property
    def rowcount(self) -> int: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...

    def __iter__(self) -> Iterator[Any]: ...


class Connection(Protocol):
    """The part of ``sqlite3.Connection`` the store uses (a psycopg connection is adapted to it)."""

    def execute(self, sql: str, params: Sequence[Any] = ..., /) -> Cursor: ...

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]], /) -> Cursor: ...

    @property
    def in_transaction(self) -> bool: ...

    def close(self) -> None: ...


def migrations() -> list[tuple[int, str, str]]:
    """``(version, file name, SQL)`` of every shipped migration for this database, in order."""
    return migration_files(SQLITE)


class SqliteConnection(sqlite3.Connection):
    """A ``sqlite3`` connection whose statements raise :class:`StorageFullError` when the disk is full.

    SQLite reports a full disk (``SQLITE_FULL``, "database or disk is full") as an
    ``OperationalError`` like any failed statement; callers that treat those as their own
    statement's fault (the intake fails one submission alone for them) would blame a request for
    what is an outage. The statement's transaction is left for the caller to roll back, as with any
    failed statement (SQLite may already have rolled it back itself).
    """

    def execute(self, sql: str, parameters: Any = (), /) -> sqlite3.Cursor:
        with _FULL_DISK:
            return super().execute(sql, parameters)

    def executemany(self, sql: str, parameters: Iterable[Any], /) -> sqlite3.Cursor:
        with _FULL_DISK:
            return super().executemany(sql, parameters)


STORAGE_FULL_MESSAGE = "the ledger's disk is full: nothing was written; retry once space is freed"


def is_disk_full(err: BaseException) -> bool:
    """Whether SQLite failed because the disk is full (``SQLITE_FULL``, by its primary result code)."""
    return isinstance(err, sqlite3.OperationalError) and err.sqlite_errorcode & 0xFF == sqlite3.SQLITE_FULL


class _FullDiskTranslation:
    """Context re-raising SQLite's full disk as :class:`StorageFullError`; anything else as it is."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, err: BaseException | None, tb: object) -> None:
        if err is not None and is_disk_full(err):
            raise StorageFullError(STORAGE_FULL_MESSAGE) from err


_FULL_DISK = _FullDiskTranslation()


def connect(path: Path, *, read_only: bool = False) -> sqlite3.Connection:
    """A connection with the store's settings (autocommit off: callers use ``with conn:``)."""
    if read_only:
        conn = sqlite3.connect(
            f"file:{path}?mode=ro", uri=True, check_same_thread=False, timeout=30, factory=SqliteConnection
        )
    else:
        conn = sqlite3.connect(path, check_same_thread=False, timeout=30, factory=SqliteConnection)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
    conn.execute("PRAGMA foreign_keys=ON")
    conn.execute("PRAGMA busy_timeout=30000")
    return conn


APPLIED_MIGRATIONS_TABLE = "schema_migrations"
"""The numbers of the migrations a SQLite store has had (``PRAGMA user_version`` holds the highest)."""


def migrate(conn: sqlite3.Connection) -> int:
    """Bring the schema up to date: apply, in number order, every shipped migration the database has
    not had (numbers may skip, see :mod:`~ledger.store.migration_files`); return the highest number.

    A database that had a migration this code does not ship is newer than the code, and refused."""
    shipped = migrations()
    applied = _applied_migrations(conn)
    for version, name, sql in migrations_to_apply(shipped, applied):
        try:
            conn.execute("BEGIN IMMEDIATE")
            for statement in _statements(sql):
                conn.execute(statement)
            conn.execute(f"INSERT INTO {APPLIED_MIGRATIONS_TABLE} (version) VALUES (?)", (version,))
            conn.execute(f"PRAGMA user_version = {max({version, *applied})}")
            conn.execute("COMMIT")
        except sqlite3.Error as err:
            conn.execute("ROLLBACK")
            raise IntegrityError(f"migration {name} failed: {err}") from err
        applied.add(version)
    return shipped[-1][0]


def _applied_migrations(conn: sqlite3.Connection) -> set[int]:
    """The numbers of the migrations applied so far. A store migrated before they were recorded one
    by one had every number up to its ``user_version`` (numbers did not skip then)."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.execute(f"CREATE TABLE IF NOT EXISTS {APPLIED_MIGRATIONS_TABLE} (version INTEGER PRIMARY KEY)")
        applied = {int(row[0]) for row in conn.execute(f"SELECT version FROM {APPLIED_MIGRATIONS_TABLE}")}
        (current,) = conn.execute("PRAGMA user_version").fetchone()
        if not applied and current:
            conn.executemany(
                f"INSERT INTO {APPLIED_MIGRATIONS_TABLE} (version) VALUES (?)", [(v,) for v in range(1, current + 1)]
            )
            applied = set(range(1, current + 1))
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return applied


def _statements(sql: str) -> list[str]:
    """Split a migration into complete statements (SQLite's own parser decides where one ends)."""
    statements, pending = [], ""
    for line in sql.splitlines(keepends=True):
        pending += line
        if sqlite3.complete_statement(pending):
            statements.append(pending.strip())
            pending = ""
    if pending.strip() and not all(part.strip().startswith("--") or not part.strip() for part in pending.splitlines()):
        raise IntegrityError("migration ends with an incomplete statement")
    return statements


class Database:
    """The store, with one connection per thread (connections are not shared between threads).

    Args:
        path: The SQLite file (ignored with ``url``).
        url: A PostgreSQL connection URL; the store is shared with other processes then.
        read_only: Open SQLite read-only (auditors reading a copy).
    """

    def __init__(
        self, path: Path, *, url: str | None = None, read_only: bool = False, lock_fd: int | None = None
    ) -> None:
        self.path = Path(path)
        self.url = url
        self.read_only = read_only
        self._lock_fd = lock_fd
        self._local = threading.local()
        self._all: list[Connection] = []
        self._guard = threading.Lock()

    @property
    def shared(self) -> bool:
        """Whether other processes may write this store at the same time (PostgreSQL)."""
        return self.url is not None

    @property
    def conn(self) -> Connection:
        """This thread's connection (a PostgreSQL connection that broke is replaced)."""
        conn: Connection | None = getattr(self._local, "conn", None)
        if conn is not None and isinstance(conn, postgres.PostgresConnection) and conn.broken:
            with self._guard:
                self._all.remove(conn)
            conn.close()
            conn = None
        if conn is None:
            if self.url is not None:
                conn = postgres.PostgresConnection(self.url)
            else:
                sqlite_conn = connect(self.path, read_only=self.read_only)
                sqlite_conn.isolation_level = None  # explicit BEGIN/COMMIT only
                conn = sqlite_conn
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
            if self._lock_fd is not None:
                file_lock.release(self._lock_fd)
                self._lock_fd = None
        self._local = threading.local()


def open_database(data_dir: Path, *, url: str | None = None, read_only: bool = False) -> Database:
    """Open (creating and migrating if needed) the store in ``data_dir``, or on PostgreSQL at ``url``."""
    path = Path(data_dir) / STORE_FILE
    if url is not None:
        postgres.migrate(url)
        return Database(path, url=url)
    if read_only:
        return Database(path, read_only=True)
    Path(data_dir).mkdir(parents=True, exist_ok=True)
    lock_path = Path(data_dir) / STORE_LOCK_FILE
    lock_fd = file_lock.acquire(
        lock_path,
        lambda holder: StoreLockedError(
            f"store {path} is open for writing by another process" + (f" (pid {holder})" if holder else ""),
            holder_pid=holder,
        ),
        lambda err: StoreLockedError(f"cannot open lock file {lock_path}: {err}"),
    )
    try:
        conn = connect(path)
        conn.isolation_level = None
        try:
            migrate(conn)
        finally:
            conn.close()
    except BaseException:
        file_lock.release(lock_fd)
        raise
    return Database(path, lock_fd=lock_fd)


def with_tx(conn: Connection, action: Callable[[], T]) -> T:
    """Run ``action()`` inside one IMMEDIATE transaction."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        result = action()
        conn.execute("COMMIT")
    except BaseException:
        rollback(conn)
        raise
    return result


def rollback(conn: Connection) -> None:
    """Roll back the open transaction, if any (a PostgreSQL connection that is gone has none left)."""
    if conn.in_transaction:
        with contextlib.suppress(StoreUnavailableError):
            conn.execute("ROLLBACK")
