"""Which chain the suite runs on: the embedded chain (default) or one anvil node for the whole session.

``CARELEDGER_TEST_CHAIN=anvil`` makes the shared fixtures (``ledger``, the API's ``client``, the
auditor's scenario, the served processes) open the ledger over JSON-RPC on an anvil node started
once per session on a free loopback port; every test still deploys its own contracts into its own
data directory. Around each such fixture the node is snapshotted and reverted afterwards, so one
test's blocks, balances and time travel never reach the next (state and block time come back;
without that, chain time would run days ahead of the wall clock after the validity-window tests).

Tests that are about the embedded chain itself carry ``@pytest.mark.embedded_only`` and are
skipped on anvil.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, cast

import httpx
from web3 import EthereumTesterProvider

from ledger.chain.client import Chain
from ledger.config import Settings

TEST_CHAIN_VARIABLE = "CARELEDGER_TEST_CHAIN"
CHAIN_KINDS = ("embedded", "anvil")
FAST_SCRYPT_N = 2**4  # keystore encryption cost for tests only
ANVIL_DEV_KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"  # anvil's public dev key
ANVIL_PASSPHRASE = "test passphrase"  # the keystore passphrase of test ledgers on anvil

ChainKind = Literal["embedded", "anvil"]


def selected_chain() -> ChainKind:
    """The chain named by ``CARELEDGER_TEST_CHAIN`` (``embedded`` when unset)."""
    kind = os.environ.get(TEST_CHAIN_VARIABLE, "") or "embedded"
    if kind not in CHAIN_KINDS:
        raise ValueError(f"{TEST_CHAIN_VARIABLE} must be one of {', '.join(CHAIN_KINDS)}, not {kind!r}")
    return cast(ChainKind, kind)


def ledger_settings(data_dir: Path, **overrides: Any) -> Settings:
    """Settings for a test ledger in ``data_dir`` (cheap keystore encryption), on the embedded chain
    unless ``overrides`` name another."""
    return Settings(data_dir=data_dir, keystore_scrypt_n=FAST_SCRYPT_N, **overrides)


def rpc(url: str, method: str, *params: Any) -> Any:
    """One JSON-RPC call to a node; its result (the node's error fails the test)."""
    answer = httpx.post(
        url, json={"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)}, timeout=30
    ).json()
    assert "error" not in answer, (method, answer)
    return answer["result"]


@dataclass(frozen=True)
class ChainUnderTest:
    """The chain the shared fixtures open ledgers on.

    Attributes:
        kind: ``embedded`` (a fresh eth-tester chain in each data directory) or ``anvil``.
        rpc_url: The session's anvil node; None on the embedded chain.
    """

    kind: ChainKind
    rpc_url: str | None = None

    def overrides(self) -> dict[str, Any]:
        """Settings fields that point a ledger at this chain (none for the embedded one)."""
        if self.rpc_url is None:
            return {}
        return {"rpc_url": self.rpc_url, "faucet_key": ANVIL_DEV_KEY, "keystore_passphrase": ANVIL_PASSPHRASE}

    def settings(self, data_dir: Path, **overrides: Any) -> Settings:
        """Settings for a fresh test ledger in ``data_dir`` on this chain."""
        return ledger_settings(data_dir, **self.overrides(), **overrides)

    def env(self) -> dict[str, str]:
        """The same as ``CARELEDGER_*`` variables, for child processes and CLI runs."""
        return {f"CARELEDGER_{name.upper()}": str(value) for name, value in self.overrides().items()}

    def rpc_options(self) -> list[str]:
        """The auditor CLI's chain options besides ``--data-dir`` (``--rpc-url`` on anvil)."""
        return [] if self.rpc_url is None else ["--rpc-url", self.rpc_url]

    @contextmanager
    def isolated(self) -> Iterator[None]:
        """Undo on the shared node whatever the block mines (state, blocks, time); nothing on the embedded chain,
        where every data directory is a chain of its own."""
        if self.rpc_url is None:
            yield
            return
        snapshot = rpc(self.rpc_url, "evm_snapshot")
        try:
            yield
        finally:
            assert rpc(self.rpc_url, "evm_revert", snapshot) is True, "anvil could not revert its snapshot"


def travel_to(chain: Chain, timestamp: int) -> None:
    """Make ``timestamp`` the time of the newest block; the next mined block carries it too.

    On the embedded chain through eth-tester's ``time_travel``; on anvil by mining a block at that time
    and fixing the following block's time to the same (anvil accepts equal times); later blocks
    follow the wall clock from there.
    """
    with chain.io():
        provider = chain.w3.provider
        if isinstance(provider, EthereumTesterProvider):
            tester = provider.ethereum_tester
            assert tester is not None
            tester.time_travel(timestamp)  # the newest block at ``timestamp - 1``, the next at ``timestamp``
            tester.mine_blocks()
        else:
            for method, params in (
                ("evm_mine", [{"timestamp": timestamp}]),
                ("evm_setNextBlockTimestamp", [timestamp]),
            ):
                answer = provider.make_request(method, params)  # type: ignore[arg-type]
                assert "error" not in answer, (method, answer)
    assert chain.block_timestamp("latest") == timestamp
