"""Real processes for durability tests: the service (as `careledger serve`) and an anvil node."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from tests.support import paths
from tests.support.chain_under_test import ANVIL_DEV_KEY as ANVIL_DEV_KEY

ROOT = paths.REPO
ANVIL = ROOT / "node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def service_env(data_dir: Path, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "CARELEDGER_DATA_DIR": str(data_dir),
        "CARELEDGER_KEYSTORE_SCRYPT_N": "16",
        "PYTHONPATH": str(ROOT),
        **extra,
    }


def create_admin(env: dict[str, str]) -> str:
    """Run the operator command; return the admin API key it prints."""
    done = subprocess.run(
        [sys.executable, "-m", "api.cli", "create-admin"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().splitlines()[-1]


def wait_until(check: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():  # type: ignore[operator]
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


@contextmanager
def running_service(env: dict[str, str], port: int, log: Path | None = None) -> Iterator[subprocess.Popen[bytes]]:
    """`careledger serve` on 127.0.0.1:port until the block ends (then SIGTERM, if still alive);
    its output goes to ``log`` when given."""
    output = log.open("ab") if log is not None else None
    process = subprocess.Popen(
        [sys.executable, "-m", "api.cli", "serve", "--port", str(port)],
        env=env,
        cwd=ROOT,
        stdout=output or subprocess.DEVNULL,
        stderr=output or subprocess.DEVNULL,
    )
    try:
        wait_until(
            lambda: httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200,
            60,
            "the service to start",
        )
        yield process
    finally:
        if process.poll() is None:
            process.terminate()
            process.wait(timeout=30)
        if output is not None:
            output.close()


@contextmanager
def running_anvil(port: int, state: Path | None, *options: str) -> Iterator[subprocess.Popen[bytes]]:
    """An anvil node on 127.0.0.1:port, keeping its chain in ``state`` across restarts when given."""
    kept = ["--state", str(state)] if state is not None else []
    process = subprocess.Popen(
        [str(ANVIL), "--host", "127.0.0.1", "--port", str(port), *kept, "--silent", *options],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(
            lambda: (
                httpx.post(url, json={"jsonrpc": "2.0", "id": 1, "method": "eth_chainId"}, timeout=1).status_code == 200
            ),
            30,
            "anvil",
        )
        yield process
    finally:
        if process.poll() is None:
            process.terminate()  # anvil writes its state on the way out
            process.wait(timeout=30)


def setup_app(
    base: str, admin_key: str, roles: list[str], organisation: str = "General Hospital", *, emergency: bool = False
) -> str:
    """Create an organisation (with break-glass rights if ``emergency``) and an app through the
    admin API; return the app's key."""
    admin = {"Authorization": f"Bearer {admin_key}"}
    body = {"name": organisation, "emergency": emergency}
    org = httpx.post(f"{base}/v1/admin/organisations", json=body, headers=admin, timeout=60)
    assert org.status_code == 201, org.text
    app = httpx.post(
        f"{base}/v1/admin/apps",
        json={"organisationId": org.json()["id"], "name": "app", "roles": roles},
        headers=admin,
        timeout=60,
    )
    assert app.status_code == 201, app.text
    key: str = app.json()["apiKey"]
    return key
