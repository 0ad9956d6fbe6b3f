"""What an outsider never gets: the RPC URL (and the token in its path) in any response body or log
record, details of readiness without an admin's key, or a data directory other users can read.

Against a real ``careledger serve`` whose node is reached through a small forwarding proxy at a URL
with a token in its path (anvil itself answers only at ``/``); the proxy is then stopped, so the
chain is unreachable and every error path that quotes the URL runs.
"""

from __future__ import annotations

import http.client
import os
import stat
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

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

TOKEN = "tok-5ecret-1n-the-path-9f3a"


@contextmanager
def forwarding_proxy(target_port: int) -> Iterator[tuple[int, ThreadingHTTPServer]]:
    """An HTTP proxy on a free port forwarding every POST, whatever its path, to ``/`` of the target."""

    class Forward(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", 0)))
            upstream = http.client.HTTPConnection("127.0.0.1", target_port, timeout=30)
            upstream.request("POST", "/", body=body, headers={"content-type": "application/json"})
            answer = upstream.getresponse()
            data = answer.read()
            self.send_response(answer.status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", free_port()), Forward)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1], server
    finally:
        server.shutdown()
        server.server_close()


def modes(data_dir: Path) -> dict[str, str]:
    found = {".": oct(stat.S_IMODE(data_dir.stat().st_mode))}
    for path in data_dir.rglob("*"):
        if not path.is_symlink():
            found[str(path.relative_to(data_dir))] = oct(stat.S_IMODE(path.stat().st_mode))
    return found


def test_the_rpc_url_and_the_data_directory_stay_private(tmp_path: Path) -> None:
    anvil_port, port = free_port(), free_port()
    base = f"http://127.0.0.1:{port}"
    data_dir = tmp_path / "data"
    bodies: list[str] = []
    previous_umask = os.umask(0o022)  # the usual umask: files 0644, directories 0755
    try:
        with running_anvil(anvil_port, None), forwarding_proxy(anvil_port) as (proxy_port, proxy):
            env = service_env(
                data_dir,
                CARELEDGER_RPC_URL=f"http://127.0.0.1:{proxy_port}/v3/{TOKEN}",
                CARELEDGER_FAUCET_KEY=ANVIL_DEV_KEY,
                CARELEDGER_KEYSTORE_PASSPHRASE="secrets test",
                CARELEDGER_MAX_BATCH_AGE="0.2",
                CARELEDGER_RECEIPT_TIMEOUT="5",
            )
            admin_key = create_admin(env)
            data_dir.chmod(0o755)  # as an earlier version, or a hand, left them
            (data_dir / "ledger.sqlite3").chmod(0o644)
            left_open = data_dir / "notes.txt"
            left_open.write_text("left readable")
            left_open.chmod(0o644)
            log = tmp_path / "serve.log"
            with running_service(env, port, log=log):
                admin = {"Authorization": f"Bearer {admin_key}"}
                headers = {"Authorization": f"Bearer {setup_app(base, admin_key, ['registrar', 'reader'])}"}
                ack = httpx.post(
                    f"{base}/v1/records", json={"patient": PATIENT, "digest": "0x" + "5e" * 32}, headers=headers
                )
                assert ack.status_code == 202, ack.text
                receipt = httpx.get(
                    f"{base}/v1/records/{ack.json()['recordId']}/receipt",
                    params={"wait": "true", "timeout": 20},
                    headers=headers,
                    timeout=30,
                )
                assert receipt.status_code == 200, receipt.text
                after_start = modes(data_dir)

                proxy.shutdown()  # the node is out of reach from now on
                proxy.server_close()
                wait_until(lambda: httpx.get(f"{base}/readyz").status_code == 503, 60, "readyz to report it")
                unavailable = httpx.post(f"{base}/v1/verify", json={"receipt": receipt.json()}, timeout=60)
                assert (unavailable.status_code, unavailable.json()) == (
                    503,
                    {"code": "chain_unavailable", "message": "the chain is unavailable; retry later", "details": {}},
                )
                public = httpx.get(f"{base}/readyz")
                assert public.json() == {"status": "not_ready"}
                detailed = httpx.get(f"{base}/readyz", headers=admin, timeout=30)
                assert detailed.json()["chain"]["reachable"] is False
                wait_until(
                    lambda: httpx.get(f"{base}/readyz", headers=admin, timeout=30).json()["indexer"]["lastError"],
                    60,
                    "the indexer to fail reading the chain",
                )
                detailed = httpx.get(f"{base}/readyz", headers=admin, timeout=30)
                assert detailed.json()["indexer"]["lastError"] == "ChainUnavailableError"
                for response in (ack, receipt, unavailable, public, detailed):
                    bodies.append(response.text)
                for path in ("/metrics", "/openapi.json"):
                    bodies.append(httpx.get(f"{base}{path}").text)
    finally:
        os.umask(previous_umask)

    logged = log.read_text()
    assert "ChainUnavailableError" in logged or "chain_unavailable" in logged  # failures were logged, redacted
    for text in (*bodies, logged):
        assert TOKEN not in text and f"{proxy_port}/v3" not in text
    assert "***" in logged
    for path in (data_dir, data_dir / "ledger.sqlite3", data_dir / "notes.txt"):
        assert f"WARNING careledger.files {path} was readable by other users" in logged  # tightened, with a warning
    wide = {path: mode for path, mode in after_start.items() if int(mode, 8) & 0o077}
    assert not wide, wide
    assert after_start["."] == "0o700" and after_start["notes.txt"] == "0o600"
    assert {"ledger.sqlite3", "ledger.sqlite3-wal", "ledger.sqlite3-shm", "deployment.json"} <= set(after_start)
    assert any(path.startswith("keys/") for path in after_start), after_start
