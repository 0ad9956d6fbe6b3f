"""Fixtures shared by the whole suite: a fresh ledger per test on the chain under test.

That chain is the real embedded chain, or with ``CARELEDGER_TEST_CHAIN=anvil`` one anvil node per
session (see :mod:`tests.support.chain_under_test`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount

from ledger.runtime import Ledger, open_ledger
from tests.support.chain_under_test import FAST_SCRYPT_N as FAST_SCRYPT_N
from tests.support.chain_under_test import ChainUnderTest, selected_chain
from tests.support.chain_under_test import ledger_settings as ledger_settings
from tests.support.processes import free_port, running_anvil

# the session's PostgreSQL server and a database per test; a small disk to fill
pytest_plugins = ("tests.support.postgres", "tests.support.small_disk")

ANVIL_BALANCE_ETHER = 10**9  # every dev account: processes and module fixtures fund many ledgers on one node


def pytest_configure() -> None:
    try:
        selected_chain()
    except ValueError as err:
        raise pytest.UsageError(str(err)) from None


def pytest_report_header() -> str:
    from tests.support.postgres import (
        selected_store,  # imported here: pytest_plugins must load it first (assert rewriting)
    )

    return (
        f"chain under test: {selected_chain()} (CARELEDGER_TEST_CHAIN); "
        f"API store under test: {selected_store()} (CARELEDGER_TEST_STORE)"
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """On anvil, skip the tests about the embedded chain itself."""
    if selected_chain() == "embedded":
        return
    skip = pytest.mark.skip(reason="about the embedded chain itself (CARELEDGER_TEST_CHAIN=anvil)")
    for item in items:
        if item.get_closest_marker("embedded_only") is not None:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def anvil_url() -> Iterator[str]:
    """One anvil node on a free port of 127.0.0.1, started on first use and stopped after the session."""
    port = free_port()
    with running_anvil(port, None, "--balance", str(ANVIL_BALANCE_ETHER)):
        yield f"http://127.0.0.1:{port}"


@pytest.fixture(scope="session")
def chain_under_test(request: pytest.FixtureRequest) -> ChainUnderTest:
    """The chain that ``CARELEDGER_TEST_CHAIN`` names."""
    kind = selected_chain()
    if kind == "anvil":
        return ChainUnderTest(kind, request.getfixturevalue("anvil_url"))
    return ChainUnderTest(kind)


@pytest.fixture
def ledger(tmp_path: Path, chain_under_test: ChainUnderTest) -> Iterator[Ledger]:
    """A freshly deployed ledger in its own data directory (on the embedded chain, its own chain too)."""
    with chain_under_test.isolated(), open_ledger(chain_under_test.settings(tmp_path / "data")) as opened:
        yield opened


@pytest.fixture
def new_account(ledger: Ledger) -> Callable[[], LocalAccount]:
    """Make a new funded account (a patient, a guardian, an organisation)."""

    def make() -> LocalAccount:
        account: LocalAccount = Account.create()
        ledger.chain.fund(account.address, 10**18)
        return account

    return make
