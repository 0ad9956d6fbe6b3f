"""A py-evm key-value database kept in one SQLite file, so the embedded chain survives restarts.

py-evm writes the chain through :class:`eth.abc.AtomicDatabaseAPI`: trie nodes, blocks, receipts,
the transaction index and the canonical head arrive in *batches* (``atomic_batch()``) that py-evm
expects to land all-or-nothing. :class:`SqliteAtomicDB` stages each batch in memory and writes it
as ONE SQLite transaction (``BEGIN IMMEDIATE`` ... ``COMMIT``), so a process killed at any moment
leaves either the whole batch or none of it. Writing keys one by one is not enough: a kill between
the block and its transaction index leaves a head whose lookups fail.

Durability: the store runs in WAL mode with ``synchronous=FULL`` by default. Any setting survives
``kill -9`` (committed pages are in the OS cache); FULL also keeps the last commits across a power
loss or kernel crash, because every commit fsyncs the WAL. CareLedger hands out transaction hashes
as proof that something was anchored, so an acknowledged block must not vanish; ``NORMAL`` (faster:
``bench/embedded_chain_rate.py`` measures both) is available where the chain can be rebuilt.

The store is not safe for two writer processes: :mod:`ledger.chain.embedded.backend` guards the data
directory with a lock. Readers may open it concurrently with ``read_only=True``.
"""

from __future__ import annotations

import itertools
import sqlite3
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import Final, Literal

from eth.abc import AtomicWriteBatchAPI
from eth.db.atomic import AtomicDBWriteBatch
from eth.db.backends.base import BaseAtomicDB

from ledger.exceptions import (
    ChainError,
    ChainLockedError,
    ChainUnavailableError,
    InputError,
    IntegrityError,
    LedgerError,
    NotFoundError,
    StorageFullError,
)

Synchronous = Literal["OFF", "NORMAL", "FULL", "EXTRA"]
"""SQLite ``PRAGMA synchronous`` levels accepted by :class:`SqliteAtomicDB`."""

STORE_FORMAT_VERSION: Final = 1
"""Written to ``PRAGMA user_version`` when a store is created; other values are refused."""

_SCHEMA: Final = "CREATE TABLE IF NOT EXISTS kv (key BLOB PRIMARY KEY, value BLOB NOT NULL) WITHOUT ROWID"
_SELECT: Final = "SELECT value FROM kv WHERE key = ?"
_EXISTS: Final = "SELECT 1 FROM kv WHERE key = ?"
_UPSERT: Final = "INSERT OR REPLACE INTO kv (key, value) VALUES (?, ?)"
_DELETE: Final = "DELETE FROM kv WHERE key = ?"
_SYNCHRONOUS_LEVELS: Final = frozenset({"OFF", "NORMAL", "FULL", "EXTRA"})

DEFAULT_CACHE_ENTRIES: Final = 50_000
"""Values kept in the writer's read cache (trie nodes, mostly); see :class:`SqliteAtomicDB`."""


class SqliteAtomicDB(BaseAtomicDB):
    """py-evm's atomic key-value database over one SQLite table (``kv``, WITHOUT ROWID).

    Writes outside a batch are each their own (autocommit) transaction; writes inside
    ``atomic_batch()`` become visible and durable together when the block exits without error.

    One connection is shared by the whole process and guarded by a lock, so the store may be used
    from any thread; py-evm and eth-tester above it are not thread-safe, so callers should still
    serialise chain calls.

    :meth:`group` widens the transaction: every batch and write inside it commits together, with
    one fsync. The embedded chain wraps each send-and-mine in a group, so a transaction and its
    block land together and FULL durability costs one fsync per transaction instead of seven.

    A writer keeps the values it last read or wrote in a bounded cache: py-evm reads ~75 keys per
    transaction (mostly the same trie nodes), and the writer is the only process changing the
    file (the data directory lock sees to that), so the cache cannot go stale. Read-only views
    do not cache, because the writer changes the file under them.

    Args:
        path: The SQLite file. Created (with its table) unless ``read_only``.
        read_only: Open with ``mode=ro``; every write raises :class:`ChainError` before reaching
            SQLite. Meant for auditors reading a chain another process writes.
        synchronous: ``PRAGMA synchronous`` for the writer; see the module docstring.
        cache_entries: Size of the writer's read cache; 0 disables it.

    Raises:
        NotFoundError: ``read_only`` and the file or its table does not exist.
        IntegrityError: The file is not a SQLite database or not a store of this format.
        ChainUnavailableError: The file cannot be opened (permissions, missing directory).
        InputError: ``synchronous`` is not a SQLite level.
    """

    def __init__(
        self,
        path: Path,
        *,
        read_only: bool = False,
        synchronous: Synchronous = "FULL",
        cache_entries: int = DEFAULT_CACHE_ENTRIES,
    ) -> None:
        if synchronous not in _SYNCHRONOUS_LEVELS:
            raise InputError(f"unknown synchronous level {synchronous!r}", synchronous=synchronous)
        self._path = Path(path)
        self._read_only = read_only
        self._lock = threading.RLock()
        self._group_keys: set[bytes] | None = None  # keys written in the open group, if any
        self._cache: dict[bytes, bytes] = {}
        self._cache_entries = 0 if read_only else max(cache_entries, 0)
        if read_only and not self._path.is_file():
            raise NotFoundError(f"no embedded chain store at {self._path}", path=str(self._path))
        try:
            self._conn = self._connect(synchronous)
        except sqlite3.Error as err:
            raise _translate(err, self._path) from err

    # --- opening -----------------------------------------------------------------------------

    def _connect(self, synchronous: Synchronous) -> sqlite3.Connection:
        """Open the connection, set WAL and durability, and check or create the table."""
        if self._read_only:
            target, uri = self._path.resolve().as_uri() + "?mode=ro", True
        else:
            target, uri = str(self._path), False
        # isolation_level=None: autocommit, so single writes are their own transaction and
        # batches are delimited by our explicit BEGIN IMMEDIATE / COMMIT.
        conn = sqlite3.connect(target, uri=uri, isolation_level=None, check_same_thread=False)
        try:
            conn.execute("PRAGMA busy_timeout = 5000")
            if self._read_only:
                self._check_format(conn)
            else:
                mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
                if str(mode).lower() != "wal":
                    raise IntegrityError(f"cannot put {self._path} in WAL mode (got {mode})")
                conn.execute(f"PRAGMA synchronous = {synchronous}")
                self._create_or_check_format(conn)
        except BaseException:
            conn.close()
            raise
        return conn

    def _create_or_check_format(self, conn: sqlite3.Connection) -> None:
        """Create the table in a new file; refuse files written by something else."""
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version == 0:
            has_tables = conn.execute("SELECT count(*) FROM sqlite_schema").fetchone()[0]
            if has_tables:
                raise IntegrityError(f"{self._path} is a SQLite file of another application")
            conn.execute("BEGIN IMMEDIATE")
            conn.execute(_SCHEMA)
            conn.execute(f"PRAGMA user_version = {STORE_FORMAT_VERSION}")
            conn.execute("COMMIT")
        elif version != STORE_FORMAT_VERSION:
            raise IntegrityError(
                f"{self._path} has store format {version}, expected {STORE_FORMAT_VERSION}",
                path=str(self._path),
            )

    def _check_format(self, conn: sqlite3.Connection) -> None:
        """For readers: the file must already be a store of this format."""
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version == 0:
            raise NotFoundError(f"{self._path} holds no embedded chain yet", path=str(self._path))
        if version != STORE_FORMAT_VERSION:
            raise IntegrityError(
                f"{self._path} has store format {version}, expected {STORE_FORMAT_VERSION}",
                path=str(self._path),
            )

    # --- properties --------------------------------------------------------------------------

    @property
    def path(self) -> Path:
        """The SQLite file behind this store."""
        return self._path

    @property
    def read_only(self) -> bool:
        """Whether writes are refused."""
        return self._read_only

    # --- DatabaseAPI -------------------------------------------------------------------------

    def __getitem__(self, key: bytes) -> bytes:
        try:
            return self._cache[key]
        except KeyError:
            pass
        with self._lock:
            try:
                row = self._conn.execute(_SELECT, (key,)).fetchone()
            except sqlite3.Error as err:
                raise _translate(err, self._path) from err
        if row is None:
            raise KeyError(key)
        value: bytes = row[0]
        self._remember(key, value)
        return value

    def _exists(self, key: bytes) -> bool:
        if key in self._cache:
            return True
        with self._lock:
            try:
                row = self._conn.execute(_EXISTS, (key,)).fetchone()
            except sqlite3.Error as err:
                raise _translate(err, self._path) from err
        return row is not None

    def __setitem__(self, key: bytes, value: bytes) -> None:
        self._refuse_if_read_only()
        with self._lock:
            try:
                self._conn.execute(_UPSERT, (key, value))
            except sqlite3.Error as err:
                raise _translate(err, self._path) from err
            self._note_written(key)
            self._remember(key, value)

    def __delitem__(self, key: bytes) -> None:
        self._refuse_if_read_only()
        with self._lock:
            try:
                deleted = self._conn.execute(_DELETE, (key,)).rowcount
            except sqlite3.Error as err:
                raise _translate(err, self._path) from err
            self._note_written(key)
            self._cache.pop(key, None)
        if deleted == 0:
            raise KeyError(key)

    # --- AtomicDatabaseAPI -------------------------------------------------------------------

    @contextmanager
    def atomic_batch(self) -> Iterator[AtomicWriteBatchAPI]:
        """Stage writes in memory; on a clean exit write them all in one SQLite transaction.

        Reads through the batch see its own staged writes over the committed store. If the
        block raises, nothing is written.
        """
        with _SqliteWriteBatch._commit_unless_raises(self) as batch:
            yield batch

    def commit_changes(self, puts: Iterable[tuple[bytes, bytes]], deletes: Iterable[bytes]) -> None:
        """Write ``puts`` and remove ``deletes`` as one transaction: all of them or none.

        Args:
            puts: ``(key, value)`` pairs to insert or replace.
            deletes: Keys to remove; missing keys are ignored.

        Raises:
            ChainError: The store is read-only or closed, or SQLite refused the write (the
                transaction is rolled back first).
            StorageFullError: The disk is full (nothing was written).
        """
        self._refuse_if_read_only()
        put_rows = list(puts)
        delete_rows = [(key,) for key in deletes]
        if not put_rows and not delete_rows:
            return
        with self._lock:
            conn = self._conn
            in_group = self._group_keys is not None
            try:
                if not in_group:
                    conn.execute("BEGIN IMMEDIATE")
                try:
                    if put_rows:
                        conn.executemany(_UPSERT, put_rows)
                    if delete_rows:
                        conn.executemany(_DELETE, delete_rows)
                    if not in_group:
                        conn.execute("COMMIT")
                except BaseException:
                    if not in_group and conn.in_transaction:
                        conn.execute("ROLLBACK")
                    raise
            except sqlite3.Error as err:
                raise _translate(err, self._path) from err
            # Only once written: a failed transaction leaves the cache as the file is. Inside a
            # group the keys are noted, so that a rollback can evict them again.
            for key, value in put_rows:
                self._note_written(key)
                self._remember(key, value)
            for (key,) in delete_rows:
                self._note_written(key)
                self._cache.pop(key, None)

    @contextmanager
    def group(self) -> Iterator[None]:
        """Commit every write made inside the block as ONE transaction, or none if it raises.

        Batches inside the group stay atomic (they are part of a larger atomic unit). The store's
        lock is held for the whole group, so other threads wait rather than join it. Nested
        groups join the outermost one.

        Raises:
            ChainError: The store is read-only or closed, or SQLite refused the commit.
            StorageFullError: The disk is full (nothing of the group was written).
        """
        self._refuse_if_read_only()
        with self._lock:
            if self._group_keys is not None:
                yield
                return
            conn = self._conn
            try:
                conn.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as err:
                raise _translate(err, self._path) from err
            self._group_keys = set()
            try:
                yield
                conn.execute("COMMIT")
            except BaseException as exc:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                for key in self._group_keys:
                    self._cache.pop(key, None)
                if isinstance(exc, sqlite3.Error):
                    raise _translate(exc, self._path) from exc
                raise
            finally:
                self._group_keys = None

    def _note_written(self, key: bytes) -> None:
        if self._group_keys is not None:
            self._group_keys.add(key)

    def _remember(self, key: bytes, value: bytes) -> None:
        """Cache a committed value, evicting the oldest entries beyond the bound."""
        if not self._cache_entries:
            return
        cache = self._cache
        cache[key] = value
        if len(cache) > self._cache_entries:
            for stale in list(itertools.islice(cache, len(cache) // 10)):
                del cache[stale]

    # --- lifecycle ---------------------------------------------------------------------------

    def close(self) -> None:
        """Close the connection (the last writer's close also checkpoints the WAL). Idempotent."""
        with self._lock:
            self._conn.close()
            self._cache.clear()
            self._cache_entries = 0

    def __enter__(self) -> SqliteAtomicDB:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        mode = "ro" if self._read_only else "rw"
        return f"SqliteAtomicDB({str(self._path)!r}, {mode})"

    def _refuse_if_read_only(self) -> None:
        if self._read_only:
            raise ChainError(f"embedded chain store {self._path} is open read-only", path=str(self._path))


class _SqliteWriteBatch(AtomicDBWriteBatch):
    """py-evm's in-memory write batch, committed through :meth:`SqliteAtomicDB.commit_changes`.

    The base class already gives the semantics py-evm's test suite expects (reads see staged
    writes, use after the context raises); only the final commit differs, because the base
    class would replay the batch key by key, each write its own transaction.
    """

    def __init__(self, store: SqliteAtomicDB) -> None:
        super().__init__(store)
        self._store = store

    def _commit(self) -> None:
        diff = self._diff()
        self._store.commit_changes(diff.pending_items(), diff.deleted_keys())


def _translate(err: sqlite3.Error, path: Path) -> LedgerError:
    """Map a SQLite error to the ledger's hierarchy (by SQLite's primary result code)."""
    name = getattr(err, "sqlite_errorname", "") or ""
    details = {"path": str(path), "sqlite_error": name or type(err).__name__}
    if isinstance(err, sqlite3.ProgrammingError):
        return ChainError(f"embedded chain store {path} is closed or misused: {err}", **details)
    if name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")):
        return ChainLockedError(f"embedded chain store {path} is locked: {err}", **details)
    if name.startswith("SQLITE_READONLY"):
        return ChainError(f"embedded chain store {path} refused a write: {err}", **details)
    if name.startswith(("SQLITE_CORRUPT", "SQLITE_NOTADB")):
        return IntegrityError(f"embedded chain store {path} is corrupt: {err}", **details)
    if name.startswith("SQLITE_FULL"):  # nothing of the write landed; it succeeds once space is freed
        return StorageFullError("the embedded chain's disk is full: nothing was written; retry once space is freed")
    if name.startswith(("SQLITE_CANTOPEN", "SQLITE_IOERR", "SQLITE_PERM")):
        return ChainUnavailableError(f"embedded chain store {path} unusable: {err}", **details)
    return ChainError(f"embedded chain store {path}: {err}", **details)
