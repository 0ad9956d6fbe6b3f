#!/usr/bin/env python3
"""Smoke-test the built wheel as an operator would install it, not as an editable checkout.

Builds the wheel from a copy of the working tree (the files git tracks or would track, so no stale
``build/`` folder, ``node_modules`` or editable install can leak in), installs it with its
dependencies into a fresh virtualenv in a temporary folder outside the checkout, and then, with that
folder as the working directory, runs the installed ``careledger`` against a throwaway PostgreSQL
server and an anvil node: ``create-admin``, then ``serve`` until ``/readyz`` answers 200, an
organisation and an app through the admin API, one record registered and its receipt waited for
and verified, and the patient page with its vendored ethers (whose SHA-256 must be the pin).

Runs under the checkout's virtualenv (``make wheel-smoke``, part of ``make test``) and borrows the
test suite's helpers for the database server and anvil. Everything started is stopped and the
temporary folder deleted, also on failure; any failure exits 1 with a message saying which step
broke, success prints one summary line.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # the test suite's helpers; the checkout is never the service's code

from api.routes.patient_page import ETHERS_SHA256, ETHERS_URL, ETHERS_VERSION  # noqa: E402
from api.schemas.records import RecordIn  # noqa: E402
from tests.support.postgres import postgres_bin, postgres_server  # noqa: E402
from tests.support.processes import ANVIL, ANVIL_DEV_KEY, free_port, running_anvil, setup_app  # noqa: E402

STEP_TIMEOUT = 600  # seconds for a build or an install (a cold pip cache downloads everything)
READY_TIMEOUT = 120
SERVE_LOG = "serve.log"
PIP_QUIETLY = ("--quiet", "--disable-pip-version-check")
RECORD: dict[str, Any] = RecordIn.model_json_schema()["examples"][0]  # the documented FHIR example
_UNSET_FOR_THE_SERVICE = ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "VIRTUAL_ENV", "PYTHONSAFEPATH")


class SmokeFailure(Exception):
    """A step of the smoke test failed; the message says which and why."""


def run(command: Sequence[str | Path], what: str, *, cwd: Path, env: dict[str, str] | None = None) -> str:
    """Run ``command`` to completion; its standard output, or :class:`SmokeFailure` with its output."""
    try:
        done = subprocess.run(
            [str(part) for part in command],
            cwd=cwd,
            env=env,
            capture_output=True,
            text=True,
            timeout=STEP_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired as err:
        raise SmokeFailure(f"{what}: no answer within {STEP_TIMEOUT} s") from err
    if done.returncode != 0:
        raise SmokeFailure(f"{what} exited {done.returncode}:\n{_tail(done.stdout + done.stderr)}")
    return done.stdout


def _tail(text: str, lines: int = 40) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


def copy_working_tree(target: Path) -> None:
    """The files git tracks or would track (not ignored), as they are on disk now."""
    listed = run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], "git ls-files", cwd=ROOT)
    for name in filter(None, listed.split("\0")):
        source = ROOT / name
        if source.is_file():  # a tracked file deleted in the working tree is not part of it
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)


def build_wheel(work: Path) -> Path:
    """The wheel built from a copy of the working tree."""
    source, dist = work / "source", work / "dist"
    copy_working_tree(source)
    pip_wheel: list[str | Path] = [sys.executable, "-m", "pip", "wheel", *PIP_QUIETLY, "--no-deps", "-w", dist]
    run([*pip_wheel, source], "building the wheel", cwd=work)
    wheels = sorted(dist.glob("careledger-*.whl"))
    if len(wheels) != 1:
        raise SmokeFailure(f"expected one careledger wheel in {dist}, found {[w.name for w in wheels]}")
    return wheels[0]


def install(wheel: Path, venv: Path, cwd: Path) -> None:
    """A fresh virtualenv at ``venv`` with the wheel and its dependencies (from the package index)."""
    run([sys.executable, "-m", "venv", venv], "creating the virtualenv", cwd=cwd)
    pip_install: list[str | Path] = [venv / "bin" / "python", "-m", "pip", "install", *PIP_QUIETLY, "--no-compile"]
    run([*pip_install, wheel], "installing the wheel", cwd=cwd)


def service_env(venv: Path, data_dir: Path, **settings: str) -> dict[str, str]:
    """This process's environment without anything that points Python at the checkout or presets
    a CareLedger setting, plus ``settings`` as ``CARELEDGER_*`` variables."""
    env = {
        name: value
        for name, value in os.environ.items()
        if name not in _UNSET_FOR_THE_SERVICE and not name.startswith("CARELEDGER_")
    }
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    env["CARELEDGER_DATA_DIR"] = str(data_dir)
    env.update({f"CARELEDGER_{name.upper()}": value for name, value in settings.items()})
    return env


def check_installed_code(venv: Path, env: dict[str, str], cwd: Path) -> None:
    """The installed interpreter imports ``api`` and ``ledger`` from the virtualenv, not the checkout."""
    probe = "import api, ledger; print(api.__file__); print(ledger.__file__)"
    for location in run([venv / "bin" / "python", "-c", probe], "importing the package", cwd=cwd, env=env).splitlines():
        if not Path(location).resolve().is_relative_to(venv.resolve()):
            raise SmokeFailure(f"the installed interpreter imported {location}, outside the virtualenv {venv}")


@contextmanager
def serving(careledger: Path, env: dict[str, str], port: int, cwd: Path, log: Path) -> Iterator[str]:
    """``careledger serve`` on 127.0.0.1:``port`` until ``/readyz`` is 200; its base URL. Stopped at the end."""
    base = f"http://127.0.0.1:{port}"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [str(careledger), "serve", "--port", str(port)], cwd=cwd, env=env, stdout=output, stderr=output
        )
        try:
            deadline = time.monotonic() + READY_TIMEOUT
            while not _ready(base):
                if process.poll() is not None:
                    raise SmokeFailure(f"careledger serve exited {process.returncode}")
                if time.monotonic() > deadline:
                    raise SmokeFailure(f"/readyz did not answer 200 within {READY_TIMEOUT} s")
                time.sleep(0.2)
            yield base
        finally:
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()


def _ready(base: str) -> bool:
    try:
        return httpx.get(f"{base}/readyz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def expect(response: httpx.Response, status: int, what: str) -> Any:
    """The JSON body of ``response`` if its status is ``status``; else :class:`SmokeFailure`."""
    if response.status_code != status:
        raise SmokeFailure(f"{what}: HTTP {response.status_code}, expected {status}: {response.text[:2000]}")
    return response.json() if "json" in response.headers.get("content-type", "") else None


def exercise(base: str, admin_key: str) -> str:
    """One record through the installed service, then the patient page; a summary of what was seen."""
    headers = {"Authorization": f"Bearer {setup_app(base, admin_key, ['registrar', 'reader'])}"}
    with httpx.Client(base_url=base, headers=headers, timeout=60) as http:
        ack = expect(http.post("/v1/records", json=RECORD), 202, "registering a record")
        record_id = ack["recordId"]
        params = {"wait": "true", "timeout": "30"}
        receipt = expect(http.get(f"/v1/records/{record_id}/receipt", params=params), 200, "waiting for the receipt")
        verdict = expect(http.post("/v1/verify", json={"receipt": receipt}), 200, "verifying the receipt")
        if verdict.get("match") is not True:
            raise SmokeFailure(f"the service does not verify its own receipt: {verdict}")
        page = http.get("/patient/")
        expect(page, 200, "the patient page")
        if "<html" not in page.text or 'src="app.js"' not in page.text:
            raise SmokeFailure(f"/patient/ is not the patient page: {page.text[:300]!r}")
        script = http.get(ETHERS_URL)
        expect(script, 200, f"the page's ethers ({ETHERS_URL})")
        served = hashlib.sha256(script.content).hexdigest()
        if served != ETHERS_SHA256:
            raise SmokeFailure(f"{ETHERS_URL} served SHA-256 {served}, not the pin {ETHERS_SHA256}")
    return f"record {record_id} anchored and verified; /patient/ and ethers {ETHERS_VERSION} (pinned SHA-256) served"


def smoke(work: Path, stack: ExitStack) -> str:
    """All the steps, in ``work``; the summary of the run."""
    if postgres_bin() is None:
        raise SmokeFailure("PostgreSQL's server programs are not installed: run `make postgres`")
    if not ANVIL.is_file():
        raise SmokeFailure(f"anvil is not installed at {ANVIL}: run `make setup` (npm ci)")
    run_dir, venv = work / "run", work / "venv"
    run_dir.mkdir()
    wheel = build_wheel(work)
    install(wheel, venv, run_dir)

    database = stack.enter_context(postgres_server())
    anvil_port = free_port()
    stack.enter_context(running_anvil(anvil_port, None))
    env = service_env(
        venv,
        run_dir / "data",
        rpc_url=f"http://127.0.0.1:{anvil_port}",
        database_url=database.new_database(),
        keystore_passphrase="wheel smoke passphrase",
        faucet_key=ANVIL_DEV_KEY,
        keystore_scrypt_n="16",  # cheap keystore encryption: a throwaway ledger
        max_batch_age="0.3",
    )
    check_installed_code(venv, env, run_dir)
    careledger = venv / "bin" / "careledger"
    admin_key = run([careledger, "create-admin"], "careledger create-admin", cwd=run_dir, env=env).splitlines()[-1]
    base = stack.enter_context(serving(careledger, env, free_port(), run_dir, work / SERVE_LOG))
    return exercise(base, admin_key)


def main() -> int:
    started = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="careledger-wheel-smoke-"))
    try:
        with ExitStack() as stack:
            summary = smoke(work, stack)
    except (SmokeFailure, AssertionError, OSError, httpx.HTTPError, subprocess.SubprocessError) as err:
        print(f"wheel smoke test FAILED: {err}", file=sys.stderr)
        if (work / SERVE_LOG).is_file():
            log = (work / SERVE_LOG).read_text("utf-8", errors="replace")
            print(f"the last lines of careledger serve's output:\n{_tail(log)}", file=sys.stderr)
        return 1
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"wheel smoke test passed in {time.monotonic() - started:.0f} s: {summary}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
