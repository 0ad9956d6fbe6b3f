"""Fees on a real node: type-0 transactions at the node's gas price (legacy), or EIP-1559 with the
configured tip (0 suits a free-gas consortium network); both anchor and relay the same way."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ledger.runtime import open_ledger
from tests.support.chain_under_test import ledger_settings
from tests.support.processes import ANVIL_DEV_KEY, free_port, running_anvil

pytestmark = pytest.mark.slow


@pytest.mark.parametrize(
    ("fee_model", "priority_fee_wei", "tx_type"),
    [
        ("legacy", 10**9, 0),
        ("eip1559", 0, 2),
        ("auto", 3 * 10**9, 2),
    ],
)
def test_fee_models(tmp_path: Path, fee_model: str, priority_fee_wei: int, tx_type: int) -> None:
    port = free_port()
    settings = ledger_settings(
        tmp_path / "data",
        rpc_url=f"http://127.0.0.1:{port}",
        faucet_key=ANVIL_DEV_KEY,
        keystore_passphrase="fees",
        fee_model=fee_model,
        priority_fee_wei=priority_fee_wei,
    )
    with running_anvil(port, None), open_ledger(settings) as ledger:
        root = os.urandom(32)
        anchored = ledger.anchors.anchor(root, 1, ledger.anchorer())
        tx = ledger.chain.w3.eth.get_transaction(anchored.tx_hash)
        assert tx["type"] == tx_type
        if tx_type == 0:
            block = ledger.chain.w3.eth.get_block(anchored.block_number)
            assert tx["gasPrice"] >= block["baseFeePerGas"]  # the node's price was enough to be mined
            assert "maxPriorityFeePerGas" not in tx
        else:
            assert tx["maxPriorityFeePerGas"] == priority_fee_wei
        assert ledger.anchors.anchor_of(anchored.anchorer, root) is not None
