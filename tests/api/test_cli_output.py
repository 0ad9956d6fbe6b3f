"""``careledger``'s output: results on stdout (as JSON with ``--output json``), text for people on
stderr, and ``--version`` from the installed package's metadata."""

from __future__ import annotations

import json
from importlib.metadata import version
from pathlib import Path

import pytest
from typer.testing import CliRunner

from api.cli import app

runner = CliRunner()


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {"CARELEDGER_DATA_DIR": str(tmp_path / "data"), "CARELEDGER_KEYSTORE_SCRYPT_N": "16"}


def test_accounts_as_json_and_as_text(env: dict[str, str]) -> None:
    as_json = runner.invoke(app, ["accounts", "--output", "json"], env=env)
    assert as_json.exit_code == 0, as_json.output
    accounts = json.loads(as_json.stdout)["accounts"]
    assert sorted(accounts) == ["admin", "relayer"] and all(a.startswith("0x") for a in accounts.values())
    as_text = runner.invoke(app, ["accounts"], env=env)
    assert as_text.stdout.splitlines() == [f"{name}\t{address}" for name, address in accounts.items()]


def test_create_admin_prints_only_the_key_on_stdout(env: dict[str, str]) -> None:
    made = runner.invoke(app, ["create-admin", "--output", "json"], env=env)
    assert made.exit_code == 0, made.output
    created = json.loads(made.stdout)
    assert created["created"] is True and created["apiKey"] and "shown only now" in made.stderr
    again = runner.invoke(app, ["create-admin", "--if-none"], env=env)
    assert again.exit_code == 0 and again.stdout == "" and "exists already" in again.stderr


def test_version() -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and result.stdout == f"careledger {version('careledger')}\n"
