"""A full disk under the data directory: registrations are refused with 503 ``storage_full`` (never
a 500) and ``/readyz`` says ``not_ready``, nothing acknowledged is lost, nothing refused is
half-written, and once space is freed the same process acknowledges and anchors everything again,
without a restart.

The data directory (the SQLite store and, on the embedded chain, the chain's store) is on a small
disk of its own (:mod:`tests.support.small_disk`), filled by a file the test writes until the disk
says ENOSPC; removing that file frees the space. The service runs as `careledger serve`, its log
outside the small disk. With the store on PostgreSQL the data directory holds no store, so this
test does not apply there; a full disk under PostgreSQL is another test.
"""

from __future__ import annotations

import sqlite3
import time
from contextlib import closing
from pathlib import Path

import httpx
import pytest

from ledger.chain.embedded.backend import CHAIN_FILE
from ledger.store.database import STORAGE_FULL_MESSAGE, STORE_FILE
from tests.api.conftest import PATIENT
from tests.support.chain_under_test import ChainUnderTest
from tests.support.exactly_once import ServedLedger, assert_anchored_exactly_once
from tests.support.postgres import selected_store
from tests.support.processes import create_admin, free_port, running_service, service_env, setup_app, wait_until
from tests.support.registrations import RegistrationLoad, fetch_receipts, register
from tests.support.small_disk import fill

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        selected_store() != "sqlite",
        reason="about the SQLite store in a full data directory; with CARELEDGER_TEST_STORE=postgres "
        "the store is elsewhere (a full disk under PostgreSQL is a different test)",
    ),
]

REFUSALS_WANTED = 20
"""Registrations refused on the full disk before space is freed again."""
PROBE = "0x" + "ab" * 32
"""The digest of one registration sent on the full disk to read its answer whole."""


def integrity(path: Path) -> str:
    """SQLite's own verdict on a database file (``ok`` when sound), read-only."""
    with closing(sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)) as db:
        return str(db.execute("PRAGMA integrity_check").fetchone()[0])


def stored_digests(data_dir: Path) -> set[str]:
    with closing(sqlite3.connect(f"{(data_dir / STORE_FILE).resolve().as_uri()}?mode=ro", uri=True)) as db:
        return {"0x" + bytes(digest).hex() for (digest,) in db.execute("SELECT digest FROM records")}


def batcher_error(base: str, admin_key: str) -> str | None:
    """The batcher's last error, as the readiness check reports it (to an admin: details are theirs)."""
    headers = {"Authorization": f"Bearer {admin_key}"}
    error: str | None = httpx.get(f"{base}/readyz", headers=headers, timeout=10).json()["batcher"]["lastError"]
    return error


def test_a_full_disk_refuses_registrations_loses_nothing_and_recovers_without_a_restart(
    tmp_path: Path, small_disk: Path, chain_under_test: ChainUnderTest
) -> None:
    data_dir = small_disk / "data"
    # records wait up to a second for their batch: under load some are always pending when the disk
    # fills, so the batcher too meets the full disk
    env = service_env(data_dir, CARELEDGER_MAX_BATCH_AGE="1.0", **chain_under_test.env())
    log = tmp_path / "service.log"  # not on the small disk
    admin_key = create_admin(env)
    port = free_port()
    base = f"http://127.0.0.1:{port}"

    with running_service(env, port, log=log) as server:
        headers = {"Authorization": f"Bearer {setup_app(base, admin_key, ['registrar', 'reader'])}"}
        before = [register(base, headers, PATIENT) for _ in range(10)]
        fetch_receipts(base, headers, [record_id for record_id, _ in before])  # anchored with space to spare

        with RegistrationLoad([base], headers, PATIENT, workers=4) as load:
            load.wait_for(50, 60, "acknowledgements before the disk fills")
            full_from = time.monotonic()
            filler = fill(small_disk)
            load.wait_for_refusals(REFUSALS_WANTED, 120, "registrations refused on the full disk")
            wait_until(
                lambda: "StorageFullError" in str(batcher_error(base, admin_key)),
                60,
                "the batcher to meet the full disk",
            )
            on_full_disk = load.count()
            probe = httpx.post(f"{base}/v1/records", json={"patient": PATIENT, "digest": PROBE}, headers=headers)
            assert probe.status_code == 503 and probe.headers["Retry-After"], probe.text
            assert probe.json() == {"code": "storage_full", "message": STORAGE_FULL_MESSAGE, "details": {}}
            not_ready = httpx.get(f"{base}/readyz", headers={"Authorization": f"Bearer {admin_key}"}, timeout=10)
            assert not_ready.status_code == 503 and not_ready.json()["disk"]["enough"] is False  # route traffic away
            anchored_receipt = httpx.get(f"{base}/v1/records/{before[0][0]}/receipt", headers=headers, timeout=30)
            assert anchored_receipt.status_code == 200, anchored_receipt.text  # reads need no space

            filler.unlink()
            freed_at = time.monotonic()
            load.wait_for(on_full_disk + 100, 120, "acknowledgements once space is freed")
        assert not load.errors, load.errors
        refusals = {(r.status, r.code) for r in load.refused}
        assert refusals == {(503, "storage_full")}, load.refused[:5]
        outside_the_outage = [r for r in load.refused if r.answered_at < full_from or r.sent_at > freed_at]
        assert not outside_the_outage, outside_the_outage[:5]  # refused only while the disk was full

        acknowledged = before + load.acknowledged
        receipts = fetch_receipts(base, headers, [record_id for record_id, _ in acknowledged])
        stored = assert_anchored_exactly_once(ServedLedger.of(env), acknowledged, receipts)
        assert stored == {record_id for record_id, _ in acknowledged}  # nothing but what was acknowledged
        refused_digests = {r.digest for r in load.refused} | {PROBE}
        assert not stored_digests(data_dir) & refused_digests  # nothing refused half-written
        wait_until(lambda: httpx.get(f"{base}/readyz").status_code == 200, 60, "readyz")
        assert server.poll() is None  # the same process throughout

    assert integrity(data_dir / STORE_FILE) == "ok"
    if chain_under_test.rpc_url is None:
        assert integrity(data_dir / CHAIN_FILE) == "ok"
    output = log.read_text("utf-8", errors="replace")
    assert "internal_error" not in output and "unexpected error" not in output, output[-5000:]
