"""Fixtures for API tests: a started app on a fresh deployment on the chain under test, and apps with chosen roles."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from fastapi.testclient import TestClient

from api.main import create_app
from api.service import Service
from ledger.config import Settings
from ledger.store.apps import Organisation, Role
from ledger.store.apps import create_app as create_api_app
from tests.support.chain_under_test import ChainUnderTest

PATIENT = "0x8ba1f109551bD432803012645Ac136ddd64DBA72"
MakeApp = Callable[..., tuple[dict[str, str], Organisation]]


@pytest.fixture
def patient() -> LocalAccount:
    """A patient: a fresh key held by the test (it never needs ether: the API relays)."""
    account: LocalAccount = Account.create()
    return account


@pytest.fixture
def api_settings(tmp_path: Path, chain_under_test: ChainUnderTest, store_overrides: dict[str, str]) -> Settings:
    return chain_under_test.settings(tmp_path / "data", max_batch_age=0.2, **store_overrides)


@pytest.fixture
def client(api_settings: Settings, chain_under_test: ChainUnderTest) -> Iterator[TestClient]:
    with chain_under_test.isolated(), TestClient(create_app(api_settings)) as started:
        yield started


@pytest.fixture
def service(client: TestClient) -> Service:
    running: Service = client.app.state.service  # type: ignore[attr-defined]
    return running


@pytest.fixture
def make_app(service: Service) -> MakeApp:
    """Create an app with ``roles`` for ``organisation``; returns its auth headers and organisation."""

    def make(
        roles: set[Role], organisation: str = "General Hospital", emergency: bool = False
    ) -> tuple[dict[str, str], Organisation]:
        org = service.create_organisation(organisation, emergency=emergency)
        if emergency and not org.emergency:
            org = service.set_emergency(org.id, True)
        _, key = create_api_app(service.db.conn, org.id, f"app-{len(roles)}-{sorted(roles)}", roles)
        return {"Authorization": f"Bearer {key}"}, org

    return make
