"""The embedded eth-tester chain, persisted to a data directory and safe under ``kill -9``.

eth-tester's :class:`~eth_tester.PyEVMBackend` keeps its chain in memory: it has no database
argument and builds the chain over :func:`eth.db.get_db_backend`. This module gives it a store:

* :class:`PersistentPyEVMBackend` builds the same chain eth-tester would (same chain class,
  chain id, genesis parameters and funded dev accounts) over a :class:`SqliteAtomicDB` at
  ``<data_dir>/chain.sqlite3``, or reopens that store when it already has a canonical head, so the
  next process sees the same blocks, state, code, storage, balances and nonces and mines on top.
* :func:`open_embedded_web3` wraps it in ``web3.Web3`` behind an exclusive writer lock
  (``<data_dir>/chain.lock``), with auto-mining on: every transaction is mined in its own block,
  and the transaction with its block is committed to SQLite as one transaction before the call
  returns (a ``kill -9`` at any moment loses at most the send in progress, never half of it).
* Transactions are looked up through py-evm's persisted hash index instead of eth-tester's scan
  backwards over every block, so a receipt lookup costs the same at any depth
  (``bench/embedded_chain_rate.py``).

Only mined blocks persist; eth-tester's in-memory extras (filters, snapshots ids, queued
transactions when auto-mining is off) do not. Resetting the chain means deleting the directory.

Timestamps follow the wall clock and never decrease, across restarts too. Stock py-evm differs
twice: it fixes the pending block's timestamp when the *previous* block is mined (so after an
idle hour the next block is dated an hour back), and it requires each block to be strictly later
than its parent, ``max(parent + 1, now)``: with one block per transaction at ~100 blocks/s, block
time ran ~400 s ahead of the wall clock after 400 transactions, which would make EIP-712
deadlines and recorded consent times wrong. Here an empty pending block takes the current time
when a transaction arrives, and a block may share its parent's second (:class:`WallClockPragueVM`).
Every header built from a parent, the throwaway block py-evm runs gas estimates in included, gets
the same default, ``max(parent, now)``: an estimate never runs a second later than the block the
transaction is then mined in, so a deadline of the current second does not fail the estimate only.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Final, cast

from eth.abc import BlockAPI, BlockHeaderAPI, SignedTransactionAPI, TransactionBuilderAPI
from eth.chains.base import MiningChain
from eth.constants import BLANK_ROOT_HASH
from eth.db.chain import ChainDB
from eth.exceptions import CanonicalHeadNotFound, PyEVMError
from eth.exceptions import TransactionNotFound as EVMTransactionNotFound
from eth.typing import AccountState, HeaderParams
from eth.vm.forks.prague import PragueVM
from eth_tester import EthereumTester, PyEVMBackend
from eth_tester.backends.pyevm.main import (
    generate_genesis_state_for_keys,
    get_account_keys_from_mnemonic,
    get_default_account_keys,
    get_default_genesis_params,
)
from eth_tester.backends.pyevm.serializers import (
    serialize_transaction,
    serialize_transaction_receipt,
)
from eth_tester.exceptions import TransactionNotFound
from eth_typing import BlockNumber
from eth_utils.hexadecimal import encode_hex
from web3 import EthereumTesterProvider, Web3

from ledger.chain.embedded.kv_store import SqliteAtomicDB, Synchronous
from ledger.exceptions import (
    ChainError,
    ChainLockedError,
    ChainUnavailableError,
    InputError,
    IntegrityError,
    NotFoundError,
)
from ledger.files import locks as file_lock

CHAIN_FILE: Final = "chain.sqlite3"
"""Name of the SQLite store inside the data directory."""

LOCK_FILE: Final = "chain.lock"
"""Name of the writer lock file inside the data directory (holds the writer's pid)."""

TESTER_CHAIN_ID: Final = 131277322940537
"""eth-tester's chain id, kept so signed transactions and tooling match the in-memory chain."""


def wall_clock_timestamp(parent_header: BlockHeaderAPI) -> int:
    """The default timestamp of a child of ``parent_header``: now, but never before its parent."""
    return max(parent_header.timestamp, int(time.time()))


class WallClockPragueVM(PragueVM):
    """Prague rules, except that a block may carry the same timestamp as its parent.

    Mainnet requires strictly increasing timestamps; on a chain mining one block per
    transaction, many per second, that rule pushes block time ahead of real time. Allowing equal
    seconds keeps ``block.timestamp`` equal to the wall clock (never decreasing).
    """

    @classmethod
    def create_header_from_parent(  # type: ignore[override]  # py-evm's own forks ignore it too
        cls, parent_header: BlockHeaderAPI | None, **header_params: Any
    ) -> BlockHeaderAPI:
        """Build a child header dated :func:`wall_clock_timestamp` unless a timestamp is given.

        py-evm's default is ``max(parent + 1, now)``. Besides mined blocks, py-evm builds the block
        it runs gas estimates in (``VM.in_costless_state``) through this method, so it must agree
        with how mined blocks are dated, or an estimate in the head's second runs one second late.
        """
        if parent_header is not None:
            header_params.setdefault("timestamp", wall_clock_timestamp(parent_header))
        header: BlockHeaderAPI = super().create_header_from_parent(parent_header, **header_params)
        return header

    @classmethod
    def validate_header(cls, header: BlockHeaderAPI, parent_header: BlockHeaderAPI) -> None:
        """Validate as Prague does, treating a same-second child as one second later."""
        if parent_header is not None and header.timestamp == parent_header.timestamp:
            header = header.copy(timestamp=header.timestamp + 1)
        super().validate_header(header, parent_header)


class EmbeddedTesterChain(MiningChain):
    """The chain eth-tester's ``setup_tester_chain()`` builds by default, as a named class.

    eth-tester defines its chain class inside that function, over whatever ``get_db_backend()``
    returns; this is the same chain (chain id, Prague rules from genesis, post-merge, constant
    gas limit) so it can be built over, and reopened from, a :class:`SqliteAtomicDB`. Only block
    timestamps differ: see :class:`WallClockPragueVM`.
    """

    chain_id = TESTER_CHAIN_ID
    vm_configuration = ((BlockNumber(0), WallClockPragueVM),)

    def create_header_from_parent(self, parent_header: BlockHeaderAPI, **header_params: HeaderParams) -> BlockHeaderAPI:
        """Build the next header: constant gas limit (as eth-tester); the VM dates it by the clock."""
        header_params["gas_limit"] = parent_header.gas_limit
        return super().create_header_from_parent(parent_header, **header_params)

    def get_transaction_builder(self) -> type[TransactionBuilderAPI]:
        """The pending VM's transaction builder (eth-tester's backend calls this)."""
        return self.get_vm().get_transaction_builder()


def _has_canonical_head(store: SqliteAtomicDB) -> bool:
    """Whether the store already holds a chain (a genesis block at least)."""
    try:
        ChainDB(store).get_canonical_head()
    except CanonicalHeadNotFound:
        return False
    return True


class PersistentPyEVMBackend(PyEVMBackend):  # type: ignore[misc]  # eth-tester is untyped
    """eth-tester's py-evm backend over a :class:`SqliteAtomicDB` instead of memory.

    Differences from the base class, each for persistence:

    * :meth:`reset_to_genesis` creates genesis only in an empty store and otherwise reopens it;
      it never discards blocks.
    * An empty pending block takes the current time when a transaction or mining call arrives
      (see the module docstring), instead of the time the previous block was mined.
    * Transactions are found through py-evm's persisted hash index, not by scanning every
      block backwards from the head, so lookups stay fast as the chain grows.
    * Over a read-only store, every call that would write raises :class:`ChainError` up front.

    Args:
        store: The open store; the caller owns it (and the data directory's lock).
        genesis_parameters: Genesis header overrides, used only when creating genesis.
        genesis_state: Genesis accounts, used only when creating genesis.
        mnemonic: Derive the dev account keys from this mnemonic instead of eth-tester's
            default keys; pass the same value on every open.
        hd_path: HD path for ``mnemonic``.
    """

    chain: EmbeddedTesterChain

    def __init__(
        self,
        store: SqliteAtomicDB,
        *,
        genesis_parameters: dict[str, Any] | None = None,
        genesis_state: dict[bytes, dict[str, Any]] | None = None,
        mnemonic: str | None = None,
        hd_path: str | None = None,
    ) -> None:
        self._store = store
        super().__init__(
            genesis_parameters=genesis_parameters,
            genesis_state=genesis_state,
            mnemonic=mnemonic,
            hd_path=hd_path,
        )

    @property
    def store(self) -> SqliteAtomicDB:
        """The store this backend reads and writes."""
        return self._store

    # --- genesis and reopening ---------------------------------------------------------------

    def reset_to_genesis(
        self,
        genesis_params: dict[str, Any] | None = None,
        genesis_state: dict[bytes, dict[str, Any]] | None = None,
        num_accounts: int | None = None,
        vm_configuration: Any = None,
        mnemonic: str | None = None,
        hd_path: str | None = None,
    ) -> None:
        """Open the chain in the store, creating genesis first if the store is empty.

        Called by the base constructor (and by ``EthereumTester.reset_to_genesis``). Over a store
        that already has a head this reopens it and leaves its blocks untouched; genesis
        arguments then have no effect.

        Raises:
            InputError: ``vm_configuration`` is given (only eth-tester's default is supported).
            NotFoundError: The store is read-only and empty.
            IntegrityError: The store has a head but its blocks cannot be read back.
        """
        if vm_configuration is not None:
            raise InputError("the persistent embedded chain supports only the default VMs")
        if genesis_state:
            num_accounts = len(genesis_state)
        if mnemonic:
            account_keys = get_account_keys_from_mnemonic(mnemonic, quantity=num_accounts, hd_path=hd_path)
        else:
            account_keys = get_default_account_keys(quantity=num_accounts)

        if _has_canonical_head(self._store):
            chain = self._reopen_chain()
        elif self._store.read_only:
            raise NotFoundError(
                f"embedded chain store {self._store.path} has no genesis yet",
                path=str(self._store.path),
            )
        else:
            params = genesis_params or get_default_genesis_params()
            state = genesis_state or generate_genesis_state_for_keys(account_keys)
            # from_genesis persists the state, then the genesis header and canonical head in one
            # batch: a kill in between leaves no head, and the next open starts genesis again.
            genesis = EmbeddedTesterChain.from_genesis(self._store, params, cast(AccountState, state))
            assert isinstance(genesis, EmbeddedTesterChain)
            chain = genesis
        self.account_keys = account_keys
        self.chain = chain

    def _reopen_chain(self) -> EmbeddedTesterChain:
        """Build the chain over the existing store; its pending block starts empty at the head."""
        try:
            return EmbeddedTesterChain(self._store)
        except (PyEVMError, KeyError) as err:
            raise IntegrityError(
                f"embedded chain store {self._store.path} has a head that cannot be read",
                path=str(self._store.path),
            ) from err

    @contextmanager
    def write_group(self) -> Iterator[None]:
        """Commit everything written inside the block in one store transaction (one fsync).

        If the block raises, the store rolls the writes back and the chain is reopened from the
        store, so the in-memory pending block never points at state that was not committed.
        """
        try:
            with self._store.group():
                yield
        except BaseException:
            if not self._store.read_only:
                self.chain = self._reopen_chain()
            raise

    def refresh(self) -> None:
        """Re-read the canonical head, to see blocks another process mined since opening.

        Only meaningful for read-only views: a writer is the only process that mines.
        """
        self.chain = self._reopen_chain()

    # --- writes: refused when read-only, and give empty blocks the current time ------------

    def send_transaction(self, transaction: dict[str, Any]) -> bytes:
        """Sign with a dev key and apply to the pending block (see the base class)."""
        self._prepare_write()
        tx_hash: bytes = super().send_transaction(transaction)
        return tx_hash

    def send_signed_transaction(self, signed_transaction: dict[str, Any], block_number: Any = "latest") -> bytes:
        """Apply an already signed transaction dict to the pending block."""
        self._prepare_write()
        tx_hash: bytes = super().send_signed_transaction(signed_transaction, block_number)
        return tx_hash

    def send_raw_transaction(self, raw_transaction: bytes) -> bytes:
        """Apply a raw signed transaction (the path web3 uses for locally signed ones)."""
        self._prepare_write()
        tx_hash: bytes = super().send_raw_transaction(raw_transaction)
        return tx_hash

    def mine_blocks(self, num_blocks: int = 1, coinbase: bytes = b"\x00" * 20) -> tuple[bytes, ...]:
        """Mine ``num_blocks`` blocks, each committed to the store as it is mined."""
        self._prepare_write()
        hashes: tuple[bytes, ...] = super().mine_blocks(num_blocks, coinbase)
        return hashes

    def apply_withdrawals(self, withdrawals_list: list[dict[str, int | str]]) -> None:
        """Apply withdrawals and mine the block holding them."""
        self._prepare_write()
        super().apply_withdrawals(withdrawals_list)

    def time_travel(self, to_timestamp: int) -> int:
        """Mine a block at ``to_timestamp - 1`` and date the next block ``to_timestamp``.

        The same outcome as eth-tester's own backend, whose next block is one second after its
        parent. Here a child defaults to its parent's second (see :class:`WallClockPragueVM`), so
        the pending block is moved to ``to_timestamp`` explicitly (or later, if the clock is
        already past it). The newest block's clock refresh is skipped, as in eth-tester.
        """
        self._refuse_if_read_only()
        self.chain.header = self.chain.header.copy(timestamp=to_timestamp - 1)
        super().mine_blocks()
        pending = self.chain.header
        self.chain.header = pending.copy(timestamp=max(pending.timestamp, to_timestamp))
        return to_timestamp

    def revert_to_snapshot(self, snapshot: bytes) -> None:
        """Rewind the canonical chain to a snapshot; the rewind is persisted too."""
        self._refuse_if_read_only()
        super().revert_to_snapshot(snapshot)

    def _prepare_write(self) -> None:
        self._refuse_if_read_only()
        self._refresh_pending_timestamp()

    def _refuse_if_read_only(self) -> None:
        if self._store.read_only:
            raise ChainError(
                f"embedded chain at {self._store.path} is open read-only",
                path=str(self._store.path),
            )

    def _refresh_pending_timestamp(self) -> None:
        """Move an empty pending block's timestamp up to now; never down, never once filled."""
        header = self.chain.header
        if header.transaction_root != BLANK_ROOT_HASH:
            return
        now = int(time.time())
        if now > header.timestamp:
            self.chain.header = header.copy(timestamp=now)

    # --- transaction lookup through the persisted index --------------------------------------

    def get_transaction_by_hash(self, transaction_hash: bytes) -> dict[str, Any]:
        """The transaction with this hash, found through py-evm's hash -> (block, index) keys."""
        block, transaction, index, is_pending = self._find_transaction(transaction_hash)
        result: dict[str, Any] = serialize_transaction(block, transaction, index, is_pending)
        return result

    def get_transaction_receipt(self, transaction_hash: bytes) -> dict[str, Any]:
        """The receipt of the transaction with this hash (see :meth:`get_transaction_by_hash`)."""
        block, transaction, index, is_pending = self._find_transaction(transaction_hash)
        receipts = block.get_receipts(self.chain.chaindb)
        result: dict[str, Any] = serialize_transaction_receipt(
            block, receipts, transaction, index, is_pending, self.chain.get_vm()
        )
        return result

    def _find_transaction(self, transaction_hash: bytes) -> tuple[BlockAPI, SignedTransactionAPI, int, bool]:
        pending = self.chain.get_block()
        for index, transaction in enumerate(pending.transactions):
            if transaction.hash == transaction_hash:
                return pending, transaction, index, True
        try:
            number, index = self.chain.chaindb.get_transaction_index(transaction_hash)  # type: ignore[arg-type]
        except EVMTransactionNotFound as err:
            raise TransactionNotFound(
                f"No transaction found for transaction hash: {encode_hex(transaction_hash)}"
            ) from err
        if number < pending.number:
            block = self.chain.get_canonical_block_by_number(number)
            if index < len(block.transactions):
                transaction = block.transactions[index]
                if transaction.hash == transaction_hash:
                    return block, transaction, index, False
        # The index points off the canonical chain (a stale entry after a rewind):
        # fall back to eth-tester's exhaustive scan, which decides authoritatively.
        return self._scan_for_transaction(transaction_hash, pending)

    def _scan_for_transaction(
        self, transaction_hash: bytes, pending: BlockAPI
    ) -> tuple[BlockAPI, SignedTransactionAPI, int, bool]:
        for number in range(pending.number - 1, -1, -1):
            block = self.chain.get_canonical_block_by_number(BlockNumber(number))
            for index, transaction in enumerate(block.transactions):
                if transaction.hash == transaction_hash:
                    return block, transaction, index, False
        raise TransactionNotFound(f"No transaction found for transaction hash: {encode_hex(transaction_hash)}")


class _GroupCommitTester(EthereumTester):  # type: ignore[misc]  # eth-tester is untyped
    """``EthereumTester`` whose auto-mined sends commit as one store transaction.

    With auto-mining, a send applies the transaction and mines its block; py-evm writes that as
    about seven batches. Grouping them makes the transaction and its block durable together and
    costs one fsync instead of seven (the figures are in ``bench/embedded_chain_rate.py``).
    """

    backend: PersistentPyEVMBackend

    def send_transaction(self, transaction: dict[str, Any]) -> str:
        """Sign with a dev key, apply, mine, and commit the block."""
        with self.backend.write_group():
            tx_hash: str = super().send_transaction(transaction)
        return tx_hash

    def send_raw_transaction(self, raw_transaction_hex: str) -> str:
        """Apply a signed raw transaction, mine, and commit the block."""
        with self.backend.write_group():
            tx_hash: str = super().send_raw_transaction(raw_transaction_hex)
        return tx_hash


@dataclass(eq=False)
class EmbeddedChain:
    """An open embedded chain: a ``Web3`` on the persisted eth-tester backend.

    Close it (or use ``with``) to release the writer lock and close the store. Calls after
    :meth:`close` raise :class:`ChainError`.

    Attributes:
        w3: Web3 over ``EthereumTesterProvider``, auto-mining one block per transaction.
        backend: The persistent backend under ``w3``.
        data_dir: The directory holding ``chain.sqlite3`` and ``chain.lock``.
        faucet_keys: Raw 32-byte private keys of eth-tester's funded dev accounts (well known,
            so only for funding accounts the caller generates itself).
        read_only: Whether this is a read-only view (no lock held, writes refused).
    """

    w3: Web3
    backend: PersistentPyEVMBackend
    data_dir: Path
    faucet_keys: tuple[bytes, ...]
    read_only: bool = False
    _lock_fd: int | None = field(default=None, repr=False)
    _closed: bool = field(default=False, repr=False)

    @property
    def store(self) -> SqliteAtomicDB:
        """The SQLite store behind the chain."""
        return self.backend.store

    def refresh(self) -> None:
        """For read-only views: pick up blocks the writer mined since this view was opened."""
        self.backend.refresh()

    def close(self) -> None:
        """Close the store, then release the writer lock. Idempotent."""
        if self._closed:
            return
        self._closed = True
        try:
            self.backend.store.close()
        finally:
            if self._lock_fd is not None:
                file_lock.release(self._lock_fd)
                self._lock_fd = None

    def __enter__(self) -> EmbeddedChain:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def open_embedded_web3(data_dir: Path, *, read_only: bool = False, synchronous: Synchronous = "FULL") -> EmbeddedChain:
    """Open (creating if needed) the persisted embedded chain in ``data_dir``.

    A writer takes an exclusive, non-blocking lock on ``<data_dir>/chain.lock`` for as long as
    the chain is open, so two processes never mine on the same store. A read-only view takes no
    lock, may run beside the writer, and sees the chain as of opening (or its last
    :meth:`EmbeddedChain.refresh`).

    Args:
        data_dir: Directory for the store; created for a writer.
        read_only: Open a read-only view of an existing chain.
        synchronous: SQLite durability for the writer (see :mod:`ledger.chain.embedded.kv_store`).

    Returns:
        The open chain; close it when done.

    Raises:
        ChainLockedError: Another process has the directory open for writing.
        NotFoundError: ``read_only`` and there is no chain in ``data_dir``.
        ChainUnavailableError: The directory or lock file cannot be created or opened.
        IntegrityError: The store is not a chain store or its head cannot be read.
    """
    data_dir = Path(data_dir)
    lock_fd: int | None = None
    if not read_only:
        try:
            data_dir.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise ChainUnavailableError(
                f"cannot create chain directory {data_dir}: {err}", data_dir=str(data_dir)
            ) from err
        lock_fd = _acquire_writer_lock(data_dir)
    store: SqliteAtomicDB | None = None
    try:
        store = SqliteAtomicDB(data_dir / CHAIN_FILE, read_only=read_only, synchronous=synchronous)
        backend = PersistentPyEVMBackend(store)
        tester = _GroupCommitTester(backend=backend, auto_mine_transactions=True)
        w3 = Web3(EthereumTesterProvider(tester))
    except BaseException:
        if store is not None:
            store.close()
        if lock_fd is not None:
            file_lock.release(lock_fd)
        raise
    return EmbeddedChain(
        w3=w3,
        backend=backend,
        data_dir=data_dir,
        faucet_keys=tuple(key.to_bytes() for key in backend.account_keys),
        read_only=read_only,
        _lock_fd=lock_fd,
    )


def _acquire_writer_lock(data_dir: Path) -> int:
    """Take the directory's writer lock without waiting; return the descriptor holding it."""
    lock_path = data_dir / LOCK_FILE
    return file_lock.acquire(
        lock_path,
        lambda holder: ChainLockedError(
            f"embedded chain {data_dir} is open for writing by another process"
            + (f" (pid {holder})" if holder else ""),
            data_dir=str(data_dir),
            holder_pid=holder,
        ),
        lambda err: ChainUnavailableError(f"cannot open lock file {lock_path}: {err}", data_dir=str(data_dir)),
    )
