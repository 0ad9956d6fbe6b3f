"""Large documents are parsed, validated and hashed off the event loop: while a real ``careledger
serve`` registers 1 MiB FHIR documents back to back, ``/healthz`` and small registrations still
answer about as fast as when it is idle.

The figures compared are measured in the same test, on the same server: its idle latency first,
then the same probes under load. On code that does this work on the loop, each document holds
every other request for most of a second, so most probes under load wait that long.
"""

from __future__ import annotations

import statistics
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from tests.api.conftest import PATIENT
from tests.support.processes import create_admin, free_port, running_service, service_env, setup_app

pytestmark = pytest.mark.slow

JSON = {"content-type": "application/json"}
LOAD_SECONDS = 12.0
PROBE_INTERVAL = 0.05
SLOW_FLOOR_SECONDS = 0.25
"""A probe counts as stalled past this, or past ten times the idle 90th percentile if that is more."""
MOST_STALLED = 0.1
"""At most this fraction of probes under load may stall (today's loop-bound code stalls most)."""


def fhir_bundle(max_bytes: int) -> bytes:
    """A valid FHIR R5 Bundle of Observations, as large as fits in a record body of ``max_bytes``."""
    entries: list[dict[str, Any]] = []
    bundle = {"resourceType": "Bundle", "type": "collection", "entry": entries}
    while True:
        n = len(entries)
        entry = {
            "resource": {
                "resourceType": "Observation",
                "status": "final",
                "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4", "display": f"Heart rate {n}"}]},
                "valueQuantity": {"value": 60 + n % 40, "unit": "/min"},
            }
        }
        entries.append(entry)
        body = orjson.dumps({"patient": PATIENT, "document": bundle})
        if len(body) > max_bytes:
            entries.pop()
            return orjson.dumps({"patient": PATIENT, "document": bundle})


def probe(client: httpx.Client, method: str, path: str, **kwargs: Any) -> float:
    started = time.perf_counter()
    response = client.request(method, path, **kwargs)
    elapsed = time.perf_counter() - started
    assert response.status_code in (200, 202), response.text
    return elapsed


def probes(client: httpx.Client, headers: dict[str, str], seconds: float) -> tuple[list[float], list[float]]:
    """Latencies of ``/healthz`` and of small registrations, one of each per interval."""
    health, small = [], []
    deadline = time.monotonic() + seconds
    n = 0
    while time.monotonic() < deadline:
        n += 1
        health.append(probe(client, "GET", "/healthz"))
        digest = "0x" + f"{time.time_ns():032x}{n:032x}"
        small.append(probe(client, "POST", "/v1/records", json={"patient": PATIENT, "digest": digest}, headers=headers))
        time.sleep(PROBE_INTERVAL)
    return health, small


def p90(values: list[float]) -> float:
    return statistics.quantiles(values, n=10)[-1]


def test_large_documents_do_not_stall_other_requests(tmp_path: Path) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = service_env(tmp_path / "data", CARELEDGER_MAX_BATCH_AGE="0.5")
    admin_key = create_admin(env)
    with running_service(env, port, log=tmp_path / "serve.log"):
        headers = {"Authorization": f"Bearer {setup_app(base, admin_key, ['registrar'])}"}
        document = fhir_bundle(2**20)
        with httpx.Client(base_url=base, timeout=60) as client:
            assert probe(client, "POST", "/v1/records", content=document, headers={**headers, **JSON}) > 0
            idle_health, idle_small = probes(client, headers, 3.0)

            stop = threading.Event()
            registered: list[int] = []

            def register_documents() -> None:
                with httpx.Client(base_url=base, timeout=120) as loader:
                    while not stop.is_set():
                        response = loader.post("/v1/records", content=document, headers={**headers, **JSON})
                        registered.append(response.status_code)

            loaders = [threading.Thread(target=register_documents) for _ in range(2)]
            for loader in loaders:
                loader.start()
            try:
                time.sleep(1.0)  # both loaders have a document in flight
                busy_health, busy_small = probes(client, headers, LOAD_SECONDS)
            finally:
                stop.set()
                for loader in loaders:
                    loader.join(timeout=120)

    assert len(registered) >= 4 and set(registered) == {202}, registered  # the load was real
    for name, idle, busy in (("/healthz", idle_health, busy_health), ("small registration", idle_small, busy_small)):
        bound = max(SLOW_FLOOR_SECONDS, 10 * p90(idle))
        stalled = sum(1 for latency in busy if latency > bound) / len(busy)
        figures = (
            f"{name}: idle p90 {p90(idle) * 1000:.1f} ms; under load p50 {statistics.median(busy) * 1000:.1f} ms, "
            f"p90 {p90(busy) * 1000:.1f} ms, max {max(busy) * 1000:.0f} ms; {stalled:.0%} of {len(busy)} "
            f"probes over {bound * 1000:.0f} ms; {len(registered)} documents registered meanwhile"
        )
        print(figures)
        assert stalled <= MOST_STALLED, figures
