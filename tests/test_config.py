"""Settings come from arguments, then the environment, then the TOML file named by CARELEDGER_SETTINGS_FILE;
`careledger deploy` puts the contracts on a JSON-RPC node and records where."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from eth_account import Account
from web3 import HTTPProvider, Web3

from ledger.config import SETTINGS_FILE_VARIABLE, Settings
from ledger.exceptions import InputError
from tests.api.processes import ANVIL_DEV_KEY, ROOT, free_port, running_anvil, service_env


def test_file_then_environment_then_arguments(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings_file = tmp_path / "settings.toml"
    settings_file.write_text('rpc_url = "http://node.example:8545"\nmax_batch_size = 512\nmax_batch_age = 5.0\n')
    monkeypatch.setenv(SETTINGS_FILE_VARIABLE, str(settings_file))
    monkeypatch.setenv("CARELEDGER_MAX_BATCH_AGE", "1.5")
    settings = Settings(max_batch_size=64)
    assert settings.rpc_url == "http://node.example:8545"  # from the file
    assert settings.max_batch_age == 1.5  # the environment wins over the file
    assert settings.max_batch_size == 64  # an argument wins over both


def test_a_missing_settings_file_is_an_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SETTINGS_FILE_VARIABLE, str(tmp_path / "nope.toml"))
    with pytest.raises(InputError):
        Settings()


def test_deploy_command_on_a_node_records_the_addresses(tmp_path: Path) -> None:
    port = free_port()
    settings_file = tmp_path / "settings.toml"
    settings_file.write_text(f'rpc_url = "http://127.0.0.1:{port}"\nfaucet_key = "{ANVIL_DEV_KEY}"\n')
    env = service_env(
        tmp_path / "data", CARELEDGER_SETTINGS_FILE=str(settings_file), CARELEDGER_KEYSTORE_PASSPHRASE="deploy test"
    )
    with running_anvil(port, tmp_path / "anvil.json"):
        first = subprocess.run(
            [sys.executable, "-m", "api.cli", "deploy"], env=env, cwd=ROOT, capture_output=True, text=True, timeout=120
        )
        assert first.returncode == 0, first.stderr
        recorded = json.loads((tmp_path / "data" / "deployment.json").read_text())
        w3 = Web3(HTTPProvider(f"http://127.0.0.1:{port}"))
        assert recorded["chain_id"] == w3.eth.chain_id == 31337
        for address in (recorded["record_anchor"], recorded["consent_registry"]):
            assert w3.eth.get_code(address) and address in first.stdout
        again = subprocess.run(
            [sys.executable, "-m", "api.cli", "deploy"], env=env, cwd=ROOT, capture_output=True, text=True, timeout=120
        )
        assert again.returncode == 0 and json.loads((tmp_path / "data" / "deployment.json").read_text()) == recorded


def test_operator_funds_the_printed_accounts_then_deploys_on_a_network_without_faucet(tmp_path: Path) -> None:
    """On a network that charges for gas, the operator learns the ledger's addresses first
    (`careledger accounts`), funds them, and only then can `careledger deploy` succeed."""
    port = free_port()
    env = service_env(
        tmp_path / "data", CARELEDGER_RPC_URL=f"http://127.0.0.1:{port}", CARELEDGER_KEYSTORE_PASSPHRASE="operator test"
    )

    def careledger(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "api.cli", *args], env=env, cwd=ROOT, capture_output=True, text=True, timeout=120
        )

    listed = careledger("accounts")
    assert listed.returncode == 0, listed.stderr
    addresses = dict(line.split("\t") for line in listed.stdout.strip().splitlines())
    assert set(addresses) == {"admin", "relayer"}
    assert careledger("accounts").stdout == listed.stdout  # the same keys every time
    with running_anvil(port, None):
        w3 = Web3(HTTPProvider(f"http://127.0.0.1:{port}"))
        unfunded = careledger("deploy")
        assert unfunded.returncode == 1 and "insufficient funds" in unfunded.stdout.lower(), unfunded.stdout
        faucet = Account.from_key(ANVIL_DEV_KEY)
        for nonce, address in enumerate(addresses.values(), start=w3.eth.get_transaction_count(faucet.address)):
            signed = faucet.sign_transaction(
                {
                    "to": address,
                    "value": 10**18,
                    "gas": 21_000,
                    "nonce": nonce,
                    "gasPrice": 2 * w3.eth.gas_price,
                    "chainId": w3.eth.chain_id,
                }
            )
            w3.eth.wait_for_transaction_receipt(w3.eth.send_raw_transaction(signed.raw_transaction))
        deployed = careledger("deploy")
        assert deployed.returncode == 0, deployed.stdout + deployed.stderr
        recorded = json.loads((tmp_path / "data" / "deployment.json").read_text())
        assert recorded["admin"] == addresses["admin"]


def test_export_index_writes_a_copy_an_auditor_can_read(tmp_path: Path) -> None:
    env = service_env(tmp_path / "data")
    created = subprocess.run(
        [sys.executable, "-m", "api.cli", "create-admin"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert created.returncode == 0, created.stderr
    target = tmp_path / "index.sqlite3"
    exported = subprocess.run(
        [sys.executable, "-m", "api.cli", "export-index", str(target)],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert exported.returncode == 0, exported.stdout + exported.stderr
    with sqlite3.connect(target) as copy:
        assert copy.execute("SELECT name FROM organisations").fetchall() == [("CareLedger operator",)]
        key_hashes = copy.execute("SELECT key_hash FROM apps").fetchall()
    live = sqlite3.connect(tmp_path / "data" / "ledger.sqlite3")
    try:
        assert key_hashes and key_hashes != live.execute("SELECT key_hash FROM apps").fetchall()  # not copied
    finally:
        live.close()
    again = subprocess.run(
        [sys.executable, "-m", "api.cli", "export-index", str(target)],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert again.returncode == 1 and "exists already" in again.stdout
