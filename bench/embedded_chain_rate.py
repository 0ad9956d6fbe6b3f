"""Value transfers per second on the embedded chain: in memory vs persisted to SQLite.

Run: ``.venv/bin/python bench/embedded_chain_rate.py [--count 300] [--rounds 3]``

Each configuration sends ``--count`` one-wei transfers through web3 (auto-mined, one block
each) after a short warm-up, on a fresh chain; rounds are interleaved so that noise from other
load on the machine hits every configuration alike, and the median round is reported with its
ratio to the in-memory chain (eth-tester's own ``PyEVMBackend``).

The "per batch" row commits every py-evm batch on its own (about seven SQLite transactions per
transaction), as the store would without the send-and-mine grouping of
:func:`ledger.chain.embedded.backend.open_embedded_web3`.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

from eth_tester import EthereumTester, PyEVMBackend
from web3 import EthereumTesterProvider, Web3
from web3.types import TxParams, Wei

from ledger.chain.embedded.backend import open_embedded_web3
from ledger.chain.embedded.kv_store import Synchronous

WARMUP = 20

ChainOpener = Callable[[], AbstractContextManager[Web3]]


@contextmanager
def in_memory() -> Iterator[Web3]:
    """eth-tester's default chain, in memory."""
    yield Web3(EthereumTesterProvider(EthereumTester(PyEVMBackend())))


def on_sqlite(synchronous: Synchronous, *, grouped: bool = True) -> ChainOpener:
    """A fresh persisted chain in a temporary directory."""

    @contextmanager
    def open_chain() -> Iterator[Web3]:
        with tempfile.TemporaryDirectory() as tmp:
            chain = open_embedded_web3(Path(tmp), synchronous=synchronous)
            try:
                if grouped:
                    yield chain.w3
                else:
                    yield Web3(EthereumTesterProvider(EthereumTester(chain.backend)))
            finally:
                chain.close()

    return open_chain


def transfers_per_second(open_chain: ChainOpener, count: int) -> float:
    """Send ``count`` transfers and return the rate."""
    with open_chain() as w3:
        accounts = list(w3.eth.accounts)
        tx: TxParams = {"from": accounts[0], "to": accounts[1], "value": Wei(1)}
        for _ in range(WARMUP):
            w3.eth.send_transaction(tx)
        start = time.perf_counter()
        for _ in range(count):
            w3.eth.send_transaction(tx)
        return count / (time.perf_counter() - start)


def main() -> None:
    """Print the median rate per configuration and its ratio to memory."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=300, help="transfers per round")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds")
    args = parser.parse_args()

    configs: dict[str, ChainOpener] = {
        "memory (eth-tester default)": in_memory,
        "sqlite synchronous=FULL": on_sqlite("FULL"),
        "sqlite synchronous=NORMAL": on_sqlite("NORMAL"),
        "sqlite FULL, per batch": on_sqlite("FULL", grouped=False),
    }
    rates: dict[str, list[float]] = {name: [] for name in configs}
    for _ in range(args.rounds):
        for name, open_chain in configs.items():
            rates[name].append(transfers_per_second(open_chain, args.count))

    baseline = statistics.median(rates["memory (eth-tester default)"])
    print(f"{'configuration':<30} {'tx/s':>7} {'vs memory':>10}   rounds")
    for name, values in rates.items():
        median = statistics.median(values)
        rounds = " ".join(f"{v:.0f}" for v in values)
        print(f"{name:<30} {median:7.0f} {median / baseline:9.2f}x   {rounds}")


if __name__ == "__main__":
    main()
