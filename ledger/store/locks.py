"""Locks among the processes that share a store: the one batcher, one sender per account, and one
creator per FHIR consent document.

Exactly one batcher at a time. On SQLite one process owns the store, so the lock is always held.
On PostgreSQL it is a session advisory lock taken on a connection of its own: the server
releases it the moment that session ends, so when the holder dies (``kill -9``, a crash, a lost
network) another replica takes over at its next try, with no lease to wait out. TCP keepalives
make the server notice a vanished holder within about 15 s.

The lock saves duplicate work; it is not what keeps records from being anchored twice. Sealing
refuses rows another process sealed meanwhile, and the contract refuses a root anchored twice
(the batcher then records the existing anchor), so even two batchers at once cannot double-anchor.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterator

import psycopg

from ledger.store.database import Database
from ledger.store.postgres import advisory_key

BATCHER_LOCK_KEY = 0x6361_7265_6261_7463  # "carebatc"
log = logging.getLogger("careledger.batcher")


class BatcherLock:
    """Whether this process is the one batcher; :meth:`hold` takes or confirms it without waiting."""

    def __init__(self, db: Database, key: int = BATCHER_LOCK_KEY) -> None:
        self.db = db
        self.key = key
        self._conn: psycopg.Connection[tuple[object, ...]] | None = None
        self._guard = threading.Lock()

    @property
    def held(self) -> bool:
        """Held at the last :meth:`hold` (always on an unshared store)."""
        return not self.db.shared or self._conn is not None

    def hold(self) -> bool:
        """Take the lock if it is free, or check that it is still ours; False if another holds it
        or the database cannot be reached (this process must not batch then)."""
        if self.db.url is None:
            return True
        with self._guard:
            try:
                if self._conn is not None:
                    self._conn.execute("SELECT 1")  # still our session, so still our lock
                    return True
                conn = psycopg.connect(
                    self.db.url,
                    autocommit=True,
                    connect_timeout=10,
                    keepalives=1,
                    keepalives_idle=5,
                    keepalives_interval=2,
                    keepalives_count=3,
                    application_name="careledger-batcher",
                )
                row = conn.execute("SELECT pg_try_advisory_lock(%s)", (self.key,)).fetchone()
                if row is not None and row[0]:
                    self._conn = conn
                    log.info("this process is the batcher now")
                    return True
                conn.close()
                return False
            except psycopg.Error as err:
                log.warning("batcher lock lost or not reachable: %s", err)
                self._drop()
                return False

    def release(self) -> None:
        """Let another process batch (closing the session releases the lock)."""
        with self._guard:
            self._drop()

    def _drop(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(psycopg.Error):
                self._conn.close()
            self._conn = None


@contextlib.contextmanager
def naming_organisations(db: Database) -> Iterator[None]:
    """Hold the store-wide lock under which an organisation's name is checked (taken, or looking
    like another's) and the organisation created, so that two replicas creating look-alike names
    at once cannot both pass the check. A store of one process only (SQLite) needs no lock here:
    the caller's in-process lock serialises it."""
    if not db.shared:
        yield
        return
    with _session_lock(db, advisory_key("naming", "organisations")):
        yield


@contextlib.contextmanager
def sending_as(db: Database, address: str) -> Iterator[None]:
    """Hold the store-wide lock of one sending account while its next nonce is read and its
    transaction sent, so that replicas sending from the same key (the relayer, an organisation's
    key) never pick the same nonce. Held for the send only, not while waiting to be mined."""
    with _session_lock(db, advisory_key("sender", address.lower())):
        yield


class _KeyedLocks:
    """One in-process lock per key, kept while someone holds or waits for it."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._locks: dict[bytes, tuple[threading.Lock, int]] = {}

    @contextlib.contextmanager
    def holding(self, key: bytes) -> Iterator[None]:
        with self._guard:
            lock, users = self._locks.get(key, (threading.Lock(), 0))
            self._locks[key] = (lock, users + 1)
        try:
            with lock:
                yield
        finally:
            with self._guard:
                lock, users = self._locks[key]
                if users == 1:
                    del self._locks[key]
                else:
                    self._locks[key] = (lock, users - 1)


_granting_documents = _KeyedLocks()


@contextlib.contextmanager
def granting_document(db: Database, terms: bytes) -> Iterator[None]:
    """Hold the store-wide lock of one consent document (its ``terms``) while a FHIR Consent of it is
    kept, relayed and completed, so that identical creates at once (in this process or on another
    replica) relay it once: the second finds the first's row when the first is done."""
    with _granting_documents.holding(terms):
        if not db.shared:
            yield
            return
        with _session_lock(db, advisory_key("consent-document", terms.hex())):
            yield


@contextlib.contextmanager
def _session_lock(db: Database, key: int) -> Iterator[None]:
    """Hold PostgreSQL's session advisory lock ``key`` on this thread's connection, waiting for it."""
    conn = db.conn
    conn.execute("SELECT pg_advisory_lock(?)", (key,))
    try:
        yield
    finally:
        with contextlib.suppress(Exception):  # a lost session has released the lock already
            conn.execute("SELECT pg_advisory_unlock(?)", (key,))
