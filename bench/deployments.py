#!/usr/bin/env python3
"""Registration and anchoring throughput across deployments: embedded chain, anvil, PostgreSQL, two replicas.

Each configuration runs on a fresh temporary data directory with real processes (``create-admin``
once, then ``careledger serve``), driven over HTTP with the load generators of ``bench/api_load.py``:

1. embedded chain + SQLite store, one process (default settings; the baseline of every ratio);
2. anvil + SQLite store, one process;
3. anvil + PostgreSQL store, one process;
4. anvil + PostgreSQL store, two replicas on one data directory and one database (one holds the
   batcher lock and anchors; both acknowledge).

Per configuration, one phase after the other on the same server(s):

a. single-record registrations (``POST /v1/records``) for ``--duration`` s from ``--connections``
   connections with ``wrk`` (split across the replicas, one ``wrk`` each, run at once), counting 202s;
b. bulk registrations (``POST /v1/records/bulk``, 10,000 records a body, bodies built before the
   clock starts) from a few client processes (taking the replicas in turn);
c. anchoring: from the end of the loads until nothing is pending, records anchored per second and
   anchoring transactions (one per batch) per second, with ``CARELEDGER_MAX_BATCH_SIZE=1024`` so the
   backlog takes many transactions.

Prints one table, configurations side by side, each figure with its ratio to configuration 1 of the
same run. Server(s), node, database and load generators share the machine's cores, so a second
replica adds contention here, not capacity. Inherited ``CARELEDGER_*`` variables are ignored. About
three minutes for all four.

    .venv/bin/python bench/deployments.py [--duration 8] [--only 1 4]
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from api_load import (
    SCRYPT_N,
    Drain,
    Load,
    Server,
    anchoring,
    bulk_load,
    call,
    call_json,
    console,
    cpu_seconds,
    create_admin,
    registrar_key,
    serving,
    single_with_python,
    single_with_wrk,
    wait_drained,
)
from rich.table import Table

if TYPE_CHECKING:
    from tests.support.postgres import PostgresServer

MAX_BATCH_SIZE = 1024
LOCK_TIMEOUT = 30.0


@dataclass(frozen=True)
class Configuration:
    """One way to deploy the service."""

    number: int
    label: str
    anvil: bool
    postgres: bool
    replicas: int


CONFIGURATIONS = (
    Configuration(1, "embedded + SQLite", anvil=False, postgres=False, replicas=1),
    Configuration(2, "anvil + SQLite", anvil=True, postgres=False, replicas=1),
    Configuration(3, "anvil + PostgreSQL", anvil=True, postgres=True, replicas=1),
    Configuration(4, "anvil + PostgreSQL, 2 replicas", anvil=True, postgres=True, replicas=2),
)


@dataclass(frozen=True)
class Figures:
    """What one configuration did."""

    configuration: Configuration
    single: Load
    single_split: list[int]
    single_cpu_us: float
    bulk_records: int
    bulk_refused: int
    bulk_s: float
    bulk_cpu_us: float
    drain: Drain
    drain_cpu_s: float
    lock_holder: int | None
    log_problems: int

    @property
    def bulk_per_s(self) -> float:
        return self.bulk_records / max(self.bulk_s, 1e-9)

    @property
    def transactions_per_s(self) -> float:
        return self.drain.batches / max(self.drain.drain_s, 1e-9)


# --- the processes around the servers ------------------------------------------------------------


def service_env() -> dict[str, str]:
    """This environment without inherited CARELEDGER_* settings, plus the bench's own."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CARELEDGER_")}
    env.update(CARELEDGER_KEYSTORE_SCRYPT_N=str(SCRYPT_N), CARELEDGER_MAX_BATCH_SIZE=str(MAX_BATCH_SIZE))
    return env


def unavailable(configuration: Configuration) -> str | None:
    """Why ``configuration`` cannot run on this machine (None when it can)."""
    from tests.support.postgres import postgres_bin
    from tests.support.processes import ANVIL

    if configuration.anvil and not ANVIL.exists():
        return "anvil is not installed (make setup)"
    if configuration.postgres and postgres_bin() is None:
        return "PostgreSQL is not installed (make postgres)"
    return None


@contextmanager
def deployed(configuration: Configuration, tmp: Path, postgres: PostgresServer | None) -> Iterator[list[Server]]:
    """The node (if any), a fresh database (if any), the admin and the replicas, all ready."""
    from tests.support.processes import ANVIL_DEV_KEY, free_port, running_anvil

    env = service_env()
    data_dir = tmp / "data"
    with ExitStack() as stack:
        if configuration.anvil:
            port = free_port()
            stack.enter_context(running_anvil(port, None))
            env.update(
                CARELEDGER_RPC_URL=f"http://127.0.0.1:{port}",
                CARELEDGER_FAUCET_KEY=ANVIL_DEV_KEY,
                CARELEDGER_KEYSTORE_PASSPHRASE="deployments bench",
            )
        if configuration.postgres:
            assert postgres is not None
            env["CARELEDGER_DATABASE_URL"] = postgres.new_database()
            (tmp / "database_url").write_text(env["CARELEDGER_DATABASE_URL"])
        admin_key = create_admin(data_dir, env)
        yield [
            stack.enter_context(serving(data_dir, env, admin_key, tmp / f"server-{i + 1}.log"))
            for i in range(configuration.replicas)
        ]


def store_counts(tmp: Path, servers: Sequence[Server]) -> tuple[int, int]:
    """Records in the store, and those in anchored batches (from the store itself, not the servers'
    counters): every acknowledged record must be there."""
    url = (tmp / "database_url").read_text() if (tmp / "database_url").exists() else None
    query = (
        "SELECT count(*), count(b.id) FROM records r LEFT JOIN batches b "
        "ON b.id = r.batch_id AND b.state = 'anchored' WHERE r.kind = 'record'"
    )
    if url is not None:
        import psycopg

        with psycopg.connect(url) as pg:
            row = pg.execute(query).fetchone()
    else:
        import sqlite3

        with sqlite3.connect(f"file:{tmp / 'data' / 'ledger.sqlite3'}?mode=ro", uri=True) as lite:
            row = lite.execute(query).fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


def lock_holder(servers: Sequence[Server]) -> int | None:
    """The number (1-based) of the one replica holding the batcher lock; None with a single server."""
    if len(servers) == 1:
        return None
    deadline = time.monotonic() + LOCK_TIMEOUT
    while time.monotonic() < deadline:
        holding = [
            i + 1
            for i, s in enumerate(servers)
            if call_json(s, "GET", "/readyz", key=s.admin_key)["batcher"]["holdsLock"]
        ]
        if len(holding) == 1:
            return holding[0]
        time.sleep(0.2)
    raise SystemExit(f"no single replica held the batcher lock within {LOCK_TIMEOUT:.0f} s")


def log_problems(tmp: Path) -> int:
    """Lines in the servers' logs that report an error or a traceback."""
    return sum(
        1
        for log in tmp.glob("server-*.log")
        for line in log.read_text(errors="replace").splitlines()
        if "ERROR" in line or line.startswith("Traceback")
    )


# --- the phases ------------------------------------------------------------------------------------


def servers_cpu(servers: Sequence[Server]) -> float:
    return sum(cpu_seconds(s.pid) for s in servers)


def single_load(
    servers: Sequence[Server],
    key: str,
    connections: int,
    seconds: float,
    generate: Callable[[Server, str, int, float], Load],
) -> tuple[Load, list[int]]:
    """``connections`` split over the replicas, one load generator each, all at once; 202s summed."""
    with ThreadPoolExecutor(len(servers)) as pool:
        loads = list(pool.map(lambda s: generate(s, key, connections // len(servers), seconds), servers))
    merged = Load(
        loads[0].generator,
        sum(x.accepted for x in loads),
        sum(x.other for x in loads),
        max(x.seconds for x in loads),
        max(x.p50_ms for x in loads),
        max(x.p99_ms for x in loads),
    )
    return merged, [x.accepted for x in loads]


def measure(configuration: Configuration, args: argparse.Namespace, postgres: PostgresServer | None) -> Figures:
    generate = single_with_python if args.no_wrk or shutil.which("wrk") is None else single_with_wrk
    with tempfile.TemporaryDirectory(prefix="careledger-deploy-") as tmp_name:
        tmp = Path(tmp_name)
        started = time.monotonic()
        with deployed(configuration, tmp, postgres) as servers:
            key = registrar_key(servers[0])
            holder = lock_holder(servers)
            console.print(
                f"{configuration.number}. {configuration.label}: ready after "
                f"{time.monotonic() - started:.1f} s" + (f", replica {holder} anchors" if holder else "")
            )
            start = anchoring(servers)

            cpu = servers_cpu(servers)
            single, split = single_load(servers, key, args.connections, args.duration, generate)
            single_cpu = servers_cpu(servers) - cpu

            cpu = servers_cpu(servers)
            bulk = bulk_load(servers, key, args.bulk_size, args.bulk_requests, args.bulk_clients, 0)
            bulk_cpu = servers_cpu(servers) - cpu

            cpu = servers_cpu(servers)
            end_of_load = anchoring(servers)
            backlog = single.accepted + bulk.accepted_records - (end_of_load.records_anchored - start.records_anchored)
            acknowledged = single.accepted + bulk.accepted_records

            def settled() -> bool:  # every acknowledged record in an anchored batch, by the store's own count
                stored, anchored_in_store = store_counts(tmp, servers)
                return stored >= acknowledged and anchored_in_store == stored

            drain = wait_drained(
                servers, end_of_load, end_of_load.at, max(backlog, end_of_load.pending), args.drain_timeout, settled
            )
            drain_cpu = servers_cpu(servers) - cpu
            stored, anchored_in_store = store_counts(tmp, servers)
            console.print(
                f"   store: {stored:,} records, {anchored_in_store:,} in anchored batches; "
                f"acknowledged {acknowledged:,}"
            )
            if not drain.complete:  # say what the servers were doing, for whoever reads the run
                for server in servers:
                    conn = server.connection()
                    try:
                        _, ready = call(conn, "GET", "/readyz")
                    finally:
                        conn.close()
                    console.print(f"   drain incomplete; /readyz: {ready.decode()[:600]}")
                for log in sorted(tmp.glob("server-*.log")):
                    console.print(
                        f"   last lines of {log.name}:\n"
                        + "\n".join(log.read_text(errors="replace").splitlines()[-15:])
                    )
            bulk_per_s = bulk.accepted_records / max(bulk.finished - bulk.started, 1e-9)
            console.print(
                f"   {single.per_s:,.0f} acks/s, {bulk_per_s:,.0f} bulk records/s; "
                f"{drain.anchored:,} anchored in {drain.drain_s:.1f} s "
                f"({drain.batches} transactions)"
            )
        return Figures(
            configuration=configuration,
            single=single,
            single_split=split,
            single_cpu_us=single_cpu / max(single.accepted + single.other, 1) * 1e6,
            bulk_records=bulk.accepted_records,
            bulk_refused=bulk.other,
            bulk_s=bulk.finished - bulk.started,
            bulk_cpu_us=bulk_cpu / max(bulk.accepted_records, 1) * 1e6,
            drain=drain,
            drain_cpu_s=drain_cpu,
            lock_holder=holder,
            log_problems=log_problems(tmp),
        )


# --- report ------------------------------------------------------------------------------------------


def cell(value: float, base: float, fmt: str) -> str:
    ratio = f"{value / base:.2f}x" if base > 0 else "-"
    return f"{format(value, fmt)} ({ratio})"


def report(args: argparse.Namespace, results: Sequence[Figures], skipped: Sequence[str]) -> None:
    from ledger.records.batcher import BatcherConfig

    base = results[0]
    table = Table(
        title=f"CareLedger deployments side by side (ratios to {base.configuration.number}. "
        f"{base.configuration.label}, same run)"
    )
    table.add_column("measure")
    for r in results:
        table.add_column(f"{r.configuration.number}. {r.configuration.label}", justify="right")

    def row(name: str, figure: Callable[[Figures], float], fmt: str) -> None:
        table.add_row(name, *(cell(figure(r), figure(base), fmt) for r in results))

    row("a. single-record acks/s", lambda r: r.single.per_s, ",.0f")
    row("   p99 latency, ms", lambda r: r.single.p99_ms, ",.1f")
    row("   server CPU per request, us", lambda r: r.single_cpu_us, ",.0f")
    row("b. bulk records acked/s", lambda r: r.bulk_per_s, ",.0f")
    row("   server CPU per record, us", lambda r: r.bulk_cpu_us, ",.1f")
    row("c. records anchored/s", lambda r: r.drain.anchored_per_s, ",.0f")
    row("   anchoring transactions/s", lambda r: r.transactions_per_s, ",.1f")
    row("   server CPU per transaction, ms", lambda r: r.drain_cpu_s / max(r.drain.batches, 1) * 1e3, ",.0f")
    table.add_row("   records (txs) anchored in c", *(f"{r.drain.anchored:,} ({r.drain.batches})" for r in results))
    table.add_row(
        "   drain time, s", *(f"{r.drain.drain_s:.1f}" + ("" if r.drain.complete else " INCOMPLETE") for r in results)
    )
    table.add_row("refused or failed: single / bulk", *(f"{r.single.other:,} / {r.bulk_refused:,}" for r in results))
    table.add_row(
        "acks per replica (lock holder)",
        *(
            " / ".join(f"{n:,}" for n in r.single_split) + (f" (#{r.lock_holder})" if r.lock_holder else "")
            for r in results
        ),
    )
    table.add_row("error lines in server logs", *(str(r.log_problems) for r in results))
    console.print(table)
    console.print(
        f"a: POST /v1/records for {args.duration:g} s from {args.connections} connections in all "
        f"({base.single.generator}; with replicas, one generator per replica at once); p99 is the worst replica's. "
        f"b: {args.bulk_clients} client processes x {args.bulk_requests} bodies of {args.bulk_size:,} records "
        "(clients take the replicas in turn). c: from the end of the loads until nothing was pending, with "
        f"CARELEDGER_MAX_BATCH_SIZE={MAX_BATCH_SIZE} (max batch age {BatcherConfig().max_batch_age:g} s, the default): "
        "one transaction per batch. "
        "Server CPU (user + system, all replicas, from /proc) per request, record or transaction is the figure least "
        "disturbed by other load.\n"
        f"All of it (server processes, anvil, PostgreSQL and the load generators) shares this machine's "
        f"{os.cpu_count()} cores, with whatever else runs here: a second replica competes for the same cores, so no "
        "speed-up can show here, and figures vary from run to run."
    )
    for note in skipped:
        console.print(f"[yellow]skipped {note}[/]")


# --- main -------------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=8.0, help="seconds of single-record load")
    parser.add_argument(
        "--only",
        type=int,
        nargs="+",
        choices=[c.number for c in CONFIGURATIONS],
        help="run only these configurations (numbers; the first one run is the baseline)",
    )
    parser.add_argument("--connections", type=int, default=64, help="single-record connections in all")
    parser.add_argument("--bulk-size", type=int, default=10_000, help="records per bulk body")
    parser.add_argument("--bulk-requests", type=int, default=4, help="bulk bodies per client")
    parser.add_argument("--bulk-clients", type=int, default=2, help="concurrent bulk client processes")
    parser.add_argument("--drain-timeout", type=float, default=60.0, help="seconds to wait for anchoring")
    parser.add_argument("--no-wrk", action="store_true", help="use the Python load generator even if wrk exists")
    args = parser.parse_args()

    chosen = [c for c in CONFIGURATIONS if args.only is None or c.number in args.only]
    skipped = [f"{c.number}. {c.label}: {why}" for c in chosen if (why := unavailable(c))]
    runnable = [c for c in chosen if unavailable(c) is None]
    if not runnable:
        raise SystemExit("nothing to run: " + "; ".join(skipped))
    started = time.monotonic()
    results = []
    with ExitStack() as stack:
        postgres = None
        if any(c.postgres for c in runnable):
            from tests.support.postgres import postgres_server

            postgres = stack.enter_context(postgres_server())
        for configuration in runnable:
            results.append(measure(configuration, args, postgres))
    console.print(f"whole run {time.monotonic() - started:.0f} s")
    report(args, results, skipped)


if __name__ == "__main__":
    main()
