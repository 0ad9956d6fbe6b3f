"""The persisted embedded chain: the store passes py-evm's own DB suites, the chain survives a
reopen and ``kill -9``, the data directory has one writer, and block time follows the clock."""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import pytest
from eth.tools.db.atomic import AtomicDatabaseBatchAPITestSuite
from eth.tools.db.base import DatabaseAPITestSuite
from eth_account import Account
from eth_tester import EthereumTester
from eth_tester.exceptions import TransactionFailed
from hexbytes import HexBytes
from web3 import EthereumTesterProvider, Web3

from ledger.chain.embedded.backend import CHAIN_FILE, EmbeddedChain, open_embedded_web3
from ledger.chain.embedded.kv_store import SqliteAtomicDB
from ledger.exceptions import ChainError, ChainLockedError, NotFoundError
from tests.support import paths

pytestmark = pytest.mark.embedded_only

REPO_ROOT = paths.REPO

# Init code of a tiny contract, hand-assembled: the constructor stores 0x2a in slot 0
# (PUSH1 2a PUSH1 00 SSTORE), then returns the 11-byte runtime at offset 0x11, which returns
# slot 0 (PUSH1 00 SLOAD PUSH1 00 MSTORE PUSH1 20 PUSH1 00 RETURN).
RUNTIME_CODE = "6000546000526020" + "6000f3"
INIT_CODE = "0x" + "602a600055" + "600b6011600039" + "600b6000f3" + RUNTIME_CODE
STORED_VALUE = 0x2A

# A contract with a deadline, hand-assembled: it reverts when block.timestamp is past the deadline
# given as its calldata word (PUSH1 00 CALLDATALOAD TIMESTAMP GT PUSH1 11 JUMPI), otherwise returns
# block.timestamp (TIMESTAMP PUSH1 00 MSTORE PUSH1 20 PUSH1 00 RETURN); the revert is at 0x11
# (JUMPDEST PUSH1 00 DUP1 REVERT). The constructor returns the 22-byte runtime at offset 0x0c.
DEADLINE_RUNTIME = "6000354211601157" + "4260005260206000f3" + "5b600080fd"
DEADLINE_INIT = "0x" + "6016600c600039" + "60166000f3" + DEADLINE_RUNTIME


# --- (a) py-evm's own database suites ------------------------------------------------------


@pytest.fixture(params=[True, False], ids=["cached", "uncached"])
def atomic_db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SqliteAtomicDB]:
    """The store under test, with and without its read cache."""
    cache_entries = 50_000 if request.param else 0
    with SqliteAtomicDB(tmp_path / "kv.sqlite3", cache_entries=cache_entries) as store:
        yield store


@pytest.fixture
def db(atomic_db: SqliteAtomicDB) -> SqliteAtomicDB:
    """The name ``DatabaseAPITestSuite`` asks for."""
    return atomic_db


class TestSqliteAtomicDBBatches(AtomicDatabaseBatchAPITestSuite):
    """py-evm's atomic-batch semantics, on SQLite."""


class TestSqliteAtomicDBBasics(DatabaseAPITestSuite):
    """py-evm's key-value semantics, on SQLite."""


def test_batch_lands_in_one_transaction_and_persists(tmp_path: Path) -> None:
    path = tmp_path / "kv.sqlite3"
    with SqliteAtomicDB(path) as store:
        store[b"gone"] = b"x"
        with store.atomic_batch() as batch:
            batch[b"a"] = b"1"
            batch[b"b"] = b"2"
            del batch[b"gone"]
            # Nothing reaches the file before the batch ends.
            with sqlite3.connect(path) as other:
                assert other.execute("SELECT count(*) FROM kv").fetchone()[0] == 1
    with SqliteAtomicDB(path, read_only=True) as reopened:
        assert reopened[b"a"] == b"1"
        assert reopened[b"b"] == b"2"
        assert b"gone" not in reopened


def test_group_rolls_back_every_batch_and_the_cache(tmp_path: Path) -> None:
    with SqliteAtomicDB(tmp_path / "kv.sqlite3") as store:
        store[b"k"] = b"old"
        with pytest.raises(RuntimeError), store.group():
            with store.atomic_batch() as batch:
                batch[b"k"] = b"new"
            store[b"other"] = b"x"
            assert store[b"k"] == b"new"
            raise RuntimeError("abandon the group")
        assert store[b"k"] == b"old"
        assert b"other" not in store


def test_read_only_store_refuses_writes(tmp_path: Path) -> None:
    path = tmp_path / "kv.sqlite3"
    with SqliteAtomicDB(path) as writer:
        writer[b"k"] = b"v"
        with SqliteAtomicDB(path, read_only=True) as reader:
            assert reader[b"k"] == b"v"
            writer[b"k"] = b"w"
            assert reader[b"k"] == b"w"  # readers do not cache: they see the writer's commits
            with pytest.raises(ChainError):
                reader[b"k"] = b"x"
            with pytest.raises(ChainError):
                del reader[b"k"]
            with pytest.raises(ChainError), reader.atomic_batch() as batch:
                batch[b"k"] = b"x"
    with pytest.raises(NotFoundError):
        SqliteAtomicDB(tmp_path / "missing.sqlite3", read_only=True)


# --- (b) reopening ---------------------------------------------------------------------------


def _deploy_tiny_contract(w3: Web3, init_code: str = INIT_CODE) -> str:
    sender = w3.eth.accounts[0]
    tx_hash = w3.eth.send_transaction({"from": sender, "data": init_code, "gas": 200_000})
    receipt = w3.eth.get_transaction_receipt(tx_hash)
    assert receipt["status"] == 1
    address = receipt["contractAddress"]
    assert address is not None
    return str(address)


def _snapshot(chain: EmbeddedChain, contract: str) -> dict[str, Any]:
    w3 = chain.w3
    latest = w3.eth.get_block("latest")
    return {
        "number": latest["number"],
        "hash": latest["hash"],
        "state_root": latest["stateRoot"],
        "balances": [w3.eth.get_balance(a) for a in w3.eth.accounts],
        "nonces": [w3.eth.get_transaction_count(a) for a in w3.eth.accounts],
        "code": w3.eth.get_code(Web3.to_checksum_address(contract)),
        "slot0": w3.eth.get_storage_at(Web3.to_checksum_address(contract), 0),
    }


def test_reopen_sees_the_same_chain_and_mines_on_top(tmp_path: Path) -> None:
    with open_embedded_web3(tmp_path) as chain:
        w3 = chain.w3
        accounts = w3.eth.accounts
        contract = _deploy_tiny_contract(w3)
        sent = [
            w3.eth.send_transaction({"from": accounts[i % 3], "to": accounts[5], "value": 10 + i}) for i in range(5)
        ]
        before = _snapshot(chain, contract)
        assert before["code"] == HexBytes(RUNTIME_CODE)
        assert int.from_bytes(before["slot0"], "big") == STORED_VALUE
        call = w3.eth.call({"to": Web3.to_checksum_address(contract)})
        assert int.from_bytes(call, "big") == STORED_VALUE
        faucet_keys = chain.faucet_keys

    with open_embedded_web3(tmp_path) as chain:
        w3 = chain.w3
        assert _snapshot(chain, contract) == before
        assert chain.faucet_keys == faucet_keys
        assert Account.from_key(chain.faucet_keys[0]).address == w3.eth.accounts[0]
        for tx_hash in sent:  # found through py-evm's persisted hash index
            assert w3.eth.get_transaction_receipt(tx_hash)["status"] == 1
        tx_hash = w3.eth.send_transaction({"from": w3.eth.accounts[0], "to": w3.eth.accounts[6], "value": 1})
        receipt = w3.eth.get_transaction_receipt(tx_hash)
        assert receipt["blockNumber"] == before["number"] + 1
        assert w3.eth.get_block("latest")["parentHash"] == before["hash"]
        assert w3.eth.get_transaction_count(w3.eth.accounts[0]) == before["nonces"][0] + 1


def test_failed_send_leaves_the_chain_usable(tmp_path: Path) -> None:
    with open_embedded_web3(tmp_path) as chain:
        w3 = chain.w3
        sender, receiver = w3.eth.accounts[:2]
        w3.eth.send_transaction({"from": sender, "to": receiver, "value": 1})
        head = w3.eth.block_number
        stale = Account.from_key(chain.faucet_keys[0]).sign_transaction(
            {"to": receiver, "value": 1, "nonce": 0, "gas": 21_000, "gasPrice": 10**9, "chainId": w3.eth.chain_id}
        )
        with pytest.raises(Exception, match=r"(?i)nonce"):
            w3.eth.send_raw_transaction(stale.raw_transaction)
        assert w3.eth.block_number == head
        w3.eth.send_transaction({"from": sender, "to": receiver, "value": 1})
        assert w3.eth.block_number == head + 1


# --- (c) kill -9 -----------------------------------------------------------------------------

WRITER = """
import sys
from pathlib import Path
from ledger.chain.embedded.backend import open_embedded_web3

chain = open_embedded_web3(Path(sys.argv[1]))
w3 = chain.w3
sender, receiver = w3.eth.accounts[:2]
print("ready", flush=True)
while True:
    tx_hash = w3.eth.send_transaction({"from": sender, "to": receiver, "value": 1})
    print(w3.eth.block_number, tx_hash.to_0x_hex(), flush=True)
"""


def _child_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    return env


def _run_writer_until_killed(data_dir: Path, rng: random.Random, min_lines: int) -> list[str]:
    """Start the writer, kill it with SIGKILL at a random moment, return its complete lines."""
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(data_dir)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO_ROOT,
        env=_child_env(),
    )
    assert proc.stdout is not None
    try:
        first = proc.stdout.readline()
        assert first == "ready\n", proc.stderr.read() if proc.stderr else first
        lines = [proc.stdout.readline() for _ in range(min_lines)]
        time.sleep(rng.uniform(0.0, 0.25))
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    lines += proc.stdout.read().splitlines(keepends=True)
    proc.stdout.close()
    if proc.stderr:
        proc.stderr.close()
    return [line for line in lines if line.endswith("\n")]  # a cut-off last line never counts


@pytest.mark.slow
def test_every_printed_transaction_survives_sigkill(tmp_path: Path) -> None:
    seed = random.randrange(2**32)
    rng = random.Random(seed)
    printed_total = 0
    for round_ in range(4):
        with open_embedded_web3(tmp_path) as chain:
            nonce_before = chain.w3.eth.get_transaction_count(chain.w3.eth.accounts[0])
        lines = _run_writer_until_killed(tmp_path, rng, min_lines=15)
        assert len(lines) >= 15
        printed_total += len(lines)

        with sqlite3.connect(tmp_path / CHAIN_FILE) as raw:
            assert raw.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        with open_embedded_web3(tmp_path) as chain:
            w3 = chain.w3
            for line in lines:
                number, tx_hash = line.split()
                receipt = w3.eth.get_transaction_receipt(tx_hash)
                assert receipt["blockNumber"] == int(number), (seed, round_, line)
                assert receipt["status"] == 1
            head = w3.eth.block_number
            last_printed = int(lines[-1].split()[0])
            # At most one block was committed but not yet printed when the kill came.
            assert last_printed <= head <= last_printed + 1, (seed, round_)
            mined = w3.eth.get_transaction_count(w3.eth.accounts[0]) - nonce_before
            assert len(lines) <= mined <= len(lines) + 1, (seed, round_)
            # The reopened chain keeps mining on top.
            w3.eth.send_transaction({"from": w3.eth.accounts[2], "to": w3.eth.accounts[3], "value": 1})
            assert w3.eth.block_number == head + 1
    assert printed_total >= 60


# --- (d) one writer, concurrent readers --------------------------------------------------------

TRY_WRITER = """
import sys
from pathlib import Path
from ledger.chain.embedded.backend import open_embedded_web3
from ledger.exceptions import ChainLockedError

try:
    open_embedded_web3(Path(sys.argv[1]))
except ChainLockedError as err:
    print(type(err).__name__, err.details.get("holder_pid"))
else:
    print("opened")
"""


def test_second_writer_is_locked_out_and_readers_are_not(tmp_path: Path) -> None:
    with open_embedded_web3(tmp_path) as writer:
        w3 = writer.w3
        w3.eth.send_transaction({"from": w3.eth.accounts[0], "to": w3.eth.accounts[1], "value": 1})
        other = subprocess.run(
            [sys.executable, "-c", TRY_WRITER, str(tmp_path)],
            capture_output=True,
            text=True,
            cwd=REPO_ROOT,
            env=_child_env(),
            timeout=60,
            check=True,
        )
        assert other.stdout.split() == ["ChainLockedError", str(os.getpid())]
        with pytest.raises(ChainLockedError):
            open_embedded_web3(tmp_path)  # a second open in the same process, too

        with open_embedded_web3(tmp_path, read_only=True) as reader:
            r3 = reader.w3
            assert r3.eth.block_number == w3.eth.block_number
            assert r3.eth.get_balance(r3.eth.accounts[1]) == w3.eth.get_balance(w3.eth.accounts[1])
            with pytest.raises(ChainError):
                r3.eth.send_transaction({"from": r3.eth.accounts[0], "to": r3.eth.accounts[1], "value": 1})
            with pytest.raises(ChainError):
                reader.store[b"key"] = b"value"

            w3.eth.send_transaction({"from": w3.eth.accounts[0], "to": w3.eth.accounts[1], "value": 1})
            assert r3.eth.block_number == w3.eth.block_number - 1  # a view as of opening
            reader.refresh()
            assert r3.eth.block_number == w3.eth.block_number

    with open_embedded_web3(tmp_path) as again:  # closing released the lock
        assert again.w3.eth.block_number == 2


def test_read_only_open_needs_an_existing_chain(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError):
        open_embedded_web3(tmp_path / "nothing-here", read_only=True)


# --- (e) block time ----------------------------------------------------------------------------


def _timestamps(w3: Web3) -> list[int]:
    return [w3.eth.get_block(n)["timestamp"] for n in range(w3.eth.block_number + 1)]


def test_block_time_follows_the_clock_and_never_decreases(tmp_path: Path) -> None:
    with open_embedded_web3(tmp_path) as chain:
        w3 = chain.w3
        sender, receiver = w3.eth.accounts[:2]
        for _ in range(30):  # far more than one block per second
            w3.eth.send_transaction({"from": sender, "to": receiver, "value": 1})
        assert w3.eth.get_block("latest")["timestamp"] <= time.time()
        time.sleep(2.1)  # the pending block must not keep the time the last block was mined
        sent_at = int(time.time())
        w3.eth.send_transaction({"from": sender, "to": receiver, "value": 1})
        assert w3.eth.get_block("latest")["timestamp"] >= sent_at
        before = _timestamps(w3)

    with open_embedded_web3(tmp_path) as chain:
        w3 = chain.w3
        for _ in range(3):
            w3.eth.send_transaction({"from": w3.eth.accounts[0], "to": w3.eth.accounts[1], "value": 1})
        after = _timestamps(w3)
    assert after[: len(before)] == before
    assert after == sorted(after)
    assert after[-1] <= time.time()


def _tester_of(w3: Web3) -> EthereumTester:
    tester = cast(EthereumTesterProvider, w3.provider).ethereum_tester
    assert tester is not None
    return tester


def _deadline_call(w3: Web3, contract: str, deadline: int) -> dict[str, Any]:
    return {"from": w3.eth.accounts[0], "to": contract, "data": "0x" + deadline.to_bytes(32, "big").hex()}


def test_a_gas_estimate_runs_in_the_second_the_transaction_is_mined_in(tmp_path: Path) -> None:
    """py-evm estimates in a block it builds from the head: dated like a mined block, not a second later."""
    with open_embedded_web3(tmp_path) as chain:
        w3 = chain.w3
        contract = Web3.to_checksum_address(_deploy_tiny_contract(w3, DEADLINE_INIT))
        assert w3.eth.get_code(contract) == HexBytes(DEADLINE_RUNTIME)
        # Date the chain ahead of the clock, so that the wall clock cannot cross into the next
        # second during the test: the head's second is "now" for every block that follows.
        second = int(time.time()) + 1000
        _tester_of(w3).time_travel(second)
        w3.eth.send_transaction({"from": w3.eth.accounts[1], "to": w3.eth.accounts[2], "value": 1})
        assert w3.eth.get_block("latest")["timestamp"] == second

        assert int.from_bytes(w3.eth.call(_deadline_call(w3, contract, second)), "big") == second
        gas = w3.eth.estimate_gas(_deadline_call(w3, contract, second))  # a deadline of this second holds
        with pytest.raises(TransactionFailed):  # and the estimate does check it
            w3.eth.estimate_gas(_deadline_call(w3, contract, second - 1))

        tx_hash = w3.eth.send_transaction({**_deadline_call(w3, contract, second), "gas": gas})
        receipt = w3.eth.get_transaction_receipt(tx_hash)
        assert receipt["status"] == 1
        assert w3.eth.get_block(receipt["blockNumber"])["timestamp"] == second


def _time_travel_outcome(tester: EthereumTester, to_timestamp: int) -> tuple[int, int, int]:
    """After ``time_travel``: the newest block's, the pending block's and the next mined block's time."""
    tester.time_travel(to_timestamp)
    newest = tester.get_block_by_number("latest")["timestamp"]
    pending = tester.get_block_by_number("pending")["timestamp"]
    tester.mine_blocks()
    return newest, pending, tester.get_block_by_number("latest")["timestamp"]


def test_time_travel_dates_the_next_block_at_the_target_as_eth_tester_does(tmp_path: Path) -> None:
    target = int(time.time()) + 1000
    stock = _time_travel_outcome(EthereumTester(), target)
    assert stock == (target - 1, target, target)
    with open_embedded_web3(tmp_path) as chain:
        w3 = chain.w3
        assert _time_travel_outcome(_tester_of(w3), target) == stock
        # A transaction after it lands at the target too: the clock is behind, the chain never goes back.
        w3.eth.send_transaction({"from": w3.eth.accounts[0], "to": w3.eth.accounts[1], "value": 1})
        assert w3.eth.get_block("latest")["timestamp"] == target
