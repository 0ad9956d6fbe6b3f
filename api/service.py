"""The running service: the ledger, the off-chain store, the intake, the batcher and the indexer.

:meth:`Service.open` builds all of it in one place (nothing is started); :meth:`Service.start`
starts the intake's writer, the batcher and the indexer, and :meth:`Service.stop` stops them and
releases the store and the chain. Tests drive an opened, unstarted service step by step.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from eth_account.signers.local import LocalAccount

from api.cpu_pool import CpuPool
from ledger.chain.indexer import ChainIndexer
from ledger.config import Settings
from ledger.consent.relay import Relayer
from ledger.exceptions import LedgerError
from ledger.files.private import secure_data_dir
from ledger.oauth.access_tokens import AccessTokenCache
from ledger.records.batcher import Batcher, BatcherConfig
from ledger.records.lifecycle import receipt_of
from ledger.records.receipts import Receipt
from ledger.records.tree_cache import TreeCache
from ledger.runtime import DEV_FUNDING_WEI, Ledger, open_ledger
from ledger.store import Database, open_database
from ledger.store.apps import (
    AppKeyCache,
    Organisation,
    create_organisation,
    get_organisation,
    list_organisations,
    organisation_by_name,
    set_emergency,
)
from ledger.store.database import STATEMENT_ERRORS
from ledger.store.idempotency import purge_statement
from ledger.store.intake import Intake
from ledger.store.locks import BatcherLock, naming_organisations, sending_as
from ledger.store.organisation_names import check_distinct, normalise_name
from ledger.store.records import Batch, RecordIds, StoredRecord

log = logging.getLogger("careledger.service")
_SLUG = re.compile(r"[^a-z0-9]+")
PURGE_INTERVAL_SECONDS = 3600.0
"""How often expired idempotency answers are deleted (also once at start)."""
PURGE_ERRORS: tuple[type[Exception], ...] = (LedgerError, *STATEMENT_ERRORS)


@dataclass
class Service:
    """Everything a request handler needs. One per process."""

    settings: Settings
    ledger: Ledger
    db: Database
    on_anchored: Callable[[Batch], None] | None = None
    trees: TreeCache = field(default_factory=TreeCache)
    app_keys: AppKeyCache = field(default_factory=AppKeyCache)
    access_tokens: AccessTokenCache = field(default_factory=AccessTokenCache)
    batcher: Batcher = field(init=False)
    intake: Intake = field(init=False)
    indexer: ChainIndexer = field(init=False)
    relayer: Relayer = field(init=False)
    record_ids: RecordIds = field(init=False)
    cpu: CpuPool = field(init=False)
    _organisations: dict[int, Organisation] = field(default_factory=dict)
    _org_lock: threading.Lock = field(default_factory=threading.Lock)
    _naming_lock: threading.Lock = field(default_factory=threading.Lock)
    _purger: asyncio.Task[None] | None = None

    @classmethod
    def open(cls, settings: Settings, *, on_anchored: Callable[[Batch], None] | None = None) -> Service:
        """Open the ledger (deploying on first start) and the store, and build the workers (not started).

        The data directory is made private first (what was readable by others is tightened with a
        warning), and again once everything is open (the files opening created)."""
        data_dir = Path(settings.data_dir)
        secure_data_dir(data_dir)
        ledger = open_ledger(settings)
        try:
            url = settings.database_url.get_secret_value() if settings.database_url else None
            db = open_database(data_dir, url=url)
            secure_data_dir(data_dir, warn=False)
            return cls(settings=settings, ledger=ledger, db=db, on_anchored=on_anchored)
        except BaseException:
            ledger.close()
            raise

    def __post_init__(self) -> None:
        if self.db.shared:  # replicas send from the same keys: one sender per account at a time
            self.ledger.chain.sender_guard = functools.partial(sending_as, self.db)
        self.record_ids = RecordIds(self.db)
        self.cpu = CpuPool(self.settings.cpu_workers, self.settings.cpu_queue)
        self.batcher = Batcher(
            self.db,
            self.ledger.anchors,
            self.signer_for,
            BatcherConfig(
                max_batch_size=self.settings.max_batch_size,
                max_batch_age=self.settings.max_batch_age,
                confirmations=self.settings.confirmations,
            ),
            trees=self.trees,
            lock=BatcherLock(self.db),
        )
        self.batcher.on_anchored = self.on_anchored
        self.intake = Intake(self.db, on_committed=self.batcher.records_arrived)
        self.indexer = ChainIndexer(
            self.db, self.ledger.consents, self.ledger.anchors, confirmations=self.settings.confirmations
        )
        self.batcher.on_changed = self.indexer.sync  # verification reads amendments from the index
        self.relayer = Relayer(self.ledger.consents, self.ledger.chain, self.ledger.relayer, after_send=self.index_now)

    def start(self) -> None:
        """Start the intake's writer (on the running event loop), the batcher, the indexer and the
        purge of expired idempotency answers."""
        self.intake.start()
        self.batcher.start()
        self.indexer.start()
        self._purger = asyncio.get_running_loop().create_task(self._purge_expired_answers(), name="careledger-purge")

    async def stop(self) -> None:
        """Drain the intake, then stop the batcher and the indexer and release the store and the chain."""
        if self._purger is not None:
            self._purger.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._purger
        await self.intake.stop()
        self.close()

    def close(self) -> None:
        """Stop the batcher, the indexer and the CPU pool, and release the store and the chain."""
        self.cpu.close()
        self.batcher.stop()
        self.indexer.stop()
        self.db.close()
        self.ledger.close()

    async def _purge_expired_answers(self) -> None:
        """Delete expired idempotency answers now and every :data:`PURGE_INTERVAL_SECONDS` (through the
        intake, like every write on the loop)."""
        while True:
            try:
                await self.intake.submit([purge_statement(time.time() - self.settings.idempotency_key_ttl)])
            except PURGE_ERRORS as err:
                log.warning("purging expired idempotency keys failed: %s", type(err).__name__)
            await asyncio.sleep(PURGE_INTERVAL_SECONDS)

    def index_now(self) -> None:
        """Index up to the head after sending something, so the caller's next read shows it."""
        try:
            self.indexer.sync()
        except LedgerError as err:  # the change is on chain; the background indexer will catch up
            log.warning("indexing after a transaction failed: %s", err.message)

    def receipt_of(self, record: StoredRecord) -> Receipt | None:
        """The record's receipt, or None until its batch is anchored and final."""
        deployment = self.ledger.deployment
        return receipt_of(
            self.db.conn, self.trees, record, chain_id=deployment.chain_id, contract=deployment.record_anchor
        )

    # --- organisations ---------------------------------------------------------------------

    def organisation(self, organisation_id: int) -> Organisation:
        """An organisation by id (cached: organisations change rarely)."""
        with self._org_lock:
            cached = self._organisations.get(organisation_id)
        if cached is not None:
            return cached
        organisation = get_organisation(self.db.conn, organisation_id)
        with self._org_lock:
            self._organisations[organisation_id] = organisation
        return organisation

    def signer_for(self, organisation_id: int) -> LocalAccount:
        """The organisation's chain account (decrypted from the keystore once per process)."""
        return self.ledger.keyring.get(self.organisation(organisation_id).key_name)

    def create_organisation(self, name: str, *, emergency: bool = False) -> Organisation:
        """Create an organisation with a fresh chain account holding ``ANCHORER_ROLE`` (and
        ``EMERGENCY_ROLE`` if ``emergency``); returns the existing one if the name is taken.

        The name is stored NFKC-normalised; one with invisible characters, or one that looks like
        another organisation's name, is refused (:mod:`ledger.store.organisation_names`)."""
        name = normalise_name(name)
        # one check-then-create at a time: in this process, then across replicas of a shared store
        with self._naming_lock, naming_organisations(self.db):
            existing = organisation_by_name(self.db.conn, name)
            if existing is not None:
                return existing
            check_distinct(name, ((o.id, o.name) for o in list_organisations(self.db.conn)))
            return self._new_organisation(name, emergency)

    def _new_organisation(self, name: str, emergency: bool) -> Organisation:
        base = "org-" + (_SLUG.sub("-", name.lower()).strip("-")[:40] or "unnamed")
        key_name, taken, n = base, set(self.ledger.keyring.names()), 1
        while key_name in taken:
            n += 1
            key_name = f"{base}-{n}"
        account = self.ledger.keyring.get_or_create(key_name)
        self.ledger.chain.fund(account.address, DEV_FUNDING_WEI)
        self.ledger.anchors.grant_anchorer(self.ledger.admin, account.address)
        if emergency:
            self.ledger.consents.grant_emergency(self.ledger.admin, account.address)
        return create_organisation(self.db.conn, name, key_name, account.address, emergency)

    def set_emergency(self, organisation_id: int, emergency: bool) -> Organisation:
        """Give or take an organisation's break-glass right, on chain and in the store."""
        organisation = self.organisation(organisation_id)
        if emergency:
            self.ledger.consents.grant_emergency(self.ledger.admin, organisation.address)
        else:
            self.ledger.consents.revoke_emergency(self.ledger.admin, organisation.address)
        set_emergency(self.db.conn, organisation_id, emergency)
        with self._org_lock:
            self._organisations.pop(organisation_id, None)
        return self.organisation(organisation_id)
