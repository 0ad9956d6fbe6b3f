"""Nothing acknowledged is lost: not when the service is killed under load, nor while the chain is away.

Each test ends with the independent check of :mod:`tests.support.exactly_once`: every acknowledged
record's receipt verifies against the chain read by a client of the test's own, and the raw
``RootAnchored`` logs anchor each of the store's batches exactly once. Every answer under load is
kept; a registration refused, or a load thread failing, fails the test.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import httpx
import pytest

from tests.api.conftest import PATIENT
from tests.support.chain_under_test import ChainUnderTest
from tests.support.exactly_once import ServedLedger, assert_anchored_exactly_once
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
from tests.support.registrations import RegistrationLoad, fetch_receipts, register

pytestmark = pytest.mark.slow


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

    with running_service(env, port) as server:
        headers = {"Authorization": f"Bearer {setup_app(base, admin_key, ['registrar', 'reader'])}"}
        with RegistrationLoad([base], headers, PATIENT, workers=12) as load:
            load.wait_for(400, 60, "400 acknowledgements")
            load.declare_gone(base)  # from now on its requests may fail in transit
            os.kill(server.pid, signal.SIGKILL)  # mid-load: requests in flight, batches half done
            server.wait()
    assert not load.errors, load.errors
    assert not load.refused, load.refused  # nothing in this scenario may refuse a registration
    assert load.count() >= 400

    with running_service(env, port):
        receipts = fetch_receipts(base, headers, [record_id for record_id, _ in load.acknowledged])
        assert_anchored_exactly_once(ServedLedger.of(env), load.acknowledged, receipts)


def test_chain_away_and_back_loses_nothing(tmp_path: Path, request: pytest.FixtureRequest) -> None:
    """Registrations go on being acknowledged (never refused) while the node is down, and are all
    anchored once it is back; reads that need the chain say 503 ``chain_unavailable`` meanwhile."""
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
        before = [register(base, headers, PATIENT) for _ in range(3)]
        fetch_receipts(base, headers, [record_id for record_id, _ in before])

        with RegistrationLoad([base], headers, PATIENT, workers=4) as load:
            load.wait_for(50, 60, "acknowledgements with the node up")
            anvil.terminate()  # the node goes away (anvil saves its chain to `state` on the way out)
            anvil.wait(timeout=30)
            away = load.count()  # acknowledged from here on: with the node gone, so not anchored yet
            wait_until(lambda: httpx.get(f"{base}/readyz").status_code == 503, 30, "readyz to report the chain down")
            ready = httpx.get(f"{base}/readyz", headers={"Authorization": f"Bearer {admin_key}"})  # details: admins'
            assert ready.json()["chain"]["reachable"] is False and ready.headers["Retry-After"]
            load.wait_for(away + 100, 60, "acknowledgements while the node is away")
            waiting = load.acknowledged[away][0]
            assert httpx.get(f"{base}/v1/records/{waiting}/receipt", headers=headers).status_code == 202
            receipt_before = httpx.get(f"{base}/v1/records/{before[0][0]}/receipt", headers=headers).json()
            unavailable = httpx.post(f"{base}/v1/verify", json={"receipt": receipt_before})
            assert unavailable.status_code == 503 and unavailable.json()["code"] == "chain_unavailable"
            assert unavailable.headers["Retry-After"]
            time.sleep(1)

            with running_anvil(anvil_port, state):  # the node comes back with its chain
                back = load.count()
                load.wait_for(back + 50, 60, "acknowledgements with the node back")
                load.stop()
                assert not load.errors, load.errors
                assert not load.refused, load.refused  # the node being away never refuses a registration
                acknowledged = before + load.acknowledged
                receipts = fetch_receipts(base, headers, [record_id for record_id, _ in acknowledged])
                assert_anchored_exactly_once(ServedLedger.of(env), acknowledged, receipts)
                wait_until(lambda: httpx.get(f"{base}/readyz").status_code == 200, 30, "readyz to recover")
