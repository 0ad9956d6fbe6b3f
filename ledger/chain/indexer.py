"""An index of the contracts' events in the store, so that history never scans the chain per request.

Reading a patient's consent history with ``eth_getLogs`` from the deploy block on every request is
slow (eth-tester walks every block) and grows with the chain. :class:`ChainIndexer` instead reads the
ConsentRegistry and RecordAnchor events once, from the block after the last one it indexed up to the
head, in chunks, and writes them to ``chain_events`` together with the new high-water mark in ONE
transaction per chunk. Rows are keyed by ``(block_number, log_index)`` and inserted with ``OR IGNORE``,
so reading a range twice changes nothing. The index is derived data: :meth:`ChainIndexer.rebuild`
drops it and reads everything again from the deploy block.

The service runs :meth:`ChainIndexer.sync` in a daemon thread every ``interval`` seconds, and
synchronously after it relays a transaction itself, so a client sees its own change at once.
With ``confirmations`` set, it reads only blocks that many deep (a reorganisation shallower than
that cannot undo what it indexed); the embedded chain never reorganises.
"""

from __future__ import annotations

import logging
import threading
from typing import Protocol

from eth_typing import ChecksumAddress

from ledger.chain.client import DEFAULT_CONFIRMATIONS, Chain
from ledger.chain.contracts import ANCHOR_EVENTS, CONSENT_EVENTS, CONSENT_REGISTRY, RECORD_ANCHOR
from ledger.chain.events import decode_log, raw_log
from ledger.exceptions import ChainUnavailableError
from ledger.store.chain_index import IndexedEvent, clear_chain_index, indexed_to, readable, write_indexed_range
from ledger.store.database import Database

log = logging.getLogger("careledger.indexer")

DEFAULT_CHUNK_BLOCKS = 2_000
DEFAULT_INTERVAL = 0.5
MAX_BACKOFF = 30.0


class IndexedContract(Protocol):
    """A deployed contract whose events are indexed (the ConsentRegistry and RecordAnchor clients)."""

    @property
    def chain(self) -> Chain: ...
    @property
    def address(self) -> ChecksumAddress: ...
    @property
    def deploy_block(self) -> int: ...


class ChainIndexer:
    """Keeps ``chain_events`` up to date with the chain, in a thread or on demand.

    Args:
        db: The store.
        consents: The ConsentRegistry whose events are indexed.
        anchors: The RecordAnchor whose events are indexed.
        chunk_blocks: Most blocks read in one ``eth_getLogs`` call (and committed in one transaction).
        confirmations: Index a block only once this many blocks are on top of it (a reorganisation
            of the newest blocks then never leaves orphaned events in the index).
        interval: Seconds between two passes of the background thread.
    """

    def __init__(
        self,
        db: Database,
        consents: IndexedContract,
        anchors: IndexedContract,
        *,
        chunk_blocks: int = DEFAULT_CHUNK_BLOCKS,
        interval: float = DEFAULT_INTERVAL,
        confirmations: int = DEFAULT_CONFIRMATIONS,
    ) -> None:
        if chunk_blocks < 1:
            raise ValueError("chunk_blocks must be at least 1")
        self.db = db
        self.chain = consents.chain
        self.chunk_blocks = chunk_blocks
        self.interval = interval
        self.confirmations = confirmations
        self.start_block = min(consents.deploy_block, anchors.deploy_block)
        self.addresses = [consents.address, anchors.address]
        self._contracts: dict[str, str] = {consents.address: CONSENT_REGISTRY, anchors.address: RECORD_ANCHOR}
        self._indexed = {CONSENT_REGISTRY: frozenset(CONSENT_EVENTS), RECORD_ANCHOR: frozenset(ANCHOR_EVENTS)}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.last_error: str | None = None
        self.events_indexed = 0

    # --- lifecycle -------------------------------------------------------------------------

    def start(self) -> None:
        """Index in a daemon thread every ``interval`` seconds until :meth:`stop`."""
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="careledger-indexer", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Finish the current chunk and stop."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _loop(self) -> None:
        backoff = 0.0
        while not self._stop.is_set():
            try:
                self.sync()
                backoff, self.last_error = 0.0, None
            except ChainUnavailableError as err:
                backoff = min(MAX_BACKOFF, max(1.0, backoff * 2))
                self.last_error = f"{type(err).__name__}: {err}"
            except Exception as err:  # keep indexing; the error is logged and kept for health checks
                log.exception("indexing failed")
                backoff = min(MAX_BACKOFF, max(1.0, backoff * 2))
                self.last_error = f"{type(err).__name__}: {err}"
            self._stop.wait(backoff or self.interval)

    # --- indexing --------------------------------------------------------------------------

    def last_block(self) -> int:
        """The newest block whose events are all indexed (the block before the deploy block if none)."""
        last = indexed_to(self.db.conn)
        return last if last is not None else self.start_block - 1

    def sync(self) -> int:
        """Index every block after the last indexed one up to the head; returns the events added.

        Safe to call from any thread at any time: passes run one at a time, and a pass started
        after a transaction was mined indexes that transaction's block.
        """
        with self._lock:
            return self._sync_locked()

    def rebuild(self) -> int:
        """Drop the index and read every event again from the deploy block; returns the events indexed.

        Readers see a partial index until it finishes (it commits chunk by chunk).
        """
        with self._lock:
            clear_chain_index(self.db.conn)
            return self._sync_locked()

    def _sync_locked(self) -> int:
        added = 0
        head = self.chain.block_number() - self.confirmations  # only blocks no reorganisation will undo
        start = self.last_block() + 1
        while start <= head and not self._stop.is_set():
            end = min(head, start + self.chunk_blocks - 1)
            added += self._index_range(start, end)
            start = end + 1
        self.events_indexed += added
        return added

    def _index_range(self, first: int, last: int) -> int:
        """Read and store the events of blocks ``first..last``, and mark ``last`` indexed, atomically."""
        return write_indexed_range(self.db.conn, self._read(first, last), last)

    def _read(self, first: int, last: int) -> list[IndexedEvent]:
        entries = self.chain.get_logs({"fromBlock": first, "toBlock": last, "address": self.addresses})
        events: list[IndexedEvent] = []
        times: dict[int, int] = {}
        for entry in entries:
            log = raw_log(entry)
            contract_name = self._contracts.get(log.address)
            decoded = decode_log(log, contract_name) if contract_name is not None else None
            if decoded is None or decoded.name not in self._indexed[decoded.contract]:
                continue  # role changes and other events nobody reads from the index
            if log.block_number not in times:
                times[log.block_number] = self.chain.block_timestamp(log.block_number)
            args = dict(decoded.args)
            patient = args.pop("patient", None)
            events.append(
                IndexedEvent(
                    block_number=log.block_number,
                    log_index=log.log_index,
                    tx_hash="0x" + log.tx_hash.hex(),
                    contract=decoded.contract,
                    event=decoded.name,
                    patient=str(patient).lower() if patient is not None else None,
                    fields={name: readable(name, value) for name, value in args.items()},
                    block_time=times[log.block_number],
                )
            )
        return events


__all__ = ["ChainIndexer", "IndexedContract"]
