"""The store on PostgreSQL, for several API replicas sharing one database.

The store's queries are written once, in the SQL both databases speak, with SQLite's ``?``
placeholders; :class:`PostgresConnection` gives a psycopg connection the small part of the
``sqlite3.Connection`` interface the store uses, rewriting each statement once (placeholders,
``BEGIN IMMEDIATE``, ``INSERT OR IGNORE``, ``json_extract``) and caching the result. It runs in
autocommit mode so that the store's explicit ``BEGIN``/``COMMIT`` delimit transactions exactly as on
SQLite; commits are durable (``synchronous_commit`` is left on).

A connection that breaks raises :class:`~ledger.exceptions.StoreUnavailableError` (503) and is
replaced on next use; whatever transaction it held is rolled back by the server, so a request is
either committed and acknowledged or fails and is not.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import re
from collections.abc import Iterator, Sequence
from typing import Any

import psycopg
from psycopg.pq import TransactionStatus

from ledger.exceptions import InputError, IntegrityError, StoreUnavailableError
from ledger.store.migration_files import POSTGRES, migration_files, migrations_to_apply

MIGRATION_LOCK = 0x6361_7265_6C65_6467  # "careledg": one replica migrates at a time
_JSON_EXTRACT = re.compile(r"json_extract\((\w+), '\$\.(\w+)'\)")
_INSERT_OR_IGNORE = re.compile(r"^\s*INSERT OR IGNORE INTO", re.IGNORECASE)
_PLAIN_INSERT = re.compile(r"^\s*INSERT INTO (\w+) \(([\w\s,]+)\)\s*VALUES\s*\(\s*\?(?:\s*,\s*\?)*\s*\)\s*$")
COPY_FROM_ROWS = 64
"""An INSERT of at least this many rows is sent as COPY."""


@functools.lru_cache(maxsize=512)
def to_postgres(sql: str) -> str:
    """The store's SQLite-flavoured statement in PostgreSQL's dialect."""
    translated = sql.replace("%", "%%").replace("?", "%s")
    if translated.strip().upper() == "BEGIN IMMEDIATE":
        return "BEGIN"
    translated = _JSON_EXTRACT.sub(r"(\1::jsonb ->> '\2')", translated)
    if _INSERT_OR_IGNORE.match(translated):
        translated = _INSERT_OR_IGNORE.sub("INSERT INTO", translated, count=1).rstrip() + " ON CONFLICT DO NOTHING"
    return translated


@functools.lru_cache(maxsize=64)
def _copy_target(sql: str) -> str | None:
    """``table (columns)`` if ``sql`` is a plain ``INSERT INTO table (columns) VALUES (?, ...)``."""
    match = _PLAIN_INSERT.match(sql)
    if match is None:
        return None
    columns = ", ".join(part.strip() for part in match.group(2).split(","))
    return f"{match.group(1)} ({columns})"


class PostgresCursor:
    """A psycopg cursor answering like a sqlite3 cursor (``fetchone``, ``fetchall``, ``rowcount``)."""

    def __init__(self, cursor: psycopg.Cursor[Any], owner: PostgresConnection, rowcount: int | None = None) -> None:
        self._cursor = cursor
        self._owner = owner
        self._rowcount = rowcount

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount if self._rowcount is None else self._rowcount

    def fetchone(self) -> Any:
        with self._owner.errors():
            return self._cursor.fetchone()

    def fetchall(self) -> list[Any]:
        with self._owner.errors():
            return self._cursor.fetchall()

    def __iter__(self) -> Iterator[Any]:
        return iter(self.fetchall())


class PostgresConnection:
    """One psycopg connection (autocommit; the store's own BEGIN/COMMIT make transactions)."""

    def __init__(self, url: str) -> None:
        self.url = url
        try:
            self._pg = psycopg.connect(url, autocommit=True, connect_timeout=10)
        except psycopg.OperationalError as err:
            raise StoreUnavailableError(f"database unreachable: {_first_line(err)}") from err
        self.broken = False

    @functools.cached_property
    def _errors(self) -> _Translating:
        return _Translating(self)

    def errors(self) -> _Translating:
        """Context that turns a lost connection into :class:`StoreUnavailableError`."""
        return self._errors

    def execute(self, sql: str, params: Sequence[Any] = ()) -> PostgresCursor:
        with self.errors():
            cursor = self._pg.cursor()
            cursor.execute(to_postgres(sql), params or None)
        return PostgresCursor(cursor, self)

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> PostgresCursor:
        """Many rows: a plain INSERT of many rows is sent as one ``COPY`` (what a bulk registration
        costs then is one stream, not a statement per row); anything else as one statement per row."""
        with self.errors():
            cursor = self._pg.cursor()
            target = _copy_target(sql) if len(rows) >= COPY_FROM_ROWS else None
            if target is None:
                cursor.executemany(to_postgres(sql), rows)
                return PostgresCursor(cursor, self)
            with cursor.copy(f"COPY {target} FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
        return PostgresCursor(cursor, self, rowcount=len(rows))

    @property
    def in_transaction(self) -> bool:
        return self._pg.info.transaction_status != TransactionStatus.IDLE

    def close(self) -> None:
        self._pg.close()


class _Translating:
    def __init__(self, owner: PostgresConnection) -> None:
        self._owner = owner

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, err: BaseException | None, tb: object) -> None:
        if isinstance(err, psycopg.DataError) and "NUL" in str(err):  # refused before it was sent
            raise InputError("text may not contain NUL characters") from err
        if isinstance(err, psycopg.OperationalError) or (err is not None and self._owner._pg.broken):
            self._owner.broken = True
            raise StoreUnavailableError(f"database connection lost: {_first_line(err)}") from err


def _first_line(err: BaseException | None) -> str:
    return str(err).strip().splitlines()[0] if err is not None and str(err).strip() else type(err).__name__


def migrations() -> list[tuple[int, str, str]]:
    """``(version, file name, SQL)`` of every shipped migration for this database, in order."""
    return migration_files(POSTGRES)


@contextlib.contextmanager
def session(url: str) -> Iterator[psycopg.Connection[tuple[Any, ...]]]:
    """A connection of its own (autocommit) for the length of a block; a database that cannot be
    reached, or a connection lost within the block, is :class:`StoreUnavailableError`."""
    try:
        with psycopg.connect(url, autocommit=True, connect_timeout=10) as pg:
            yield pg
    except psycopg.OperationalError as err:
        raise StoreUnavailableError(f"database unreachable: {_first_line(err)}") from err


def advisory_key(namespace: str, name: str) -> int:
    """The 64-bit key of the advisory lock on ``name`` (an account, a document) in ``namespace``."""
    digest = hashlib.sha256(f"careledger-{namespace}:{name}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def migrate(url: str) -> int:
    """Bring the schema up to date (one replica at a time, each migration in its own transaction):
    every shipped migration not yet in ``schema_version`` is applied, in number order (numbers may
    skip, see :mod:`~ledger.store.migration_files`); returns the highest number. A database that
    had a migration this code does not ship is newer than the code, and refused."""
    shipped = migrations()
    with session(url) as pg:
        pg.execute("SELECT pg_advisory_lock(%s)", (MIGRATION_LOCK,))
        pg.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
        applied = {int(row[0]) for row in pg.execute("SELECT version FROM schema_version").fetchall()}
        for version, name, sql in migrations_to_apply(shipped, applied):
            try:
                with pg.transaction():
                    pg.execute(sql.encode("utf-8"))
                    pg.execute("INSERT INTO schema_version (version) VALUES (%s)", (version,))
            except psycopg.Error as err:
                raise IntegrityError(f"migration {name} failed: {_first_line(err)}") from err
        pg.execute("SELECT pg_advisory_unlock(%s)", (MIGRATION_LOCK,))
    return shipped[-1][0]
