"""Transactions that never make it: dropped from the node's pool, or replaced by another with the
same nonce. The sender learns at once (not after the receipt timeout), nothing half-happens, and
the next send picks a nonce the node will accept."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from api.service import Service
from ledger.exceptions import TransactionDroppedError
from ledger.records.receipts import verify_receipt
from ledger.runtime import Ledger, open_ledger
from ledger.store.database import with_tx
from ledger.store.records import INSERT_RECORD, RecordPayload, get_record, new_records
from tests.support.chain_under_test import ledger_settings, rpc
from tests.support.processes import ANVIL_DEV_KEY, free_port, running_anvil

pytestmark = pytest.mark.slow


@pytest.fixture
def anvil_ledger(tmp_path: Path) -> Iterator[tuple[Ledger, str]]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with (
        running_anvil(port, None),
        open_ledger(
            ledger_settings(
                tmp_path / "data",
                rpc_url=url,
                faucet_key=ANVIL_DEV_KEY,
                keystore_passphrase="faults",
                receipt_timeout=60,
            )
        ) as ledger,
    ):
        yield ledger, url


def anchor_in_background(ledger: Ledger, root: bytes) -> tuple[threading.Thread, list[object]]:
    outcome: list[object] = []
    anchorer = ledger.anchorer()

    def run() -> None:
        try:
            outcome.append(ledger.anchors.anchor(root, 1, anchorer))
        except Exception as err:  # the test inspects it
            outcome.append(err)

    thread = threading.Thread(target=run)
    thread.start()
    return thread, outcome


def wait_for_pending(url: str) -> None:
    deadline = time.monotonic() + 30
    while int(rpc(url, "txpool_status")["pending"], 16) == 0:
        assert time.monotonic() < deadline, "the transaction never reached the pool"
        time.sleep(0.02)


def test_a_dropped_transaction_is_reported_and_the_next_send_reuses_its_nonce(anvil_ledger: tuple[Ledger, str]) -> None:
    ledger, url = anvil_ledger
    ledger.anchorer()  # role granted while blocks are still mined
    rpc(url, "evm_setAutomine", False)
    root = os.urandom(32)
    started = time.monotonic()
    thread, outcome = anchor_in_background(ledger, root)
    wait_for_pending(url)
    rpc(url, "anvil_dropAllTransactions")
    thread.join(30)
    assert isinstance(outcome[0], TransactionDroppedError), outcome
    assert outcome[0].code == "transaction_dropped"
    assert time.monotonic() - started < 20  # far below the 60 s receipt timeout
    rpc(url, "evm_setAutomine", True)
    anchorer = ledger.anchorer()
    assert ledger.anchors.anchor_of(anchorer.address, root) is None  # nothing happened
    again = ledger.anchors.anchor(root, 1, anchorer)  # a stale nonce would hang here
    assert ledger.anchors.anchor_of(anchorer.address, root) is not None and again.block_number > 0


def test_a_replaced_transaction_is_reported(anvil_ledger: tuple[Ledger, str]) -> None:
    ledger, url = anvil_ledger
    anchorer = ledger.anchorer()
    nonce = ledger.chain.w3.eth.get_transaction_count(anchorer.address, "pending")
    rpc(url, "evm_setAutomine", False)
    root = os.urandom(32)
    thread, outcome = anchor_in_background(ledger, root)
    wait_for_pending(url)
    # the same key sends something else with the same nonce and a higher fee (an operator's
    # "cancel" or a misconfigured second signer): the node replaces the anchoring transaction
    base_fee = ledger.chain.w3.eth.get_block("latest")["baseFeePerGas"]
    replacement = anchorer.sign_transaction(
        {
            "to": anchorer.address,
            "value": 0,
            "gas": 21_000,
            "nonce": nonce,
            "chainId": ledger.chain.chain_id,
            "maxPriorityFeePerGas": 50 * 10**9,
            "maxFeePerGas": 4 * base_fee + 50 * 10**9,
        }
    )
    rpc(url, "eth_sendRawTransaction", replacement.raw_transaction.to_0x_hex())
    rpc(url, "evm_mine")
    thread.join(30)
    assert isinstance(outcome[0], TransactionDroppedError) and "replaced" in str(outcome[0]), outcome
    rpc(url, "evm_setAutomine", True)
    assert ledger.anchors.anchor_of(anchorer.address, root) is None
    ledger.anchors.anchor(root, 1, anchorer)
    assert ledger.anchors.anchor_of(anchorer.address, root) is not None


def test_the_batcher_anchors_again_after_its_transaction_was_dropped(tmp_path: Path) -> None:
    """Acknowledged records whose anchoring transaction vanished from the pool end anchored exactly
    once, and their receipts verify."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    settings = ledger_settings(
        tmp_path / "data", rpc_url=url, faucet_key=ANVIL_DEV_KEY, keystore_passphrase="faults", receipt_timeout=60
    )
    with running_anvil(port, None):
        service = Service.open(settings)  # its batcher driven step by step, not started
        try:
            organisation = service.create_organisation("General Hospital")
            records = new_records(
                [RecordPayload(os.urandom(32), None) for _ in range(10)],
                service.record_ids,
                kind="record",
                organisation_id=organisation.id,
                app_id=None,
            )
            conn = service.db.conn
            with_tx(conn, lambda: conn.executemany(INSERT_RECORD, [r.as_row() for r in records]))
            rpc(url, "evm_setAutomine", False)
            outcome: list[object] = []
            step = threading.Thread(target=lambda: outcome.append(_step(service)))
            step.start()
            wait_for_pending(url)
            rpc(url, "anvil_dropAllTransactions")
            step.join(30)
            assert isinstance(outcome[0], TransactionDroppedError), outcome
            rpc(url, "evm_setAutomine", True)
            assert service.batcher.run_once() == 1  # the sealed batch, anchored now
            anchors = service.ledger.anchors
            events = anchors.contract.events.RootAnchored.get_logs(from_block=anchors.deploy_block)
            assert len(events) == 1 and events[0]["args"]["leafCount"] == len(records)
            for record in records:
                stored = get_record(conn, record.record_id)
                assert stored is not None
                receipt = service.receipt_of(stored)
                assert receipt is not None and verify_receipt(receipt, anchors=anchors).valid
        finally:
            service.close()


def _step(service: Service) -> object:
    try:
        return service.batcher.run_once(force=True)
    except Exception as err:  # the test inspects it
        return err
