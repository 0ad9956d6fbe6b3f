"""The durable batcher: seals acknowledged records into Merkle batches and anchors each root once.

Records are acknowledged to clients as soon as they are committed to the store. This worker, in its
own thread, seals each organisation's pending records into a batch when there are ``max_batch_size``
of them or the oldest has waited ``max_batch_age`` seconds (the seal is one store transaction), then
anchors the batch's root with that organisation's key. Every step is recorded before the next, so a
restart resumes where the last process stopped: a sealed batch whose root is already on chain under
the organisation's own account, with the batch's leaf count (the process died after sending), is
marked anchored from the chain, never anchored twice. When the chain is unreachable, batches wait
and the worker retries with backoff; acknowledged records are never lost.

An anchor made by any other account is never adopted: anchors are keyed by account, so another
member anchoring the same root first neither blocks nor stands for ours. If the organisation's own
anchor of the root is not usable for the batch (its ``RootAnchored`` event is missing, or states
another leaf count), the batch is resealed: a random padding leaf is mixed into it, which changes
its root (no receipt was issued yet), and the new root is anchored.

Amendments and retractions wait here too, until the records they name are anchored.

Several API replicas on one PostgreSQL store each run a batcher, but only the holder of the store's
batcher lock (:mod:`ledger.store.locks`) works; the others stand by and take over when the
holder dies. Records acknowledged by any replica are sealed by the holder, which therefore also
looks for pending records on a short timer rather than only when its own requests wake it.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from eth_account.signers.local import LocalAccount

from ledger.chain.client import DEFAULT_CONFIRMATIONS
from ledger.exceptions import (
    ChainUnavailableError,
    ContractRevertError,
    LedgerError,
    TransactionDroppedError,
    TransactionFailedError,
    TransactionTimeoutError,
)
from ledger.records.anchoring import AnchoredBatch, RecordAnchorClient, RecordInBatch
from ledger.records.hashing import commitment, keccak256, new_salt
from ledger.records.merkle import merkle_root
from ledger.records.tree_cache import TreeCache
from ledger.store.changes import (
    mark_change_confirmed,
    mark_sent,
    mark_unsent,
    pending_changes,
    unconfirmed_changes,
)
from ledger.store.database import Database, with_tx
from ledger.store.locks import BatcherLock
from ledger.store.records import (
    Batch,
    get_batch,
    get_record,
    mark_anchored,
    mark_confirmed,
    mark_unanchored,
    oldest_in_batch,
    pending_summary,
    reseal_batch,
    seal_batch,
    unanchored_batches,
    unconfirmed_batches,
)

log = logging.getLogger("careledger.batcher")

MAX_RESEALS = 3
"""Reseals of one batch in one step before giving up (one is enough: a fresh random root cannot
have been anchored already)."""


@dataclass(frozen=True)
class BatcherConfig:
    """When to seal: at ``max_batch_size`` pending records, or when the oldest is ``max_batch_age`` s old."""

    max_batch_size: int = 4096
    max_batch_age: float = 2.0
    max_backoff: float = 30.0
    standby_poll: float = 1.0
    confirmations: int = DEFAULT_CONFIRMATIONS
    """Blocks on top of an anchoring transaction's block before its batch's receipts are final. Until
    then each step re-checks the transaction; one that a reorganisation removed is anchored again."""
    """Seconds between a standby replica's attempts to take the batcher lock, and the longest a
    holder on a shared store sleeps (other replicas' records do not wake it)."""


@dataclass
class BatcherStats:
    """What the batcher has done, for health checks and metrics."""

    batches_anchored: int = 0
    records_anchored: int = 0
    gas_used: int = 0
    last_anchor_lag: float = 0.0
    last_success_at: float | None = None
    last_error: str | None = None
    last_error_at: float | None = None
    chain_available: bool = True
    holds_lock: bool = False
    reorgs: int = 0
    """Anchoring transactions found removed from the canonical chain (their batches anchored again)."""
    recent_batch_sizes: deque[int] = field(default_factory=lambda: deque(maxlen=1000))
    recent_lags: deque[float] = field(default_factory=lambda: deque(maxlen=1000))


class Batcher:
    """Seals and anchors batches in a background thread (or step by step with :meth:`run_once`).

    Args:
        db: The store.
        anchors: The RecordAnchor client.
        signer_for: The anchoring key of an organisation, by organisation id.
        config: Batch size and age limits.
        trees: Shared cache of batch trees (receipts use it too).
        on_anchored: Called (in the batcher thread) after each batch is anchored.
        on_changed: Called after amendments or retractions were sent (e.g. to index them at once).
        lock: The store's batcher lock; without one this batcher always works (one process).
    """

    def __init__(
        self,
        db: Database,
        anchors: RecordAnchorClient,
        signer_for: Callable[[int], LocalAccount],
        config: BatcherConfig | None = None,
        *,
        trees: TreeCache | None = None,
        on_anchored: Callable[[Batch], None] | None = None,
        on_changed: Callable[[], object] | None = None,
        lock: BatcherLock | None = None,
    ) -> None:
        self.db = db
        self.anchors = anchors
        self.signer_for = signer_for
        self.config = config or BatcherConfig()
        self.trees = trees or TreeCache()
        self.on_anchored = on_anchored
        self.on_changed = on_changed
        self.lock = lock
        self.stats = BatcherStats()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._backoff = 0.0
        self._step = threading.Lock()  # one step at a time, whether from the thread or a caller
        self._idle = True  # no pending records at the last look: the next arrival starts the age timer
        self._arrived = 0

    # --- lifecycle -------------------------------------------------------------------------

    def start(self) -> None:
        """Run in a daemon thread until :meth:`stop`."""
        self._thread = threading.Thread(target=self._loop, name="careledger-batcher", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Finish the current step and stop."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        if self.lock is not None:
            self.lock.release()

    def wake(self) -> None:
        """Look for work now."""
        self._wake.set()

    def records_arrived(self, count: int) -> None:
        """Note newly committed records; wake only when that changes what to do (the first record
        starts the age timer, a full batch can be sealed), not on every commit."""
        self._arrived += count
        if self._idle or self._arrived >= self.config.max_batch_size:
            self._idle = False
            self._arrived = 0
            self._wake.set()

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.run_once()
                self._backoff = 0.0
                self.stats.chain_available = True
            except ChainUnavailableError as err:
                self._failed(err, chain_down=True)
            except Exception as err:  # keep the worker alive; the error is reported in health
                log.exception("batcher step failed")
                self._failed(err, chain_down=False)
            self._wake.wait(self._next_wait())
            self._wake.clear()

    def _failed(self, err: Exception, *, chain_down: bool) -> None:
        self.stats.chain_available = not chain_down
        self.stats.last_error = f"{type(err).__name__}: {err}"
        self.stats.last_error_at = time.time()
        self._backoff = min(self.config.max_backoff, max(0.25, self._backoff * 2))

    def _next_wait(self) -> float:
        if self._backoff:
            return self._backoff
        if not self.stats.holds_lock:
            return self.config.standby_poll
        summary = pending_summary(self.db.conn, self.config.max_batch_size)
        self._idle = not summary
        longest = self.config.standby_poll if self.db.shared else self.config.max_batch_age
        if self.config.confirmations:
            longest = min(longest, self.config.standby_poll)  # anchored batches wait for confirmations
        if not summary:
            return min(longest, self.config.max_batch_age)
        oldest = min(oldest for _, oldest in summary.values())
        return min(longest, max(0.01, oldest + self.config.max_batch_age - time.time()))

    # --- one step --------------------------------------------------------------------------

    def run_once(self, *, force: bool = False) -> int:
        """Anchor what is sealed, seal what is due (everything pending if ``force``), anchor that,
        then apply amendments and retractions whose records are anchored. Returns batches anchored
        (none while another process holds the batcher lock)."""
        with self._step:
            self.stats.holds_lock = self.lock is None or self.lock.hold()
            if not self.stats.holds_lock:
                return 0
            self._confirm_anchored()
            anchored = self._anchor_sealed()
            while self._seal_due(force):
                anchored += self._anchor_sealed()
            self._apply_changes()
            return anchored

    def _seal_due(self, force: bool) -> bool:
        sealed_any = False
        now = time.time()
        for organisation_id, (count, oldest) in pending_summary(self.db.conn, self.config.max_batch_size).items():
            due = force or count >= self.config.max_batch_size or now - oldest >= self.config.max_batch_age
            if due and seal_batch(self.db.conn, organisation_id, self.config.max_batch_size, merkle_root) is not None:
                sealed_any = True
        return sealed_any

    def _anchor_sealed(self) -> int:
        count = 0
        for batch in unanchored_batches(self.db.conn):
            self._anchor(batch)
            count += 1
        return count

    def _anchor(self, batch: Batch) -> None:
        signer = self.signer_for(batch.organisation_id)
        result = self._anchoring(batch, signer)
        reseals = 0
        while result is None:  # the account's anchor of this root does not stand for this batch
            if reseals == MAX_RESEALS:
                raise LedgerError(f"batch {batch.id}: no usable root after {MAX_RESEALS} reseals", batch_id=batch.id)
            previous, batch = batch.root, reseal_batch(self.db.conn, batch.id, new_salt(), merkle_root)
            reseals += 1
            log.warning(
                "batch %s: root 0x%s is anchored under %s but not as this batch; resealed with a padding leaf "
                "as root 0x%s",
                batch.id,
                previous.hex(),
                signer.address,
                batch.root.hex(),
            )
            result = self._anchoring(batch, signer)
        mark_anchored(self.db.conn, batch.id, result, confirmed=self.config.confirmations == 0)
        oldest = oldest_in_batch(self.db.conn, batch.id)
        lag = time.time() - (oldest or batch.sealed_at)
        stats = self.stats
        stats.batches_anchored += 1
        stats.records_anchored += batch.leaf_count
        stats.gas_used += result.gas_used
        stats.last_anchor_lag = lag
        stats.last_success_at = time.time()
        stats.recent_batch_sizes.append(batch.leaf_count)
        stats.recent_lags.append(lag)
        log.info("anchored batch %s (%d records) in block %d", batch.id, batch.leaf_count, result.block_number)
        if self.on_anchored is not None:
            anchored_batch = get_batch(self.db.conn, batch.id)
            if anchored_batch is not None:
                self.on_anchored(anchored_batch)

    def _confirm_changes(self) -> None:
        """Finalise amendments and retractions deep enough in the chain; send again those whose
        transaction a reorganisation removed (the contract's own state is checked before sending)."""
        conn = self.db.conn
        waiting = unconfirmed_changes(conn)
        if not waiting:
            return
        chain = self.anchors.chain
        head = chain.block_number()
        for change_id, tx_hash, organisation_id in waiting:
            receipt = chain.receipt_or_none(tx_hash)
            if receipt is None:
                self.stats.reorgs += 1
                chain.forget_nonce(self.signer_for(organisation_id).address)  # gone from every pool, perhaps
                log.warning(
                    "record change %s: transaction 0x%s left the canonical chain; sending again",
                    change_id,
                    tx_hash.hex(),
                )
                with_tx(conn, functools.partial(mark_unsent, conn, change_id))
            elif head - int(receipt["blockNumber"]) >= self.config.confirmations:
                with_tx(conn, functools.partial(mark_change_confirmed, conn, change_id))

    def _confirm_anchored(self) -> None:
        """Finalise anchored batches deep enough in the chain; send back to sealed those whose
        anchoring transaction a reorganisation removed (and follow one that moved to another block)."""
        if self.config.confirmations == 0:
            return
        self._confirm_changes()
        waiting = unconfirmed_batches(self.db.conn)
        if not waiting:
            return
        chain = self.anchors.chain
        head = chain.block_number()
        for batch in waiting:
            assert batch.tx_hash is not None and batch.block_number is not None
            receipt = chain.receipt_or_none(batch.tx_hash)
            if receipt is not None and bytes(receipt["blockHash"]) == batch.block_hash:
                if head - batch.block_number >= self.config.confirmations:
                    mark_confirmed(self.db.conn, batch.id)
                continue
            assert batch.anchorer is not None
            self.anchors.forget(batch.anchorer, batch.root)
            moved = self.anchors.anchoring_of(batch.anchorer, batch.root)
            if moved is not None and moved.leaf_count == batch.leaf_count:  # the same anchoring, another block
                mark_anchored(self.db.conn, batch.id, moved, confirmed=False)
                log.warning("batch %s: anchoring transaction moved to another block in a reorganisation", batch.id)
                continue
            self.stats.reorgs += 1
            chain.forget_nonce(batch.anchorer)  # its transaction may be gone from every pool
            mark_unanchored(self.db.conn, batch.id)
            log.warning(
                "batch %s: anchoring transaction %s left the canonical chain; anchoring again",
                batch.id,
                "0x" + batch.tx_hash.hex(),
            )

    def _anchoring(self, batch: Batch, signer: LocalAccount) -> AnchoredBatch | None:
        """Anchor the batch's root as the organisation's account, or take the anchoring that account
        already made of it (a process that died after sending); None if that anchoring is not this
        batch's (no ``RootAnchored`` event of it, or another leaf count). Anchors by other accounts
        play no part: they are keyed by their own account."""
        if self.anchors.anchor_of(signer.address, batch.root) is None:
            try:
                return self.anchors.anchor(batch.root, batch.leaf_count, signer)
            except ContractRevertError as err:
                if err.error != "RecordAnchorRootAlreadyAnchored":
                    raise
        existing = self.anchors.anchoring_of(signer.address, batch.root)
        if existing is None or existing.leaf_count != batch.leaf_count:
            return None
        return existing

    # --- amendments and retractions ----------------------------------------------------------

    def _in_batch(self, record_id: str) -> tuple[RecordInBatch, int] | None:
        """The record's leaf and proof if it is anchored, with its organisation."""
        record = get_record(self.db.conn, record_id)
        if record is None or record.batch_id is None:
            return None
        batch = get_batch(self.db.conn, record.batch_id)
        if batch is None or not batch.final:
            return None
        tree = self.trees.tree(batch)
        in_batch = RecordInBatch(batch.root, commitment(record.salt, record.digest), tuple(tree.proof(record.leaf)))
        return in_batch, batch.organisation_id

    def _change_on_chain(self, anchorer: str, record: RecordInBatch, kind: str, target: RecordInBatch | None) -> bool:
        """Whether ``anchorer`` already recorded this change of its record (sent by another process)."""
        status = self.anchors.record_status(anchorer, record.root, keccak256(record.commitment))
        if kind == "amend":
            return (
                target is not None
                and status.amended_by == keccak256(target.commitment)
                and status.amended_in == target.root
            )
        return status.retraction_reason is not None

    def _apply_changes(self) -> None:
        conn = self.db.conn
        sent = False
        for change in pending_changes(conn):
            original = self._in_batch(change.record_id)
            replacement = self._in_batch(change.replacement_id) if change.replacement_id else None
            if original is None or (change.kind == "amend" and replacement is None):
                continue
            record, organisation_id = original
            target = replacement[0] if replacement else None
            signer = self.signer_for(organisation_id)
            tx_hash: bytes | None = None
            error: str | None = None
            if not self._change_on_chain(signer.address, record, change.kind, target):
                try:
                    if change.kind == "amend":
                        assert target is not None
                        tx_hash = self.anchors.amend(record, target, signer)
                    else:
                        assert change.reason is not None
                        tx_hash = self.anchors.retract(record, change.reason, signer)
                except (TransactionDroppedError, TransactionTimeoutError):
                    continue  # not (yet) on chain: still pending; the contract is asked again next step
                except (ContractRevertError, TransactionFailedError) as err:
                    # another process may have sent the same change meanwhile: then it is done
                    if not self._change_on_chain(signer.address, record, change.kind, target):
                        error = err.error if isinstance(err, ContractRevertError) else err.code
            final = self.config.confirmations == 0 or tx_hash is None or error is not None
            with_tx(conn, functools.partial(mark_sent, conn, change.id, tx_hash=tx_hash, error=error, final=final))
            sent = sent or tx_hash is not None
        if sent and self.on_changed is not None:
            self.on_changed()
