#!/usr/bin/env python3
"""Load on the HTTP API beside a bare ceiling server and a naive server measured in the same run.

Starts ``careledger serve`` in its own process on a fresh temporary data directory (``create-admin``
first, then ``serve``, ready when ``/readyz`` answers 200), creates an organisation and an app, and
drives the server over HTTP from other processes:

1. single-record registrations (``POST /v1/records``, one precomputed digest each) from 64
   connections with ``wrk`` and ``bench/api_load.lua``, counting only 202s; a multi-process
   asyncio/httpx generator stands in when ``wrk`` is not installed;
2. bulk registrations (``POST /v1/records/bulk``, 10,000 records a body, bodies built before the
   clock starts) from a few client processes;
3. ``POST /v1/verify`` latency with real receipts fetched after anchoring;
4. the same-run peers, each its own process with the service stopped: the ceiling
   (``bench/ceiling_server.py``: FastAPI, pydantic body, API-key check, group commit into SQLite
   WAL with synchronous=FULL, nothing else) under loads 1 and 2, and the naive server
   (``bench/naive_server.py``: the ceiling plus a thread anchoring each acknowledged record in its
   own transaction) under load 1;
5. after phases 1 and 2, how long the batcher takes to anchor every acknowledged record (polling
   ``/readyz`` and ``/metrics``), the anchoring lag and the batcher's records anchored per second.

Targets are ratios to the peers of the same run, PASS/FAIL: single-record acks at least 60% of the
ceiling's, bulk records/s at least 65% of the ceiling's bulk path, and records *anchored* per second
at least 50x the naive server's (which also acknowledges into SQLite first, so like is compared
with like). Server and load generator share the machine's cores: absolute rates vary from run to
run and machine to machine. About a minute and a half.

    .venv/bin/python bench/api_load.py [--duration 8] [--profile DIR]
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing as mp
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from multiprocessing.synchronize import Barrier
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

TARGET_SINGLE_SHARE = 0.60  # single-record acks/s against the ceiling server's, same run
TARGET_BULK_SHARE = 0.65  # bulk records/s against the ceiling server's bulk path, same run
TARGET_VERIFY_P99_MS = 20.0
TARGET_RATIO = 50.0  # records anchored/s against the naive server's, same run
SCRYPT_N = 16  # keystore cost for throwaway keys: the bench measures the API, not scrypt
PATIENT = "0x8ba1f109551bd432803012645ac136ddd64dba72"
WRK_SCRIPT = ROOT / "bench" / "api_load.lua"
READY_TIMEOUT = 120.0
BENCH_SERVER_KEY = "bench-ceiling-key"  # the ceiling and naive servers' one API key

console = Console(width=None if sys.stdout.isatty() else 140)


# --- the server under test -------------------------------------------------------------------


def careledger_command() -> list[str]:
    """The ``careledger`` entry point of this interpreter's environment (or the module, if not installed)."""
    script = Path(sys.executable).with_name("careledger")
    return [str(script)] if script.exists() else [sys.executable, "-m", "api.cli"]


@dataclass
class Server:
    """A ``careledger serve`` process on a private data directory."""

    process: subprocess.Popen[bytes]
    port: int
    admin_key: str
    log_path: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def connection(self, timeout: float = 60.0) -> http.client.HTTPConnection:
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log_tail(self, lines: int = 30) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system, all threads) a process has used so far; 0 where /proc is missing."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class ServerCpu:
    """Server CPU over one phase: the figure least disturbed by other load on a shared machine."""

    seconds: float
    wall: float
    units: int

    @property
    def cores(self) -> float:
        return self.seconds / max(self.wall, 1e-9)

    @property
    def us_per_unit(self) -> float:
        return self.seconds / max(self.units, 1) * 1e6


def cpu_mark(server: Server) -> tuple[float, float]:
    """The server's CPU seconds and the clock now, to pass to :func:`cpu_since`."""
    return cpu_seconds(server.pid), time.monotonic()


def cpu_since(server: Server, mark: tuple[float, float], units: int, wall: float | None = None) -> ServerCpu:
    """Server CPU since ``mark`` for ``units`` requests or records (over ``wall`` s if given)."""
    return ServerCpu(cpu_seconds(server.pid) - mark[0], wall or time.monotonic() - mark[1], units)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def running_server(data_dir: Path, env: dict[str, str]) -> Iterator[Server]:
    """Create the admin app, start ``serve`` and wait until ``/readyz`` is 200; stop it on exit."""
    with serving(data_dir, env, create_admin(data_dir, env), data_dir.parent / "server.log") as server:
        yield server


def create_admin(data_dir: Path, env: dict[str, str]) -> str:
    """Run ``careledger create-admin`` on ``data_dir``; returns the admin API key it prints."""
    created = subprocess.run(
        [*careledger_command(), "create-admin", "--data-dir", str(data_dir)],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    if created.returncode != 0:
        raise SystemExit(f"create-admin failed:\n{created.stdout}\n{created.stderr}")
    return created.stdout.strip().splitlines()[-1].strip()


@contextmanager
def serving(data_dir: Path, env: dict[str, str], admin_key: str, log_path: Path) -> Iterator[Server]:
    """Start ``serve`` on ``data_dir`` (admin created already), logging to ``log_path``; ready when
    ``/readyz`` is 200; stopped on exit."""
    port = free_port()
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [*careledger_command(), "serve", "--data-dir", str(data_dir), "--port", str(port)],
            env=env,
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = Server(process, port, admin_key, log_path)
    try:
        wait_ready(server)
        yield server
    finally:
        stop_server(server)


@contextmanager
def bench_server(script: str, tmp: Path, env: dict[str, str], *extra: str) -> Iterator[Server]:
    """Start ``bench/<script>`` (a ceiling or naive peer) on a fresh SQLite file; ready once it answers."""
    port = free_port()
    name = script.removesuffix(".py")
    log_path = tmp / f"{name}.log"
    command = [sys.executable, str(ROOT / "bench" / script), "--port", str(port), "--db", str(tmp / f"{name}.sqlite3")]
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [*command, "--key", BENCH_SERVER_KEY, *extra],
            env=env,
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = Server(process, port, BENCH_SERVER_KEY, log_path)
    try:
        wait_ready(server, "/stats" if name == "naive_server" else "/v1/records", {200, 405})
        yield server
    finally:
        stop_server(server)


def wait_ready(server: Server, path: str = "/readyz", ready: frozenset[int] | set[int] = frozenset({200})) -> None:
    """Wait until ``GET path`` answers one of ``ready`` (the server's key sent), or give up."""
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise SystemExit(f"the server exited with {server.process.returncode}:\n{server.log_tail()}")
        try:
            status, _ = call(server.connection(timeout=5), "GET", path, key=server.admin_key or None)
            if status in ready:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"the server was not ready within {READY_TIMEOUT:.0f} s:\n{server.log_tail()}")


def stop_server(server: Server) -> None:
    if server.process.poll() is None:
        server.process.send_signal(signal.SIGINT)
        try:
            server.process.wait(30)
        except subprocess.TimeoutExpired:
            server.process.kill()
            server.process.wait()


def call(
    conn: http.client.HTTPConnection, method: str, path: str, body: bytes | None = None, key: str | None = None
) -> tuple[int, bytes]:
    """One request on a kept-alive connection; returns status and raw body."""
    headers = {"Content-Type": "application/json"} if body is not None else {}
    if key is not None:
        headers["Authorization"] = f"Bearer {key}"
    conn.request(method, path, body=body, headers=headers)
    response = conn.getresponse()
    return response.status, response.read()


def call_json(
    server: Server, method: str, path: str, payload: Any = None, key: str | None = None, expect: int = 200
) -> Any:
    conn = server.connection()
    try:
        status, raw = call(conn, method, path, None if payload is None else json.dumps(payload).encode(), key)
    finally:
        conn.close()
    if status != expect:
        raise SystemExit(f"{method} {path} answered {status}, expected {expect}: {raw[:500]!r}")
    return json.loads(raw)


def registrar_key(server: Server) -> str:
    """An organisation and an app with the registrar and reader roles; returns the app's API key."""
    org = call_json(server, "POST", "/v1/admin/organisations", {"name": "Load Test Hospital"}, server.admin_key, 201)
    app = call_json(
        server,
        "POST",
        "/v1/admin/apps",
        {"organisationId": org["id"], "name": "load", "roles": ["registrar", "reader"]},
        server.admin_key,
        201,
    )
    key: str = app["apiKey"]
    return key


# --- what the server reports about anchoring -------------------------------------------------

_METRIC = re.compile(r"^(careledger_[a-z_]+?)(?:_total)?\s+([0-9.eE+-]+)$", re.MULTILINE)


@dataclass(frozen=True)
class Anchoring:
    """The batcher's figures at one moment."""

    at: float
    pending: int
    oldest_pending_s: float
    records_anchored: int
    batches_anchored: int
    last_lag_s: float


def anchoring(server: Server | Sequence[Server]) -> Anchoring:
    """The batcher figures of one server, or of replicas on one store (their per-process counters summed)."""
    if not isinstance(server, Server):
        parts = [anchoring(s) for s in server]
        return Anchoring(
            max(p.at for p in parts),
            max(p.pending for p in parts),
            max(p.oldest_pending_s for p in parts),
            sum(p.records_anchored for p in parts),
            sum(p.batches_anchored for p in parts),
            max(p.last_lag_s for p in parts),
        )
    conn = server.connection()
    try:
        _, ready = call(conn, "GET", "/readyz", key=server.admin_key)  # the figures are for admins
        _, metrics = call(conn, "GET", "/metrics")
    finally:
        conn.close()
    body = json.loads(ready)
    figures = {name: float(value) for name, value in _METRIC.findall(metrics.decode())}
    return Anchoring(
        time.monotonic(),
        int(body["pendingRecords"]),
        float(body["oldestPendingSeconds"]),
        int(figures.get("careledger_records_anchored", 0)),
        int(figures.get("careledger_batches_anchored", 0)),
        figures.get("careledger_anchoring_lag_seconds", 0.0),
    )


@dataclass(frozen=True)
class Drain:
    """How anchoring kept up with one load phase."""

    acknowledged: int
    anchored: int
    pending_at_end_of_load: int
    oldest_pending_at_end_s: float
    max_lag_s: float
    drain_s: float
    anchored_per_s: float
    batches: int
    complete: bool


def wait_drained(
    server: Server | Sequence[Server],
    before: Anchoring,
    load_started: float,
    acknowledged: int,
    timeout: float,
    settled: Callable[[], bool] | None = None,
) -> Drain:
    """Poll until every record acknowledged since ``before`` is anchored (or ``timeout``); ``settled``,
    when given, decides that from the store itself instead of the servers' counters."""
    end_of_load = anchoring(server)
    now, max_lag = end_of_load, end_of_load.last_lag_s

    def done() -> bool:
        if settled is not None:
            return now.pending == 0 and settled()
        return now.pending == 0 and now.records_anchored - before.records_anchored >= acknowledged

    deadline = time.monotonic() + timeout
    while not done() and time.monotonic() < deadline:
        time.sleep(0.1)
        now = anchoring(server)
        max_lag = max(max_lag, now.last_lag_s)
    anchored = now.records_anchored - before.records_anchored
    return Drain(
        acknowledged=acknowledged,
        anchored=anchored,
        pending_at_end_of_load=end_of_load.pending,
        oldest_pending_at_end_s=end_of_load.oldest_pending_s,
        max_lag_s=max_lag,
        drain_s=now.at - end_of_load.at,
        anchored_per_s=anchored / max(now.at - load_started, 1e-9),
        batches=now.batches_anchored - before.batches_anchored,
        complete=done(),
    )


# --- phase 1: single-record registrations -----------------------------------------------------


@dataclass(frozen=True)
class Load:
    """What a load generator saw: 202s, their rate and latency (ms)."""

    generator: str
    accepted: int
    other: int
    seconds: float
    p50_ms: float
    p99_ms: float

    @property
    def per_s(self) -> float:
        return self.accepted / self.seconds


def single_with_wrk(server: Server, key: str, connections: int, seconds: float) -> Load:
    wrk = shutil.which("wrk")
    assert wrk is not None
    result = subprocess.run(
        [
            wrk,
            "-t2",
            f"-c{connections}",
            f"-d{seconds:g}s",
            "--timeout",
            "30s",
            "-s",
            str(WRK_SCRIPT),
            f"{server.url}/v1/records",
            "--",
            key,
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    line = next((ln for ln in result.stdout.splitlines() if ln.startswith("CARELEDGER_WRK ")), None)
    if line is None:
        raise SystemExit(f"wrk failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    figures = json.loads(line.removeprefix("CARELEDGER_WRK "))
    errors = sum(figures[k] for k in ("connect", "read", "write", "timeout"))
    return Load(
        "wrk",
        figures["requests"] - figures["non2xx"],
        figures["non2xx"] + errors,
        figures["duration_us"] / 1e6,
        figures["p50_us"] / 1e3,
        figures["p99_us"] / 1e3,
    )


def _single_client_process(
    url: str,
    key: str,
    connections: int,
    seconds: float,
    worker: int,
    barrier: Barrier,
    results: mp.Queue[tuple[int, int, list[float]]],
) -> None:
    """Python stand-in for wrk: ``connections`` concurrent keep-alive clients for ``seconds``."""
    import asyncio

    import httpx

    async def client(http: httpx.AsyncClient, n: int, stop: float, latencies: list[float]) -> tuple[int, int]:
        ok = other = 0
        counter = 0
        while time.monotonic() < stop:
            counter += 1
            body = {"patient": PATIENT, "digest": f"0x{worker:04x}{n:04x}{counter:056x}"}
            start = time.perf_counter()
            response = await http.post("/v1/records", json=body)
            latencies.append(time.perf_counter() - start)
            if response.status_code == 202:
                ok += 1
            else:
                other += 1
        return ok, other

    async def run() -> tuple[int, int, list[float]]:
        limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
        async with httpx.AsyncClient(
            base_url=url, headers={"Authorization": f"Bearer {key}"}, limits=limits, timeout=30
        ) as http:
            latencies: list[float] = []
            stop = time.monotonic() + seconds
            counts = await asyncio.gather(*(client(http, n, stop, latencies) for n in range(connections)))
            return sum(c[0] for c in counts), sum(c[1] for c in counts), latencies

    barrier.wait()
    results.put(asyncio.run(run()))


def single_with_python(server: Server, key: str, connections: int, seconds: float, processes: int = 2) -> Load:
    context = mp.get_context("spawn")
    barrier = context.Barrier(processes + 1)
    results: mp.Queue[tuple[int, int, list[float]]] = context.Queue()
    workers = [
        context.Process(
            target=_single_client_process,
            args=(server.url, key, connections // processes, seconds, w, barrier, results),
        )
        for w in range(processes)
    ]
    for worker in workers:
        worker.start()
    barrier.wait()
    start = time.monotonic()
    gathered = [results.get() for _ in workers]
    elapsed = time.monotonic() - start
    for worker in workers:
        worker.join()
    latencies = sorted(x for _, _, lat in gathered for x in lat)
    return Load(
        "python asyncio/httpx, client-bound: a lower bound",
        sum(g[0] for g in gathered),
        sum(g[1] for g in gathered),
        elapsed,
        percentile(latencies, 50) * 1e3,
        percentile(latencies, 99) * 1e3,
    )


def percentile(sorted_values: Sequence[float], pct: float) -> float:
    if not sorted_values:
        return float("nan")
    return sorted_values[min(len(sorted_values) - 1, int(len(sorted_values) * pct / 100))]


# --- phase 2: bulk registrations --------------------------------------------------------------


@dataclass
class BulkResult:
    accepted_records: int = 0
    other: int = 0
    latencies: list[float] = field(default_factory=list)
    started: float = 0.0
    finished: float = 0.0
    record_ids: list[str] = field(default_factory=list)


def bulk_body(size: int) -> bytes:
    """One bulk body of ``size`` records with random digests."""
    randomness = os.urandom(32 * size).hex()
    records = ",".join(
        f'{{"patient":"{PATIENT}","digest":"0x{randomness[64 * i : 64 * (i + 1)]}"}}' for i in range(size)
    )
    return f'{{"records":[{records}]}}'.encode()


def _bulk_client_process(
    port: int, key: str, size: int, requests: int, sample: int, barrier: Barrier, results: mp.Queue[BulkResult]
) -> None:
    bodies = [bulk_body(size) for _ in range(requests)]  # built before the clock starts
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    conn.connect()
    answers: list[bytes] = []
    result = BulkResult()
    barrier.wait()
    result.started = time.monotonic()
    for body in bodies:
        start = time.perf_counter()
        status, raw = call(conn, "POST", "/v1/records/bulk", body, key)
        result.latencies.append(time.perf_counter() - start)
        if status == 202:
            result.accepted_records += size
            answers.append(raw)
        else:
            result.other += 1
    result.finished = time.monotonic()
    conn.close()
    per_answer = max(1, sample // max(1, len(answers)))
    for raw in answers:  # record ids spread over all bodies, for receipts from many batches
        acks = json.loads(raw)["records"]
        result.record_ids += [acks[i]["recordId"] for i in range(0, len(acks), max(1, len(acks) // per_answer))]
    results.put(result)


def bulk_load(
    server: Server | Sequence[Server], key: str, size: int, requests: int, clients: int, sample: int
) -> BulkResult:
    """``clients`` processes each POST ``requests`` bulk bodies back to back; returns the merged result.
    Given several servers (replicas), the clients take them in turn."""
    ports = [server.port] if isinstance(server, Server) else [s.port for s in server]
    context = mp.get_context("spawn")
    barrier = context.Barrier(clients)
    results: mp.Queue[BulkResult] = context.Queue()
    workers = [
        context.Process(
            target=_bulk_client_process,
            args=(ports[c % len(ports)], key, size, requests, sample // clients, barrier, results),
        )
        for c in range(clients)
    ]
    for worker in workers:
        worker.start()
    gathered = [results.get() for _ in workers]
    for worker in workers:
        worker.join()
    return BulkResult(
        accepted_records=sum(r.accepted_records for r in gathered),
        other=sum(r.other for r in gathered),
        latencies=sorted(x for r in gathered for x in r.latencies),
        started=min(r.started for r in gathered),
        finished=max(r.finished for r in gathered),
        record_ids=[i for r in gathered for i in r.record_ids],
    )


# --- phase 3: verification --------------------------------------------------------------------


@dataclass(frozen=True)
class Verification:
    receipts: int
    fetch_s: float
    count: int
    matched: int
    per_s: float
    p50_ms: float
    p99_ms: float


def fetch_receipts(server: Server, key: str, record_ids: Sequence[str]) -> list[dict[str, Any]]:
    conn = server.connection()
    receipts = []
    for record_id in record_ids:
        status, raw = call(conn, "GET", f"/v1/records/{record_id}/receipt?wait=true&timeout=20", key=key)
        if status == 200:
            receipts.append(json.loads(raw))
    conn.close()
    return receipts


def verify_load(
    server: Server, receipts: Sequence[dict[str, Any]], count: int, time_cap: float
) -> tuple[int, int, float, list[float]]:
    """POST /v1/verify ``count`` times (sequentially, receipts in turn); returns done, matched, s, latencies."""
    bodies = [json.dumps({"receipt": r}).encode() for r in receipts]
    conn = server.connection()
    for body in bodies[:10]:  # warm-up
        call(conn, "POST", "/v1/verify", body)
    latencies, matched = [], 0
    start = time.monotonic()
    for i in range(count):
        begin = time.perf_counter()
        status, raw = call(conn, "POST", "/v1/verify", bodies[i % len(bodies)])
        latencies.append(time.perf_counter() - begin)
        matched += status == 200 and json.loads(raw)["match"] is True
        if time.monotonic() - start > time_cap:
            break
    elapsed = time.monotonic() - start
    conn.close()
    return len(latencies), matched, elapsed, sorted(latencies)


# --- phase 4: the same-run peers: the ceiling and the naive server --------------------------


@dataclass(frozen=True)
class Ceiling:
    """The bare ceiling server under the same single-record and bulk loads."""

    single: Load
    bulk: BulkResult
    cpu: dict[str, ServerCpu]

    @property
    def bulk_per_s(self) -> float:
        return self.bulk.accepted_records / max(self.bulk.finished - self.bulk.started, 1e-9)


def generator(use_wrk: bool) -> Callable[[Server, str, int, float], Load]:
    return single_with_wrk if use_wrk else single_with_python


def ceiling_phase(tmp: Path, env: dict[str, str], args: argparse.Namespace, use_wrk: bool) -> Ceiling:
    """Phases 1 and 2 against ``bench/ceiling_server.py``, started and stopped here."""
    with bench_server("ceiling_server.py", tmp, env) as server:
        mark = cpu_mark(server)
        single = generator(use_wrk)(server, server.admin_key, args.connections, args.duration)
        cpu = {"single": cpu_since(server, mark, single.accepted + single.other, single.seconds)}
        mark = cpu_mark(server)
        bulk = bulk_load(server, server.admin_key, args.bulk_size, args.bulk_requests, args.bulk_clients, 0)
        cpu["bulk"] = cpu_since(server, mark, bulk.accepted_records, bulk.finished - bulk.started)
    return Ceiling(single, bulk, cpu)


@dataclass(frozen=True)
class Naive:
    """The naive server: its acknowledgements under load, and the records it anchored meanwhile."""

    load: Load
    anchored: int
    seconds: float

    @property
    def anchored_per_s(self) -> float:
        return self.anchored / max(self.seconds, 1e-9)


def naive_stats(server: Server) -> dict[str, int]:
    stats: dict[str, int] = call_json(server, "GET", "/stats", key=server.admin_key)
    return stats


def naive_phase(tmp: Path, env: dict[str, str], args: argparse.Namespace, use_wrk: bool) -> Naive:
    """Phase 1's load against ``bench/naive_server.py``, then ``--naive-window`` s more of anchoring."""
    with bench_server("naive_server.py", tmp, env, "--chain-dir", str(tmp / "naive-chain")) as server:
        deadline = time.monotonic() + READY_TIMEOUT
        while not naive_stats(server)["ready"] and time.monotonic() < deadline:
            time.sleep(0.2)
        started = time.monotonic()
        load = generator(use_wrk)(server, server.admin_key, args.connections, args.duration)
        time.sleep(args.naive_window)
        anchored = naive_stats(server)["anchored"]
        seconds = time.monotonic() - started
    return Naive(load, anchored, seconds)


# --- profiling (optional) ---------------------------------------------------------------------


@contextmanager
def profiled(server: Server, out_dir: Path | None, name: str, fmt: str) -> Iterator[None]:
    """Record the server with py-spy while the block runs (if ``out_dir`` is given)."""
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if out_dir is None or not Path(py_spy).exists():
        if out_dir is not None:
            console.print("[yellow]py-spy not found: no profile (pip install py-spy)[/]")
        yield
        return
    out_dir.mkdir(parents=True, exist_ok=True)
    suffix = {"flamegraph": "svg", "speedscope": "json", "raw": "txt"}[fmt]
    recorder = subprocess.Popen(
        [
            py_spy,
            "record",
            "--pid",
            str(server.pid),
            "--format",
            fmt,
            "--nonblocking",
            "--rate",
            "200",
            "-o",
            str(out_dir / f"{name}.{suffix}"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    time.sleep(1.0)  # let it attach
    try:
        yield
    finally:
        recorder.send_signal(signal.SIGINT)
        try:
            recorder.wait(30)
        except subprocess.TimeoutExpired:
            recorder.kill()


# --- report -----------------------------------------------------------------------------------


def batching_settings() -> tuple[str, str]:
    """The servers' max batch size and age: from the environment, else the service's defaults."""
    from ledger.records.batcher import BatcherConfig

    defaults = BatcherConfig()
    return (
        os.environ.get("CARELEDGER_MAX_BATCH_SIZE", f"{defaults.max_batch_size} (default)"),
        os.environ.get("CARELEDGER_MAX_BATCH_AGE", f"{defaults.max_batch_age} (default)"),
    )


def verdict(ok: bool) -> str:
    return "[green]PASS[/]" if ok else "[red]FAIL[/]"


def cpu_cell(cpu: ServerCpu, unit: str) -> str:
    return f"{cpu.us_per_unit:,.0f} us/{unit} ({cpu.cores:.2f} cores)"


def share(part: float, whole: float) -> str:
    return f"{part / max(whole, 1e-9):.0%}"


def report(
    args: argparse.Namespace,
    single: Load,
    drain1: Drain,
    bulk: BulkResult,
    drain2: Drain,
    verify: Verification,
    peers: tuple[Ceiling, Naive],
    cpu: dict[str, ServerCpu],
) -> None:
    ceiling, naive = peers
    bulk_s = max(bulk.finished - bulk.started, 1e-9)
    bulk_per_s = bulk.accepted_records / bulk_s
    single_share = single.per_s / max(ceiling.single.per_s, 1e-9)
    bulk_share = bulk_per_s / max(ceiling.bulk_per_s, 1e-9)
    headline = drain1.anchored_per_s / max(naive.anchored_per_s, 1e-9)
    table = Table(
        title="CareLedger API under load, beside peers measured in this run (acks are durable before the 202)"
    )
    for column in ("measure", "careledger", "p50", "p99", "server CPU", "same-run peer", "ratio", "target", "result"):
        table.add_column(column, justify="left" if column in ("measure", "target", "same-run peer") else "right")
    table.add_row(
        "1. single-record acks/s",
        f"{single.per_s:,.0f}",
        f"{single.p50_ms:.1f} ms",
        f"{single.p99_ms:.1f} ms",
        cpu_cell(cpu["single"], "req"),
        f"ceiling {ceiling.single.per_s:,.0f}/s, {cpu_cell(ceiling.cpu['single'], 'req')}",
        f"{single_share:.0%}",
        f">= {TARGET_SINGLE_SHARE:.0%} of ceiling",
        verdict(single_share >= TARGET_SINGLE_SHARE and single.other == 0),
    )
    table.add_row(
        "2. bulk records/s",
        f"{bulk_per_s:,.0f}",
        f"{percentile(bulk.latencies, 50) * 1e3:,.0f} ms/req",
        f"{percentile(bulk.latencies, 99) * 1e3:,.0f} ms/req",
        cpu_cell(cpu["bulk"], "record"),
        f"ceiling bulk {ceiling.bulk_per_s:,.0f}/s, {cpu_cell(ceiling.cpu['bulk'], 'record')}",
        f"{bulk_share:.0%}",
        f">= {TARGET_BULK_SHARE:.0%} of ceiling",
        verdict(bulk_share >= TARGET_BULK_SHARE and bulk.other == 0),
    )
    table.add_row(
        "3. verify a receipt/s",
        f"{verify.per_s:,.0f}",
        f"{verify.p50_ms:.1f} ms",
        f"{verify.p99_ms:.1f} ms",
        cpu_cell(cpu["verify"], "req"),
        "",
        "",
        f"p99 < {TARGET_VERIFY_P99_MS:.0f} ms",
        verdict(verify.p99_ms < TARGET_VERIFY_P99_MS and verify.matched == verify.count),
    )
    table.add_row(
        "4. records anchored/s, load 1",
        f"{drain1.anchored_per_s:,.0f}",
        "",
        "",
        "",
        f"naive server {naive.anchored_per_s:,.1f}/s",
        f"{headline:,.0f}x",
        f">= {TARGET_RATIO:.0f}x naive",
        verdict(headline >= TARGET_RATIO and drain1.complete),
    )
    table.add_row(
        "   records anchored/s, load 2",
        f"{drain2.anchored_per_s:,.0f}",
        "",
        "",
        "",
        f"naive server {naive.anchored_per_s:,.1f}/s",
        f"{drain2.anchored_per_s / max(naive.anchored_per_s, 1e-9):,.0f}x",
        "(info)",
        "",
    )
    table.add_row(
        "   naive server acks/s",
        f"{naive.load.per_s:,.0f}",
        f"{naive.load.p50_ms:.1f} ms",
        f"{naive.load.p99_ms:.1f} ms",
        "",
        f"ceiling {ceiling.single.per_s:,.0f}/s",
        share(naive.load.per_s, ceiling.single.per_s),
        "(info)",
        "",
    )
    console.print(table)
    console.print(
        f"1: POST /v1/records from {args.connections} connections ({single.generator}) for {single.seconds:.1f} s: "
        f"{single.accepted:,} 202s, {single.other:,} other answers or socket errors; the ceiling "
        f"(bench/ceiling_server.py: FastAPI, pydantic body, API-key check, group commit into SQLite WAL with "
        f"synchronous=FULL, nothing else) took the same load: {ceiling.single.accepted:,} 202s, "
        f"{ceiling.single.other:,} other.\n"
        f"2: {args.bulk_clients} client processes x {args.bulk_requests} POST /v1/records/bulk of "
        f"{args.bulk_size:,} records (bodies built before timing), {bulk_s:.1f} s: {bulk.accepted_records:,} records "
        f"acknowledged, {bulk.other} requests refused; the ceiling's bulk path took the same bodies "
        f"({ceiling.bulk.accepted_records:,} records, {ceiling.bulk.other} refused).\n"
        f"3: POST /v1/verify one after another, {verify.count:,} times over {verify.receipts} receipts from "
        f"different batches (fetched in {verify.fetch_s:.1f} s); {verify.matched:,} answered match=true.\n"
        f"4: the naive server (bench/naive_server.py: the ceiling plus a thread in the same process anchoring each "
        f"acknowledged record in its own transaction on an embedded chain) took load 1 and anchored "
        f"{naive.anchored:,} records over the load and {args.naive_window:g} s after it ({naive.seconds:.1f} s); "
        "CareLedger's anchored/s is over its load and drain, from the table below.\n"
        "Server CPU (user + system, all threads, from /proc) per request or record is the figure least disturbed "
        "by other load on the machine."
    )
    drain_table(drain1, drain2)
    batch_size, batch_age = batching_settings()
    load = os.getloadavg()
    console.print(
        f"Batching: max batch size {batch_size}, max age {batch_age} s. Machine: {os.cpu_count()} cores shared "
        "by the server (one uvicorn worker plus its batcher thread), the load generators and whatever else runs "
        f"there (load average {load[0]:.1f}, {load[1]:.1f}, {load[2]:.1f} at the end): absolute rates vary between "
        "runs and machines; the ratios to the peers of the same run are the figures to compare."
    )


def drain_table(drain1: Drain, drain2: Drain) -> None:
    table = Table(title="5. Does anchoring keep up? (after each load phase)")
    for column in (
        "after",
        "acked",
        "anchored",
        "batches",
        "pending at end of load",
        "oldest then",
        "max lag",
        "drain",
        "anchored/s",
        "all anchored",
    ):
        table.add_column(column, justify="left" if column == "after" else "right")
    for name, drain in (("1. single", drain1), ("2. bulk", drain2)):
        table.add_row(
            name,
            f"{drain.acknowledged:,}",
            f"{drain.anchored:,}",
            f"{drain.batches:,}",
            f"{drain.pending_at_end_of_load:,}",
            f"{drain.oldest_pending_at_end_s:.1f} s",
            f"{drain.max_lag_s:.1f} s",
            f"{drain.drain_s:.1f} s",
            f"{drain.anchored_per_s:,.0f}",
            verdict(drain.complete),
        )
    console.print(table)
    console.print(
        "anchored: records the batcher anchored from the start of the phase until nothing was pending (it can "
        "exceed acked by requests in flight when the load stopped); lag: from a batch's oldest acknowledgement to "
        "its anchoring; drain: from the end of the load until every acknowledged record was anchored; anchored/s: "
        "over the load and the drain."
    )


# --- main -------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=8.0, help="seconds of single-record load")
    parser.add_argument("--connections", type=int, default=64, help="concurrent single-record clients")
    parser.add_argument("--bulk-size", type=int, default=10_000, help="records per bulk body")
    parser.add_argument("--bulk-requests", type=int, default=8, help="bulk bodies per client")
    parser.add_argument("--bulk-clients", type=int, default=4, help="concurrent bulk client processes")
    parser.add_argument("--receipts", type=int, default=200, help="receipts to fetch for verification")
    parser.add_argument("--verifications", type=int, default=2_000, help="POST /v1/verify calls")
    parser.add_argument("--naive-window", type=float, default=5.0, help="seconds the naive server anchors after load")
    parser.add_argument("--drain-timeout", type=float, default=60.0, help="seconds to wait for anchoring")
    parser.add_argument("--no-wrk", action="store_true", help="use the Python load generator even if wrk exists")
    parser.add_argument("--profile", type=Path, help="record the server with py-spy per phase into this folder")
    parser.add_argument("--profile-format", choices=("flamegraph", "speedscope", "raw"), default="flamegraph")
    args = parser.parse_args()

    env = {
        **os.environ,
        "CARELEDGER_KEYSTORE_SCRYPT_N": str(SCRYPT_N),
        "CARELEDGER_PUBLIC_VERIFY_PER_MINUTE": "10000000",
    }
    env.pop("CARELEDGER_RPC_URL", None)  # always the embedded chain in a fresh directory
    use_wrk = shutil.which("wrk") is not None and not args.no_wrk
    with tempfile.TemporaryDirectory(prefix="careledger-load-") as tmp:
        started = time.monotonic()
        ceiling = ceiling_phase(Path(tmp), env, args, use_wrk)
        console.print(
            f"ceiling: {ceiling.single.per_s:,.0f} acks/s, {ceiling.bulk_per_s:,.0f} bulk records/s "
            f"({time.monotonic() - started:.0f} s)"
        )
        with running_server(Path(tmp) / "data", env) as server:
            key = registrar_key(server)
            console.print(
                f"server pid {server.pid} on {server.url} ready after {time.monotonic() - started:.1f} s; "
                f"phase 1 with {'wrk' if use_wrk else 'the Python load generator'}"
            )

            before = anchoring(server)
            load_started = time.monotonic()
            with profiled(server, args.profile, "1-single", args.profile_format):
                mark = cpu_mark(server)
                single = generator(use_wrk)(server, key, args.connections, args.duration)
                cpu = {"single": cpu_since(server, mark, single.accepted + single.other, single.seconds)}
            drain1 = wait_drained(server, before, load_started, single.accepted, args.drain_timeout)
            console.print(f"phase 1: {single.per_s:,.0f} acks/s; anchored in {drain1.drain_s:.1f} s after the load")

            before = anchoring(server)
            with profiled(server, args.profile, "2-bulk", args.profile_format):
                mark = cpu_mark(server)
                bulk = bulk_load(server, key, args.bulk_size, args.bulk_requests, args.bulk_clients, args.receipts)
                cpu["bulk"] = cpu_since(server, mark, bulk.accepted_records, bulk.finished - bulk.started)
            drain2 = wait_drained(server, before, bulk.started, bulk.accepted_records, args.drain_timeout)
            console.print(
                f"phase 2: {bulk.accepted_records / (bulk.finished - bulk.started):,.0f} records/s; "
                f"anchored in {drain2.drain_s:.1f} s after the load"
            )

            fetch_start = time.monotonic()
            receipts = fetch_receipts(server, key, bulk.record_ids[: args.receipts])
            fetch_s = time.monotonic() - fetch_start
            if not receipts:
                raise SystemExit(f"no receipt could be fetched:\n{server.log_tail()}")
            with profiled(server, args.profile, "3-verify", args.profile_format):
                mark = cpu_mark(server)
                done, matched, elapsed, latencies = verify_load(server, receipts, args.verifications, time_cap=30.0)
                cpu["verify"] = cpu_since(server, mark, done, elapsed)
            verification = Verification(
                len(receipts),
                fetch_s,
                done,
                matched,
                done / elapsed,
                percentile(latencies, 50) * 1e3,
                percentile(latencies, 99) * 1e3,
            )
            console.print(
                f"phase 3: {len(receipts)} receipts in {fetch_s:.1f} s; verify p99 {verification.p99_ms:.1f} ms"
            )
        naive = naive_phase(Path(tmp), env, args, use_wrk)  # with the service stopped, as the ceiling ran
        console.print(
            f"naive server: {naive.load.per_s:,.0f} acks/s, {naive.anchored_per_s:,.1f} records anchored/s; "
            f"whole run {time.monotonic() - started:.0f} s"
        )
    report(args, single, drain1, bulk, drain2, verification, (ceiling, naive), cpu)


if __name__ == "__main__":
    main()
