"""Fixtures for browser tests: the real service (`careledger serve`) and headless Debian Chromium.

Chromium comes from Debian (``make browser`` installs it); Playwright (the dev extra) only drives it,
so nothing is downloaded. Without Chromium the tests are skipped, except under CI, where that is a
failure. The flags keep Chromium from calling out, which stalls it on a closed network.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import Browser, sync_playwright

from tests.support.chain_under_test import ChainUnderTest
from tests.support.postgres import store_env
from tests.support.processes import ROOT, create_admin, free_port, running_service, service_env
from tests.support.requirements import unavailable

CHROMIUM = Path(os.environ.get("CARELEDGER_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = ROOT / "test-artifacts"


@dataclass(frozen=True)
class RunningService:
    base: str
    admin_key: str
    data_dir: Path


@contextmanager
def serving(
    data_dir: Path, chain_under_test: ChainUnderTest, request: pytest.FixtureRequest, **settings: str
) -> Iterator[RunningService]:
    """`careledger serve` on a free loopback port over a fresh data directory (and deployment), with an
    admin key; ``settings`` are more ``CARELEDGER_*`` variables."""
    env = service_env(
        data_dir, CARELEDGER_MAX_BATCH_AGE="0.5", **chain_under_test.env(), **store_env(request), **settings
    )
    port = free_port()
    with chain_under_test.isolated():
        admin_key = create_admin(env)
        with running_service(env, port):
            yield RunningService(f"http://127.0.0.1:{port}", admin_key, data_dir)


@pytest.fixture(scope="module")
def served(
    tmp_path_factory: pytest.TempPathFactory, chain_under_test: ChainUnderTest, request: pytest.FixtureRequest
) -> Iterator[RunningService]:
    """The service for the page (see :func:`serving`)."""
    with serving(tmp_path_factory.mktemp("patient-page") / "data", chain_under_test, request) as running:
        yield running


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        unavailable(f"no Chromium at {CHROMIUM} (`make browser` installs Debian's chromium)")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS
