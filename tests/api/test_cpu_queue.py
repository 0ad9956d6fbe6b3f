"""The CPU pool's queue is bounded: past ``cpu_queue`` large documents waiting or being processed,
a large request is refused at once (503 ``server_busy``, ``Retry-After``) instead of its body
waiting in memory behind the others; once the queue drains, the same request is accepted.

Before, the queue had no bound: every large body that arrived waited, however many there were.
"""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import orjson
import pytest
from fastapi.testclient import TestClient

from api.cpu_pool import INLINE_BYTES, CpuPool
from api.service import Service
from ledger.config import Settings
from ledger.exceptions import ServerBusyError
from ledger.store.apps import Role
from tests.api.conftest import PATIENT, MakeApp
from tests.support.chain_under_test import ChainUnderTest


@pytest.fixture
def api_settings(tmp_path: Path, chain_under_test: ChainUnderTest, store_overrides: dict[str, str]) -> Settings:
    return chain_under_test.settings(
        tmp_path / "data", max_batch_age=0.2, cpu_workers=1, cpu_queue=1, **store_overrides
    )


def test_the_pool_refuses_jobs_past_its_queue_and_takes_them_again_once_it_drains() -> None:
    pool = CpuPool(1, queue_limit=2)
    release = threading.Event()

    async def scenario() -> list[str]:
        running = asyncio.ensure_future(pool.run(True, release.wait))
        queued = asyncio.ensure_future(pool.run(True, lambda: "queued"))
        await asyncio.sleep(0.05)
        with pytest.raises(ServerBusyError) as refused:
            await pool.run(True, lambda: "refused")
        assert refused.value.details == {"queue_limit": 2}
        assert await pool.run(False, lambda: "small jobs run on the loop") == "small jobs run on the loop"
        release.set()
        results = [str(await running), await queued]
        results.append(await pool.run(True, lambda: "after"))
        return results

    try:
        assert asyncio.run(scenario()) == ["True", "queued", "after"]
    finally:
        pool.close()


def large_document_body() -> bytes:
    """A record whose body is large enough for the pool (over ``INLINE_BYTES``)."""
    note = "x" * (INLINE_BYTES + 1024)
    return orjson.dumps({"patient": PATIENT, "document": {"resourceType": "Basic", "code": {"text": note}}})


def test_a_large_registration_past_the_queue_is_503_server_busy_and_accepted_once_it_drains(
    client: TestClient, service: Service, make_app: MakeApp
) -> None:
    headers, _ = make_app({Role.REGISTRAR})
    headers = {**headers, "content-type": "application/json"}
    release, started = threading.Event(), threading.Event()

    def occupy() -> None:
        started.set()
        release.wait(30)

    holder = threading.Thread(target=service.cpu.call, args=(occupy,))
    holder.start()
    try:
        assert started.wait(10)
        busy = client.post("/v1/records", content=large_document_body(), headers=headers)
        assert busy.status_code == 503, busy.text
        assert busy.json()["code"] == "server_busy" and busy.headers["Retry-After"].isdigit()
        assert client.get("/healthz").status_code == 200
        assert service.db.conn.execute("SELECT COUNT(*) FROM records").fetchone()[0] == 0
    finally:
        release.set()
        holder.join(10)
    accepted = client.post("/v1/records", content=large_document_body(), headers=headers)
    assert accepted.status_code == 202, accepted.text
