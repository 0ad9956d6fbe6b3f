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

from ledger.chain.deployment import Deployment
from ledger.consent.patient_session import PatientSession, session_typed_data
from ledger.consent.typed_data import sign_typed_data
from tests.api.conftest import PATIENT
from tests.support.exactly_once import ServedLedger, assert_anchored_exactly_once
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
from tests.support.registrations import RegistrationLoad, fetch_receipt, register

pytestmark = pytest.mark.slow


@dataclass
class Cluster:
    env: dict[str, str]
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
        yield Cluster(env, tmp_path / "data", database_url, tmp_path)


def holds_lock(base: str, admin_key: str) -> bool:
    ready = httpx.get(f"{base}/readyz", headers={"Authorization": f"Bearer {admin_key}"}, timeout=5)
    return bool(ready.json()["batcher"]["holdsLock"])  # an admin's key: the details


def test_two_replicas_share_the_work_and_a_killed_batcher_loses_nothing(cluster: Cluster) -> None:
    admin_key = create_admin(cluster.env)
    with ExitStack() as stack:
        base_a, pid_a = cluster.start(stack, "a")
        base_b, pid_b = cluster.start(stack, "b")
        headers = {"Authorization": f"Bearer {setup_app(base_a, admin_key, ['registrar', 'reader'])}"}
        wait_until(
            lambda: holds_lock(base_a, admin_key) or holds_lock(base_b, admin_key), 30, "a batcher to take the lock"
        )
        assert holds_lock(base_a, admin_key) != holds_lock(base_b, admin_key)  # exactly one anchors
        holder, survivor = ((base_a, pid_a), base_b) if holds_lock(base_a, admin_key) else ((base_b, pid_b), base_a)

        # either replica acknowledges and answers for records the other one took
        first = register(base_a, headers, PATIENT)
        receipt = fetch_receipt(base_b, headers, first[0])
        assert httpx.post(f"{base_a}/v1/verify", json={"receipt": receipt.to_dict()}).json()["match"]

        with RegistrationLoad([base_a, base_b], headers, PATIENT, workers=8) as load:
            load.wait_for(300, 60, "300 acknowledgements")
            load.declare_gone(holder[0])  # the load balancer drops it once it stops answering
            os.kill(holder[1], signal.SIGKILL)  # the batcher dies holding the lock, batches half done
            killed_at = load.count()
            wait_until(lambda: holds_lock(survivor, admin_key), 30, "the other replica to take the batcher lock over")
            load.wait_for(killed_at + 200, 60, "200 more acknowledgements")
        assert not load.errors, load.errors
        assert not load.refused, load.refused  # a replica dying refuses nothing: the other one answers

        acknowledged = [first, *load.acknowledged]
        receipts = [fetch_receipt(survivor, headers, record_id) for record_id, _ in acknowledged]
        assert_anchored_exactly_once(ServedLedger.of(cluster.env), acknowledged, receipts)

        restarted, _ = cluster.start(stack, "a-again")  # the killed replica comes back and answers too
        sample = receipts[:: max(1, len(receipts) // 25)]
        for receipt in sample:
            for base in (restarted, survivor):
                verdict = httpx.post(f"{base}/v1/verify", json={"receipt": receipt.to_dict()}, timeout=30).json()
                assert verdict["match"], verdict
        assert holds_lock(survivor, admin_key) and not holds_lock(restarted, admin_key)
    for name in ("a", "b", "a-again"):  # no key files: every replica read the keys from the store
        replica_dir = cluster.logs / f"replica-{name}"
        assert not (replica_dir / "keys").exists()
        assert Deployment.load(replica_dir) == Deployment.load(cluster.data_dir)


def test_database_connections_dropped_under_load_lose_nothing(cluster: Cluster) -> None:
    """Every server-side session of the store is killed, three times, under load: requests in
    flight fail with 503 ``store_unavailable`` (never a 500) or succeed, and every acknowledged
    record is anchored exactly once after the connections come back."""
    admin_key = create_admin(cluster.env)
    with ExitStack() as stack:
        base, _ = cluster.start(stack, "a")
        headers = {"Authorization": f"Bearer {setup_app(base, admin_key, ['registrar', 'reader'])}"}
        with RegistrationLoad([base], headers, PATIENT, workers=6) as load:
            for _ in range(3):
                # new acknowledgements since the last drop: the request path has connected again
                load.wait_for(load.count() + 100, 60, "acknowledgements")
                with psycopg.connect(cluster.database_url, autocommit=True) as admin:
                    killed = admin.execute(
                        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                        "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                    ).fetchone()
                    assert killed is not None and killed[0] >= 1
            load.wait_for(load.count() + 100, 60, "acknowledgements after the last drop")
        assert not load.errors, load.errors
        assert all((r.status, r.code) == (503, "store_unavailable") for r in load.refused), load.refused
        receipts = [fetch_receipt(base, headers, record_id) for record_id, _ in load.acknowledged]
        assert_anchored_exactly_once(ServedLedger.of(cluster.env), load.acknowledged, receipts)
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


def test_two_replicas_creating_look_alike_organisations_at_once_create_one(cluster: Cluster) -> None:
    """The look-alike check and the creation are one step across replicas (a store-wide lock): two
    admins creating "Acme Clinic" and "Acme CIinic" (capital I for l) on two replicas at the same
    moment get one organisation and one 409 ``confusable_name``. Without the lock both passed the
    check (it reads the names, then spends seconds on chain transactions before inserting)."""
    admin_key = create_admin(cluster.env)
    admin = {"Authorization": f"Bearer {admin_key}"}
    with ExitStack() as stack:
        bases = [cluster.start(stack, name)[0] for name in ("a", "b")]
        start = threading.Barrier(2)
        answers: dict[str, httpx.Response] = {}

        def create(base: str, name: str) -> None:
            start.wait(10)
            answers[name] = httpx.post(f"{base}/v1/admin/organisations", json={"name": name}, headers=admin, timeout=60)

        threads = [
            threading.Thread(target=create, args=(base, name))
            for base, name in zip(bases, ("Acme Clinic", "Acme CIinic"), strict=True)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(90)
        statuses = sorted((answer.status_code, answer.json().get("code")) for answer in answers.values())
        assert statuses == [(201, None), (409, "confusable_name")], {k: v.text for k, v in answers.items()}
        listed = httpx.get(f"{bases[1]}/v1/admin/organisations", headers=admin).json()
        assert len([o for o in listed if o["name"] in ("Acme Clinic", "Acme CIinic")]) == 1, listed
