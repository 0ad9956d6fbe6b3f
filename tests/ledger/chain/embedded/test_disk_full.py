"""The embedded chain on a full disk: a send fails as :class:`StorageFullError` (``storage_full``)
and whole (no block, no balance change, no nonce spent, in memory or on disk), and the same open
chain mines on once space is freed. On a disk of the test's own (:mod:`tests.support.small_disk`)."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

import pytest
from eth_account import Account

from ledger.chain.client import Chain
from ledger.chain.embedded.backend import CHAIN_FILE, open_embedded_web3
from ledger.exceptions import StorageFullError
from tests.support.small_disk import fill

pytestmark = pytest.mark.embedded_only

WEI = 10**15


def test_a_full_disk_fails_a_send_whole_and_the_chain_mines_on_once_freed(small_disk: Path) -> None:
    data_dir = small_disk / "chain"
    sender, receiver = Account.create(), Account.create()
    with open_embedded_web3(data_dir) as embedded:
        chain = Chain(embedded.w3, faucet=Account.from_key(embedded.faucet_keys[0]), serialize=True)
        chain.fund(sender.address, 10**18)
        head, balance = chain.block_number(), chain.w3.eth.get_balance(sender.address)

        filler = fill(small_disk)
        with pytest.raises(StorageFullError) as refused:
            chain.send_value(sender, receiver.address, WEI)  # its block cannot be written
        assert refused.value.code == "storage_full"
        assert chain.block_number() == head
        assert chain.w3.eth.get_balance(sender.address) == balance
        assert chain.w3.eth.get_transaction_count(sender.address) == 0

        filler.unlink()
        receipt = chain.send_value(sender, receiver.address, WEI)  # the same chain object: no reopen
        assert receipt["blockNumber"] == head + 1
        assert chain.w3.eth.get_transaction_count(sender.address) == 1  # the refused send spent no nonce
        assert chain.w3.eth.get_balance(receiver.address) == WEI

    with closing(sqlite3.connect(f"{(data_dir / CHAIN_FILE).resolve().as_uri()}?mode=ro", uri=True)) as store:
        assert store.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    with open_embedded_web3(data_dir, read_only=True) as reopened:  # what is on disk is what was mined
        assert reopened.w3.eth.block_number == head + 1
        assert reopened.w3.eth.get_balance(receiver.address) == WEI
