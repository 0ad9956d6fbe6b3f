"""Two API replicas on one PostgreSQL store and one node: they share the work, one batcher anchors
at a time, and killing it with SIGKILL mid-load loses nothing and anchors nothing twice. The
replicas share no files: each has its own data directory, and the keys (also a new organisation's,
created through one replica) and the deployment record come from the store."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import httpx
import psycopg
import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from web3 import HTTPProvider, Web3

from ledger.chain.client import Chain
from ledger.chain.contracts import load_artifact
from ledger.chain.deployment import Deployment
from ledger.consent.patient_session import PatientSession, session_typed_data
from ledger.consent.typed_data import sign_typed_data
from ledger.records.anchoring import RecordAnchorClient
from ledger.records.receipts import Receipt, verify_receipt
from tests.api.conftest import PATIENT
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


@dataclass
class Cluster:
    env: dict[str, str]
    rpc_url: str
    data_dir: Path
    database_url: str
    logs: Path

    def start(self, stack: ExitStack, name: str) -> tuple[str, int]:
        """Start a replica with a data directory of its own (keys and the deployment record come
        from the shared store); returns its base URL and process id."""
        port = free_port()
        env = {**self.env, "CARELEDGER_DATA_DIR": str(self.logs / f"replica-{name}")}
        process = stack.enter_context(running_service(env, port, log=self.logs / f"{name}.log"))
        return f"http://127.0.0.1:{port}", process.pid


@pytest.fixture
def cluster(tmp_path: Path, database_url: str) -> Iterator[Cluster]:
    anvil_port = free_port()
    rpc_url = f"http://127.0.0.1:{anvil_port}"
    env = service_env(
        tmp_path / "data",
        CARELEDGER_RPC_URL=rpc_url,
        CARELEDGER_FAUCET_KEY=ANVIL_DEV_KEY,
        CARELEDGER_KEYSTORE_PASSPHRASE="replica test",
        CARELEDGER_DATABASE_URL=database_url,
        CARELEDGER_MAX_BATCH_AGE="0.3",
        CARELEDGER_MAX_BATCH_SIZE="64",
    )
    with running_anvil(anvil_port, None):
        yield Cluster(env, rpc_url, tmp_path / "data", database_url, tmp_path)


def holds_lock(base: str) -> bool:
    return bool(httpx.get(f"{base}/readyz", timeout=5).json()["batcher"]["holdsLock"])


def test_two_replicas_share_the_work_and_a_killed_batcher_loses_nothing(cluster: Cluster) -> None:
    admin_key = create_admin(cluster.env)
    with ExitStack() as stack:
        base_a, pid_a = cluster.start(stack, "a")
        base_b, pid_b = cluster.start(stack, "b")
        headers = {"Authorization": f"Bearer {setup_app(base_a, admin_key, ['registrar', 'reader'])}"}
        wait_until(lambda: holds_lock(base_a) or holds_lock(base_b), 30, "a batcher to take the lock")
        assert holds_lock(base_a) != holds_lock(base_b)  # exactly one anchors
        holder, survivor = ((base_a, pid_a), base_b) if holds_lock(base_a) else ((base_b, pid_b), base_a)

        # either replica acknowledges and answers for records the other one took
        first = register(base_a, headers)
        receipt = fetch_receipt(base_b, headers, first[0])
        assert httpx.post(f"{base_a}/v1/verify", json={"receipt": receipt.to_dict()}).json()["match"]

        acknowledged: list[tuple[str, str]] = [first]
        lock = threading.Lock()
        stop = threading.Event()

        def load(worker: int) -> None:
            bases = [base_a, base_b] if worker % 2 else [base_b, base_a]
            with httpx.Client(headers=headers, timeout=10) as http:
                while not stop.is_set():
                    for base in list(bases):
                        digest = "0x" + os.urandom(32).hex()
                        try:
                            response = http.post(f"{base}/v1/records", json={"patient": PATIENT, "digest": digest})
                        except httpx.HTTPError:
                            bases.remove(base)  # that replica is gone: the load balancer drops it
                            continue
                        if response.status_code == 202:
                            with lock:
                                acknowledged.append((response.json()["recordId"], digest))

        workers = [threading.Thread(target=load, args=(i,)) for i in range(8)]
        for worker in workers:
            worker.start()
        wait_until(lambda: len(acknowledged) >= 300, 60, "300 acknowledgements")
        os.kill(holder[1], signal.SIGKILL)  # the batcher dies holding the lock, batches half done
        killed_at = len(acknowledged)
        wait_until(lambda: holds_lock(survivor), 30, "the other replica to take the batcher lock over")
        wait_until(lambda: len(acknowledged) >= killed_at + 200, 60, "200 more acknowledgements")
        stop.set()
        for worker in workers:
            worker.join()

        receipts = [fetch_receipt(survivor, headers, record_id) for record_id, _ in acknowledged]
        for (_, digest), receipt in zip(acknowledged, receipts, strict=True):
            assert "0x" + receipt.digest.hex() == digest
        assert_anchored_exactly_once(cluster, [record_id for record_id, _ in acknowledged], receipts)

        restarted, _ = cluster.start(stack, "a-again")  # the killed replica comes back and answers too
        sample = receipts[:: max(1, len(receipts) // 25)]
        for receipt in sample:
            for base in (restarted, survivor):
                verdict = httpx.post(f"{base}/v1/verify", json={"receipt": receipt.to_dict()}, timeout=30).json()
                assert verdict["match"], verdict
        assert holds_lock(survivor) and not holds_lock(restarted)
    for name in ("a", "b", "a-again"):  # no key files: every replica read the keys from the store
        replica_dir = cluster.logs / f"replica-{name}"
        assert not (replica_dir / "keys").exists()
        assert Deployment.load(replica_dir) == Deployment.load(cluster.data_dir)


def assert_anchored_exactly_once(cluster: Cluster, record_ids: list[str], receipts: list[Receipt]) -> None:
    """Every acknowledged record is in one anchored batch; the chain anchored each batch once and
    no record twice; every receipt verifies against the chain."""
    deployment = Deployment.load(cluster.data_dir)
    chain = Chain(Web3(HTTPProvider(cluster.rpc_url)))
    anchors = RecordAnchorClient(chain, deployment.record_anchor, deployment.deploy_block)
    for receipt in receipts:
        assert verify_receipt(receipt, anchors=anchors).valid
    contract = chain.contract(load_artifact("RecordAnchor"), deployment.record_anchor)
    events = contract.events.RootAnchored.get_logs(from_block=deployment.deploy_block, to_block="latest")
    chain_roots = [bytes(e["args"]["root"]) for e in events]
    assert len(chain_roots) == len(set(chain_roots))
    with psycopg.connect(cluster.database_url) as db:
        stored = db.execute("SELECT record_id, batch_id FROM records WHERE kind = 'record'").fetchall()
        batches = db.execute("SELECT root, leaf_count, state FROM batches").fetchall()
    batch_of = dict(stored)
    assert len(batch_of) == len(stored)
    assert all(batch_of.get(record_id) is not None for record_id in record_ids)  # none lost, all sealed
    assert {state for _, _, state in batches} == {"anchored"}
    assert sorted(bytes(root) for root, _, _ in batches) == sorted(chain_roots)  # each batch once on chain
    on_chain_leaves = sum(int(e["args"]["leafCount"]) for e in events)
    assert on_chain_leaves == sum(count for _, count, _ in batches) == len(stored)  # no record in two batches


def register(base: str, headers: dict[str, str]) -> tuple[str, str]:
    digest = "0x" + os.urandom(32).hex()
    response = httpx.post(
        f"{base}/v1/records", json={"patient": PATIENT, "digest": digest}, headers=headers, timeout=30
    )
    assert response.status_code == 202, response.text
    return response.json()["recordId"], digest


def fetch_receipt(base: str, headers: dict[str, str], record_id: str) -> Receipt:
    response = httpx.get(
        f"{base}/v1/records/{record_id}/receipt", params={"wait": "true", "timeout": 30}, headers=headers, timeout=60
    )
    assert response.status_code == 200, (record_id, response.text)
    return Receipt.parse(response.json())


def test_database_connections_dropped_under_load_lose_nothing(cluster: Cluster) -> None:
    """Every server-side session of the store is killed, three times, under load: requests in
    flight fail with 503 ``store_unavailable`` (never a 500) or succeed, and every acknowledged
    record is anchored exactly once after the connections come back."""
    admin_key = create_admin(cluster.env)
    with ExitStack() as stack:
        base, _ = cluster.start(stack, "a")
        headers = {"Authorization": f"Bearer {setup_app(base, admin_key, ['registrar', 'reader'])}"}
        acknowledged: list[tuple[str, str]] = []
        failures: list[tuple[int, str]] = []
        lock = threading.Lock()
        stop = threading.Event()

        def load() -> None:
            with httpx.Client(headers=headers, timeout=10) as http:
                while not stop.is_set():
                    digest = "0x" + os.urandom(32).hex()
                    response = http.post(f"{base}/v1/records", json={"patient": PATIENT, "digest": digest})
                    with lock:
                        if response.status_code == 202:
                            acknowledged.append((response.json()["recordId"], digest))
                        else:
                            failures.append((response.status_code, response.json().get("code", "")))

        workers = [threading.Thread(target=load) for _ in range(6)]
        for worker in workers:
            worker.start()
        for _ in range(3):
            # new acknowledgements since the last drop: the request path has connected again
            seen = len(acknowledged)
            wait_until(lambda s=seen: len(acknowledged) >= s + 100, 60, "acknowledgements")
            with psycopg.connect(cluster.database_url, autocommit=True) as admin:
                killed = admin.execute(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                ).fetchone()
                assert killed is not None and killed[0] >= 1
        seen = len(acknowledged)
        wait_until(lambda: len(acknowledged) >= seen + 100, 60, "acknowledgements after the last drop")
        stop.set()
        for worker in workers:
            worker.join()
        assert all(status == 503 and code == "store_unavailable" for status, code in failures), failures
        receipts = [fetch_receipt(base, headers, record_id) for record_id, _ in acknowledged]
        assert_anchored_exactly_once(cluster, [record_id for record_id, _ in acknowledged], receipts)
        wait_until(lambda: httpx.get(f"{base}/readyz").status_code == 200, 30, "readyz")


def test_a_patient_signs_in_on_one_replica_and_reads_on_the_other(cluster: Cluster) -> None:
    """Replicas share the sign-in state through the store: a challenge from one is answered at the
    other, and a token from either reads on both (the token secret is a shared file)."""
    create_admin(cluster.env)
    cluster.env["CARELEDGER_PUBLIC_ORIGIN"] = "https://ledger.example.org"  # both behind one address
    patient: LocalAccount = Account.create()
    with ExitStack() as stack:
        base_a, _ = cluster.start(stack, "a")
        base_b, _ = cluster.start(stack, "b")
        domain = httpx.get(f"{base_a}/v1/patient/signing").json()["session"]["domain"]
        challenge = httpx.post(f"{base_a}/v1/patient/challenges", json={"patient": patient.address}).json()
        issued = int(time.time())
        session = PatientSession(
            patient.address, challenge["origin"], bytes.fromhex(challenge["challenge"][2:]), issued, issued + 600
        )
        body = {
            "patient": patient.address,
            "origin": session.origin,
            "challenge": challenge["challenge"],
            "issuedAt": issued,
            "expiresAt": issued + 600,
            "signature": "0x" + sign_typed_data(patient, session_typed_data(domain, session)).hex(),
        }
        signed_in = httpx.post(f"{base_b}/v1/patient/sessions", json=body)
        assert signed_in.status_code == 200, signed_in.text
        token = {"Authorization": f"Bearer {signed_in.json()['token']}"}
        for base in (base_a, base_b):
            read = httpx.get(f"{base}/v1/patient/{patient.address}/consents", headers=token)
            assert read.status_code == 200, read.text
        replayed = httpx.post(f"{base_a}/v1/patient/sessions", json=body)  # used up on the other replica
        assert (replayed.status_code, replayed.json()["code"]) == (400, "invalid_challenge")


def test_a_revoked_key_stops_working_on_every_replica_within_a_second(cluster: Cluster) -> None:
    admin_key = create_admin(cluster.env)
    with ExitStack() as stack:
        base_a, _ = cluster.start(stack, "a")
        base_b, _ = cluster.start(stack, "b")
        admin = {"Authorization": f"Bearer {admin_key}"}
        key = setup_app(base_a, admin_key, ["reader"])
        headers = {"Authorization": f"Bearer {key}"}
        assert httpx.get(f"{base_b}/v1/records?digest=0x{'00' * 32}", headers=headers).status_code == 200  # cached
        (app,) = [
            a for a in httpx.get(f"{base_a}/v1/admin/apps", headers=admin).json() if key.startswith(a["keyPrefix"])
        ]
        assert httpx.delete(f"{base_a}/v1/admin/apps/{app['id']}", headers=admin).status_code == 200
        revoked_at = time.monotonic()
        while httpx.get(f"{base_b}/v1/records?digest=0x{'00' * 32}", headers=headers).status_code == 200:
            assert time.monotonic() - revoked_at < 1.5, "the revoked key still works on the other replica"
            time.sleep(0.05)
        assert time.monotonic() - revoked_at <= 1.5
