"""Nothing acknowledged is lost: not when the service is killed under load, nor while the chain is away."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import httpx
import pytest

from ledger.records.receipts import Receipt, verify_receipt
from tests.api.conftest import PATIENT
from tests.support.chain_under_test import ChainUnderTest
from tests.support.postgres import store_env
from tests.support.processes import (
    ANVIL_DEV_KEY,
    create_admin,
    free_port,
    running_anvil,
    running_service,
    service_env,
    setup_app,
    wait_until,
)

pytestmark = pytest.mark.slow


def fetch_receipts(base: str, headers: dict[str, str], record_ids: list[str]) -> list[Receipt]:
    receipts = []
    with httpx.Client(base_url=base, headers=headers, timeout=60) as http:
        for record_id in record_ids:
            response = http.get(f"/v1/records/{record_id}/receipt", params={"wait": "true", "timeout": 30})
            assert response.status_code == 200, (record_id, response.text)
            receipts.append(Receipt.parse(response.json()))
    return receipts


def test_sigkill_under_load_loses_no_acknowledged_record(
    tmp_path: Path, chain_under_test: ChainUnderTest, request: pytest.FixtureRequest
) -> None:
    env = service_env(
        tmp_path / "data",
        CARELEDGER_MAX_BATCH_AGE="0.3",
        CARELEDGER_MAX_BATCH_SIZE="256",
        **chain_under_test.env(),
        **store_env(request),
    )
    admin_key = create_admin(env)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    acknowledged: list[tuple[str, str]] = []
    lock = threading.Lock()
    stop = threading.Event()

    def load(worker: int) -> None:
        with httpx.Client(base_url=base, headers=headers, timeout=10) as http:
            n = 0
            while not stop.is_set():
                n += 1
                digest = "0x" + os.urandom(32).hex()
                try:
                    response = http.post("/v1/records", json={"patient": PATIENT, "digest": digest})
                except httpx.HTTPError:
                    return  # the service is gone
                if response.status_code == 202:
                    with lock:
                        acknowledged.append((response.json()["recordId"], digest))

    with running_service(env, port) as server:
        headers = {"Authorization": f"Bearer {setup_app(base, admin_key, ['registrar', 'reader'])}"}
        workers = [threading.Thread(target=load, args=(i,)) for i in range(12)]
        for worker in workers:
            worker.start()
        wait_until(lambda: len(acknowledged) >= 400, 60, "400 acknowledgements")
        os.kill(server.pid, signal.SIGKILL)  # mid-load: requests in flight, batches half done
        server.wait()
        stop.set()
        for worker in workers:
            worker.join()
    assert len(acknowledged) >= 400

    with running_service(env, port):
        receipts = fetch_receipts(base, headers, [record_id for record_id, _ in acknowledged])
        for (_, digest), receipt in zip(acknowledged, receipts, strict=True):
            assert "0x" + receipt.digest.hex() == digest
            assert verify_receipt(receipt, document_digest=bytes.fromhex(digest[2:])).valid
        # each batch root anchored exactly once, and the chain agrees with the receipts
        roots = {r.root for r in receipts}
        for root in list(roots)[:20]:
            verdict = httpx.post(
                f"{base}/v1/verify", json={"receipt": next(r for r in receipts if r.root == root).to_dict()}
            ).json()
            assert verdict["match"], verdict


def test_chain_away_and_back_loses_nothing(tmp_path: Path, request: pytest.FixtureRequest) -> None:
    anvil_port, port = free_port(), free_port()
    state = tmp_path / "anvil-state.json"
    env = service_env(
        tmp_path / "data",
        CARELEDGER_MAX_BATCH_AGE="0.2",
        CARELEDGER_RPC_URL=f"http://127.0.0.1:{anvil_port}",
        CARELEDGER_FAUCET_KEY=ANVIL_DEV_KEY,
        CARELEDGER_KEYSTORE_PASSPHRASE="durability test",
        CARELEDGER_RECEIPT_TIMEOUT="10",
        **store_env(request),
    )
    base = f"http://127.0.0.1:{port}"
    with running_anvil(anvil_port, state):
        admin_key = create_admin(env)
    with running_anvil(anvil_port, state) as anvil, running_service(env, port):
        headers = {"Authorization": f"Bearer {setup_app(base, admin_key, ['registrar', 'reader'])}"}
        before = [register(base, headers) for _ in range(3)]
        fetch_receipts(base, headers, before)

        anvil.terminate()  # the node goes away (anvil saves its chain to `state` on the way out)
        anvil.wait(timeout=30)
        wait_until(lambda: httpx.get(f"{base}/readyz").status_code == 503, 30, "readyz to report the chain down")
        ready = httpx.get(f"{base}/readyz", headers={"Authorization": f"Bearer {admin_key}"})  # details: admins'
        assert ready.json()["chain"]["reachable"] is False and ready.headers["Retry-After"]
        during = [register(base, headers) for _ in range(20)]  # still acknowledged, durably
        assert httpx.get(f"{base}/v1/records/{during[0]}/receipt", headers=headers).status_code == 202
        receipt_before = httpx.get(f"{base}/v1/records/{before[0]}/receipt", headers=headers).json()
        unavailable = httpx.post(f"{base}/v1/verify", json={"receipt": receipt_before})
        assert unavailable.status_code == 503 and unavailable.json()["code"] == "chain_unavailable"
        assert unavailable.headers["Retry-After"]
        time.sleep(1)

        with running_anvil(anvil_port, state):  # the node comes back with its chain
            receipts = fetch_receipts(base, headers, during + before)
            assert all(verify_receipt(r).valid for r in receipts)
            assert {r.contract for r in receipts} == {receipts[0].contract}
            wait_until(lambda: httpx.get(f"{base}/readyz").status_code == 200, 30, "readyz to recover")


def register(base: str, headers: dict[str, str]) -> str:
    response = httpx.post(
        f"{base}/v1/records",
        json={"patient": PATIENT, "digest": "0x" + os.urandom(32).hex()},
        headers=headers,
        timeout=30,
    )
    assert response.status_code == 202, response.text
    record_id: str = response.json()["recordId"]
    return record_id
