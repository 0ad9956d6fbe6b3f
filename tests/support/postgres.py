"""A throwaway PostgreSQL server for the tests (Debian's ``postgresql``, installed by ``make postgres``).

One server per test session, in a temporary directory, listening on 127.0.0.1 only with trust
authentication (nothing else can reach it); each test gets a database of its own. PostgreSQL
refuses to run as root, so as root the server runs as the ``postgres`` system user.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest

from tests.support.processes import free_port
from tests.support.requirements import unavailable

USER = "careledger"
TEST_STORE_VARIABLE = "CARELEDGER_TEST_STORE"


def selected_store() -> str:
    """The store the API fixtures use: ``sqlite`` (default) or ``postgres`` (``CARELEDGER_TEST_STORE``)."""
    store = os.environ.get(TEST_STORE_VARIABLE, "") or "sqlite"
    if store not in ("sqlite", "postgres"):
        raise ValueError(f"{TEST_STORE_VARIABLE} must be sqlite or postgres, not {store!r}")
    return store


def postgres_bin() -> Path | None:
    """The folder of Debian's PostgreSQL server programs (newest version), if installed."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(found[-1]).parent if found else None


@dataclass
class PostgresServer:
    """A running server; :meth:`new_database` makes an empty database and returns its URL."""

    bin_dir: Path
    data_dir: Path
    port: int

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{USER}@127.0.0.1:{self.port}/{database}"

    def new_database(self) -> str:
        name = "t_" + uuid.uuid4().hex[:16]
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def _ctl(self, *args: str) -> None:
        subprocess.run(
            _as_server_user([str(self.bin_dir / "pg_ctl"), "-D", str(self.data_dir), *args]),
            check=True,
            capture_output=True,
            timeout=60,
        )

    def stop(self, mode: str = "fast") -> None:
        self._ctl("-m", mode, "stop")

    def start(self) -> None:
        self._ctl(
            "-o",
            f"-p {self.port} -h 127.0.0.1 -k {self.data_dir.parent}",
            "-l",
            str(self.data_dir.parent / "server.log"),
            "-w",
            "start",
        )


def _as_server_user(command: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command


@contextmanager
def postgres_server() -> Iterator[PostgresServer]:
    """Start a fresh server; stop it and delete its files at the end."""
    bin_dir = postgres_bin()
    if bin_dir is None:
        unavailable("PostgreSQL is not installed (`make postgres` installs Debian's postgresql)")
    root = Path(tempfile.mkdtemp(prefix="careledger-pg-"))
    if os.geteuid() == 0:
        shutil.chown(root, "postgres")
    server = PostgresServer(bin_dir, root / "data", free_port())
    try:
        subprocess.run(
            _as_server_user(
                [
                    str(bin_dir / "initdb"),
                    "-D",
                    str(server.data_dir),
                    "-A",
                    "trust",
                    "-U",
                    USER,
                    "--no-sync",
                    "-E",
                    "UTF8",
                ]
            ),
            check=True,
            capture_output=True,
            timeout=120,
        )
        server.start()
        yield server
    finally:
        if (server.data_dir / "postmaster.pid").exists():
            server.stop("immediate")
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """The session's PostgreSQL server."""
    with postgres_server() as server:
        yield server


@pytest.fixture
def database_url(postgres: PostgresServer) -> str:
    """A fresh, empty database on the session's server."""
    return postgres.new_database()


def store_settings(request: pytest.FixtureRequest) -> dict[str, str]:
    """Settings that put a test service's store on the store under test: a fresh PostgreSQL
    database, or nothing (SQLite in the data directory). Usable from fixtures of any scope."""
    if selected_store() == "sqlite":
        return {}
    server: PostgresServer = request.getfixturevalue("postgres")
    return {"database_url": server.new_database()}


def store_env(request: pytest.FixtureRequest) -> dict[str, str]:
    """:func:`store_settings` as ``CARELEDGER_*`` variables for a served process."""
    return {f"CARELEDGER_{name.upper()}": value for name, value in store_settings(request).items()}


@pytest.fixture
def store_overrides(request: pytest.FixtureRequest) -> dict[str, str]:
    """:func:`store_settings` for one test."""
    return store_settings(request)
