"""Fixtures shared by the whole suite: a fresh ledger on the real embedded chain per test."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount

from ledger.config import Settings
from ledger.runtime import Ledger, open_ledger

FAST_SCRYPT_N = 2**4  # keystore encryption cost for tests only


def ledger_settings(data_dir: Path, **overrides: object) -> Settings:
    """Settings for a test ledger in ``data_dir`` (cheap keystore encryption)."""
    return Settings(data_dir=data_dir, keystore_scrypt_n=FAST_SCRYPT_N, **overrides)


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[Ledger]:
    """A freshly deployed ledger on its own persisted embedded chain."""
    with open_ledger(ledger_settings(tmp_path / "data")) as opened:
        yield opened


@pytest.fixture
def new_account(ledger: Ledger) -> Callable[[], LocalAccount]:
    """Make a new funded account (a patient, a guardian, an organisation)."""

    def make() -> LocalAccount:
        account: LocalAccount = Account.create()
        ledger.chain.fund(account.address, 10**18)
        return account

    return make
