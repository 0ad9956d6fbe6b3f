"""The boundary to an EVM chain: every web3 call goes through a :class:`Chain`, which translates its errors.

A :class:`Chain` wraps a :class:`web3.Web3` connected either to the embedded eth-tester chain
(persisted in a data directory, see :mod:`ledger.chain.embedded.backend`) or to any JSON-RPC node. It signs
transactions locally with the caller's key (the same path for both kinds of chain), keeps one
nonce counter per sending account so concurrent senders do not collide, and turns every web3,
eth-tester and transport error into a :mod:`ledger.exceptions` error, decoding custom errors by
name.

The contract clients (:mod:`ledger.records.anchoring`, :mod:`ledger.consent.registry`) encode calls
and decode events with the web3 ``Contract`` objects :meth:`Chain.contract` makes, and send or read
them through :meth:`Chain.call`, :meth:`Chain.transact` and :meth:`Chain.get_logs` (or inside
:meth:`Chain.io`), so no web3 error escapes untranslated. Only this package and the auditor's chain
reader, which opens chains itself, touch ``Chain.w3`` directly.
"""

from __future__ import annotations

import ast
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from typing import Any, Literal

import requests
from eth_account.signers.local import LocalAccount
from hexbytes import HexBytes
from web3 import Web3
from web3.contract import Contract
from web3.contract.contract import ContractFunction
from web3.exceptions import (
    ContractLogicError,
    ProviderConnectionError,
    TimeExhausted,
    TransactionNotFound,
    Web3Exception,
    Web3RPCError,
)
from web3.types import BlockIdentifier, FilterParams, LogReceipt, Nonce, TxParams, TxReceipt, Wei

from ledger.chain.contracts import Artifact, decode_custom_error
from ledger.exceptions import (
    ChainError,
    ChainUnavailableError,
    ContractRevertError,
    LedgerError,
    TransactionDroppedError,
    TransactionFailedError,
    TransactionTimeoutError,
)
from ledger.values import checksum

_REVERT_PREFIX = "execution reverted: "
GAS_HEADROOM = 1.25
DEFAULT_PRIORITY_FEE_WEI = 1_000_000_000
RECEIPT_POLL_SECONDS = 0.05
DROPPED_AFTER_POLLS = 3
REPLACED_AFTER_POLLS = 20
"""Polls (``RECEIPT_POLL_SECONDS`` apart) on which the sender's nonce is used but the transaction has
no receipt before it counts as replaced: a node under load may count the nonce of a block it mined
before it answers for that block's receipts (seen on anvil in CI: a mined transaction reported as
replaced on the first such poll)."""
"""Polls in a row that must find a sent transaction neither mined nor in the node's pool before it
counts as dropped (a node may briefly answer "not found" while a transaction moves into a block)."""
_NONCE_CONFLICTS = ("nonce too low", "already known", "known transaction", "replacement transaction underpriced")

FeeModel = Literal["auto", "eip1559", "legacy"]
"""How transactions are priced: ``auto`` (EIP-1559 when the chain has a base fee, else legacy),
``eip1559``, or ``legacy`` (type-0 transactions at the node's ``eth_gasPrice``)."""
DEFAULT_FEE_MODEL: FeeModel = "auto"
DEFAULT_RECEIPT_TIMEOUT = 120.0
"""Seconds to wait for a sent transaction to be mined."""
DEFAULT_CONFIRMATIONS = 0
"""Blocks on top of a transaction's block before it counts as final (0: final once mined)."""

SenderGuard = Callable[[str], AbstractContextManager[None]]
"""Given a sending address, a context held while its nonce is chosen and its transaction sent."""


@dataclass(frozen=True)
class BlockHeader:
    """What names one mined block: its number, its hash (which fixes its contents and every block
    before it) and its timestamp."""

    number: int
    hash: bytes
    timestamp: int


def _revert_data(err: BaseException) -> bytes | None:
    """The raw revert data carried by a web3 or eth-tester error, if any."""
    data = getattr(err, "data", None)
    if isinstance(data, str) and data.startswith("0x"):
        return bytes(HexBytes(data))
    if isinstance(data, dict) and isinstance(data.get("data"), str):
        return bytes(HexBytes(data["data"]))
    message = err.args[0] if err.args else None
    if isinstance(message, str) and message.startswith(_REVERT_PREFIX):
        literal = message[len(_REVERT_PREFIX) :]
        if literal[:2] in ('b"', "b'"):
            try:
                value = ast.literal_eval(literal)
            except (ValueError, SyntaxError):
                return None
            return value if isinstance(value, bytes) else None
    return None


def translate_error(err: BaseException) -> LedgerError:
    """Map an error raised by web3, eth-tester or the transport to a :class:`LedgerError`."""
    if isinstance(err, LedgerError):
        return err
    data = _revert_data(err)
    if data is not None:
        decoded = decode_custom_error(data)
        if decoded is not None:
            return ContractRevertError(decoded[0], decoded[1])
        return ContractRevertError("UnknownRevert", {"data": "0x" + data.hex()})
    if isinstance(err, ContractLogicError) or type(err).__name__ == "TransactionFailed":
        return ContractRevertError("UnknownRevert", {"message": str(err)})
    if isinstance(
        err, (ProviderConnectionError, requests.ConnectionError, requests.Timeout, ConnectionError, TimeoutError)
    ):
        return ChainUnavailableError(f"chain unreachable: {err}")
    if isinstance(err, TimeExhausted):
        return TransactionFailedError(f"transaction not mined in time: {err}")
    if isinstance(err, (Web3RPCError, Web3Exception)):
        return ChainError(f"chain error: {err}")
    return ChainError(f"unexpected chain error: {type(err).__name__}: {err}")


@contextmanager
def translated_errors() -> Iterator[None]:
    """Run a block, re-raising anything chain-related as a :class:`LedgerError`."""
    try:
        yield
    except LedgerError:
        raise
    except Exception as err:  # the boundary: everything web3 raises ends up typed
        raise translate_error(err) from err


class Chain:
    """A connection to one EVM chain and the transaction pipeline for local signing keys.

    Args:
        w3: A connected web3 instance.
        close: What to call when the chain is closed (releases the embedded chain's store).
        faucet: A funded key used only to fund the library's own accounts on development chains
            (the embedded chain or anvil); None on real networks.
        receipt_timeout: Seconds to wait for a transaction to be mined.
        serialize: Run one web3 call at a time (the embedded chain is not thread-safe).
        fee_model: ``auto`` (EIP-1559 when the newest block has a base fee, else legacy),
            ``eip1559`` or ``legacy`` (type-0 transactions at the node's gas price).
        priority_fee_wei: The EIP-1559 tip per gas (0 on a free-gas consortium network).
    """

    def __init__(
        self,
        w3: Web3,
        *,
        close: Callable[[], None] | None = None,
        faucet: LocalAccount | None = None,
        receipt_timeout: float = DEFAULT_RECEIPT_TIMEOUT,
        serialize: bool = False,
        fee_model: FeeModel = DEFAULT_FEE_MODEL,
        priority_fee_wei: int = DEFAULT_PRIORITY_FEE_WEI,
    ) -> None:
        self.w3 = w3
        self._close = close
        self.faucet = faucet
        self.receipt_timeout = receipt_timeout
        self.fee_model = fee_model
        self.priority_fee_wei = priority_fee_wei
        self._nonces: dict[str, int] = {}
        self._sender_locks: dict[str, threading.Lock] = {}
        self._locks_guard = threading.Lock()
        self._serial: threading.RLock | None = threading.RLock() if serialize else None
        self.sender_guard: SenderGuard | None = None
        """Set when other processes send from the same accounts (API replicas): nonces are then
        read from the node under this cross-process guard instead of counted in this process."""
        if faucet is not None:
            # Name a funded sender for calls: without one, web3 over eth-tester asks the node for its
            # accounts before every call, which doubles what a view call costs on the embedded chain.
            self.w3.eth.default_account = faucet.address
        with self.io():
            self.chain_id: int = self.w3.eth.chain_id

    # --- lifecycle -------------------------------------------------------------------------

    @contextmanager
    def io(self) -> Iterator[None]:
        """Context for any use of ``self.w3``: one call at a time if serialized, errors translated."""
        if self._serial is None:
            with translated_errors():
                yield
            return
        with self._serial, translated_errors():
            yield

    def call_data(self, to: str, data: bytes, block: BlockIdentifier = "latest") -> bytes:
        """``eth_call`` of raw calldata (for a contract this library has no artifact of)."""
        with self.io():
            return bytes(self.w3.eth.call({"to": checksum(to), "data": HexBytes(data)}, block))

    def get_logs(self, params: FilterParams) -> list[LogReceipt]:
        """``eth_getLogs`` (errors translated)."""
        with self.io():
            return list(self.w3.eth.get_logs(params))

    def transaction_input(self, tx_hash: bytes) -> bytes:
        """The calldata of a transaction (errors translated; a missing one is a ChainError)."""
        with self.io():
            return bytes(self.w3.eth.get_transaction(HexBytes(tx_hash))["input"])

    def transaction_receipt(self, tx_hash: bytes) -> TxReceipt:
        """The receipt of a mined transaction (errors translated; a missing one is a ChainError)."""
        with self.io():
            return self.w3.eth.get_transaction_receipt(HexBytes(tx_hash))

    def close(self) -> None:
        """Release the connection (and the embedded chain's data directory)."""
        if self._close is not None:
            self._close()
            self._close = None

    def __enter__(self) -> Chain:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- reading ---------------------------------------------------------------------------

    def contract(self, artifact: Artifact, address: str) -> Contract:
        """A web3 contract object for a deployed contract."""
        return self.w3.eth.contract(address=Web3.to_checksum_address(address), abi=artifact.abi)

    def call(self, fn: ContractFunction, block: BlockIdentifier = "latest") -> Any:
        """Call a view function, translating reverts and transport errors.

        On development chains calls come from the faucet account (see ``__init__``).
        """
        with self.io():
            return fn.call(block_identifier=block)

    def block_number(self) -> int:
        """The number of the newest mined block."""
        with self.io():
            return int(self.w3.eth.block_number)

    def block_timestamp(self, number: BlockIdentifier) -> int:
        """The timestamp of a mined block (a number, or ``"latest"``)."""
        with self.io():
            return int(self.w3.eth.get_block(number)["timestamp"])

    def block_header(self, block: BlockIdentifier = "latest") -> BlockHeader:
        """The number, hash and timestamp of a mined block, read in one call (so all three are of the
        same block even while new ones are mined)."""
        with self.io():
            found = self.w3.eth.get_block(block)
        return BlockHeader(int(found["number"]), bytes(found["hash"]), int(found["timestamp"]))

    def code_at(self, address: str) -> bytes:
        """The runtime code at an address (empty if none)."""
        with self.io():
            return bytes(self.w3.eth.get_code(Web3.to_checksum_address(address)))

    def is_reachable(self) -> bool:
        """Whether the node answers right now."""
        try:
            self.block_number()
        except ChainError:
            return False
        return True

    # --- writing ---------------------------------------------------------------------------

    def transact(self, fn: ContractFunction, sender: LocalAccount, *, gas: int | None = None) -> TxReceipt:
        """Estimate, sign locally, send and wait for a contract call; return its receipt.

        A call that would revert raises :class:`ContractRevertError` (with the custom error's
        name) before anything is sent, so nothing is half-written and no nonce is spent.
        """
        with self.io():
            params: TxParams = {"from": sender.address, "nonce": Nonce(0), **self._fees()}
            if gas is None:
                gas = int(fn.estimate_gas({"from": sender.address}) * GAS_HEADROOM)
            params["gas"] = gas
            tx = fn.build_transaction(params)
        return self._sign_send_wait(tx, sender)

    def deploy(self, artifact: Artifact, sender: LocalAccount, *args: Any) -> TxReceipt:
        """Deploy a contract from its artifact; the receipt carries ``contractAddress``."""
        with self.io():
            factory = self.w3.eth.contract(abi=artifact.abi, bytecode=artifact.bytecode)
            constructor = factory.constructor(*args)
            gas = int(constructor.estimate_gas({"from": sender.address}) * GAS_HEADROOM)
            tx = constructor.build_transaction({"from": sender.address, "gas": gas, "nonce": 0, **self._fees()})
        return self._sign_send_wait(tx, sender)

    def send_value(self, sender: LocalAccount, to: str, wei: int) -> TxReceipt:
        """Transfer ether (used to fund accounts on development chains)."""
        tx: TxParams = {
            "from": sender.address,
            "to": Web3.to_checksum_address(to),
            "value": Wei(wei),
            "gas": 21_000,
            "chainId": self.chain_id,
            **self._fees(),
        }
        return self._sign_send_wait(tx, sender)

    def fund(self, address: str, wei: int) -> None:
        """Top an account up to ``wei`` from the development faucet once it has spent half of that.

        Does nothing without a faucet (real networks: operators fund their accounts).
        """
        if self.faucet is None:
            return
        with self.io():
            balance = int(self.w3.eth.get_balance(Web3.to_checksum_address(address)))
        if balance < wei // 2:
            self.send_value(self.faucet, address, wei - balance)

    def _fees(self) -> TxParams:
        """Fee fields: EIP-1559 (a cap of twice the base fee plus the tip) when the chain has a base
        fee and the fee model allows it, else a legacy gas price from the node."""
        if self.fee_model == "legacy":
            return {"gasPrice": self.w3.eth.gas_price}
        base_fee = self.w3.eth.get_block("latest").get("baseFeePerGas")
        if base_fee is None:
            if self.fee_model == "eip1559":
                raise ChainError("the chain has no base fee (pre-London): set fee_model to legacy or auto")
            return {"gasPrice": self.w3.eth.gas_price}
        priority = self.priority_fee_wei
        return {"maxPriorityFeePerGas": Wei(priority), "maxFeePerGas": Wei(2 * int(base_fee) + priority)}

    def _lock_for(self, address: str) -> threading.Lock:
        with self._locks_guard:
            return self._sender_locks.setdefault(address, threading.Lock())

    def _sign_send_wait(self, tx: TxParams, sender: LocalAccount) -> TxReceipt:
        nonce, tx_hash = self._sign_send(tx, sender)
        try:
            return self.wait_for_receipt(tx_hash, sender=sender.address, nonce=nonce)
        except TransactionFailedError:
            with self._lock_for(sender.address):  # dropped or stuck: count from the node again
                self._nonces.pop(sender.address, None)
            raise

    def _sign_send(self, tx: TxParams, sender: LocalAccount) -> tuple[int, bytes]:
        """Pick the nonce, sign and send; one retry with the node's nonce if another sender took it."""
        address = sender.address
        guard = self.sender_guard(address) if self.sender_guard is not None else nullcontext()
        with self._lock_for(address), guard, self.io():
            for attempt in (1, 2):
                nonce = self._nonces.get(address) if self.sender_guard is None else None
                if nonce is None:
                    nonce = int(self.w3.eth.get_transaction_count(address, "pending"))
                unsigned: dict[str, Any] = {**tx, "nonce": nonce, "chainId": self.chain_id}
                signed = sender.sign_transaction(unsigned)
                try:
                    tx_hash = bytes(self.w3.eth.send_raw_transaction(signed.raw_transaction))
                except Exception as err:
                    self._nonces.pop(address, None)  # resynchronise from the node
                    if attempt == 1 and any(text in str(err).lower() for text in _NONCE_CONFLICTS):
                        continue
                    raise
                self._nonces[address] = nonce + 1
                return nonce, tx_hash
        raise AssertionError("unreachable")

    def wait_for_receipt(self, tx_hash: bytes, *, sender: str | None = None, nonce: int | None = None) -> TxReceipt:
        """Wait until a sent transaction is mined; raise if it failed.

        Given its sender and nonce, a transaction that another one replaced (the nonce is used, this
        hash is not mined, for ``REPLACED_AFTER_POLLS`` polls), or that left the node's pool, raises
        :class:`TransactionDroppedError` within about a second instead of waiting out ``receipt_timeout``.
        """
        shown = HexBytes(tx_hash).to_0x_hex()
        deadline = time.monotonic() + self.receipt_timeout
        missing = used = 0
        while True:
            with self.io():
                receipt = self._receipt_or_none(tx_hash)
                if receipt is None and sender is not None and nonce is not None:
                    if int(self.w3.eth.get_transaction_count(Web3.to_checksum_address(sender), "latest")) > nonce:
                        receipt = self._receipt_or_none(tx_hash)  # mined between the two questions?
                        used += 1
                        if receipt is None and used >= REPLACED_AFTER_POLLS:
                            raise TransactionDroppedError(
                                f"transaction {shown} was replaced (nonce {nonce} used)", tx_hash=shown
                            )
                    elif self._in_pool(tx_hash):
                        missing = 0
                    else:
                        missing += 1
                        if missing >= DROPPED_AFTER_POLLS:
                            raise TransactionDroppedError(
                                f"transaction {shown} left the node's pool unmined", tx_hash=shown
                            )
            if receipt is not None:
                break
            if time.monotonic() >= deadline:
                raise TransactionTimeoutError(
                    f"transaction {shown} not mined within {self.receipt_timeout} s", tx_hash=shown
                )
            time.sleep(RECEIPT_POLL_SECONDS)
        if receipt["status"] != 1:
            raise TransactionFailedError(
                f"transaction {shown} failed on chain", tx_hash=shown, block=receipt["blockNumber"]
            )
        return receipt

    def receipt_or_none(self, tx_hash: bytes) -> TxReceipt | None:
        """The receipt of a mined transaction in the canonical chain, or None."""
        with self.io():
            return self._receipt_or_none(tx_hash)

    def forget_nonce(self, address: str) -> None:
        """Read the account's next nonce from the node again before its next transaction."""
        with self._lock_for(Web3.to_checksum_address(address)):
            self._nonces.pop(Web3.to_checksum_address(address), None)

    def _receipt_or_none(self, tx_hash: bytes) -> TxReceipt | None:
        try:
            return self.w3.eth.get_transaction_receipt(HexBytes(tx_hash))
        except TransactionNotFound:
            return None

    def _in_pool(self, tx_hash: bytes) -> bool:
        try:
            self.w3.eth.get_transaction(HexBytes(tx_hash))
        except TransactionNotFound:
            return False
        return True
