"""Settings come from arguments, then the environment, then secret files, then the TOML file named by
CARELEDGER_SETTINGS_FILE, then defaults stated once by the code that uses them; they refuse bad values
and combinations at load, naming the setting; `careledger deploy` puts the contracts on a JSON-RPC
node and records where."""

from __future__ import annotations

import inspect
import json
import math
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any, get_args

import pytest
from eth_account import Account
from pydantic import ValidationError
from web3 import HTTPProvider, Web3

from ledger.chain.client import (
    DEFAULT_CONFIRMATIONS,
    DEFAULT_FEE_MODEL,
    DEFAULT_PRIORITY_FEE_WEI,
    DEFAULT_RECEIPT_TIMEOUT,
    Chain,
    FeeModel,
)
from ledger.chain.indexer import ChainIndexer
from ledger.chain.keys import DEFAULT_SCRYPT_N, Keyring
from ledger.config import (
    MAX_BATCH_AGE_LIMIT,
    MAX_BATCH_SIZE_LIMIT,
    MAX_BODY_BYTES_LIMIT,
    MAX_CONFIRMATIONS,
    MAX_CPU_WORKERS,
    MAX_IDEMPOTENCY_KEY_TTL,
    MAX_JSON_ELEMENTS_LIMIT,
    MAX_RECEIPT_TIMEOUT,
    MAX_RECORDS_PER_REQUEST_LIMIT,
    MAX_SCRYPT_N,
    MIN_BODY_BYTES,
    MIN_IDEMPOTENCY_KEY_TTL,
    MIN_JSON_ELEMENTS,
    MIN_SCRYPT_N,
    SECRETS_DIR_VARIABLE,
    SETTINGS_FILE_VARIABLE,
    Settings,
)
from ledger.exceptions import InputError
from ledger.records.anchoring import RecordAnchorClient
from ledger.records.batcher import BatcherConfig
from ledger.records.fhir import DEFAULT_FHIR_VERSION, validate_fhir
from tests.support.processes import ANVIL_DEV_KEY, ROOT, free_port, running_anvil, service_env

RPC = "http://node.example:8545"


@pytest.fixture(autouse=True)
def no_inherited_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """Settings in these tests come only from what each test sets."""
    for name in [*(f"CARELEDGER_{field.upper()}" for field in Settings.model_fields), SECRETS_DIR_VARIABLE]:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv(SETTINGS_FILE_VARIABLE, raising=False)


def default_of(function: Any, parameter: str) -> Any:
    return inspect.signature(function).parameters[parameter].default


def test_defaults_are_those_of_the_code_that_uses_them() -> None:
    settings, batcher = Settings(), BatcherConfig()
    assert (settings.max_batch_size, settings.max_batch_age) == (batcher.max_batch_size, batcher.max_batch_age)
    assert (settings.max_batch_size, settings.max_batch_age) == (4096, 2.0)
    assert settings.priority_fee_wei == DEFAULT_PRIORITY_FEE_WEI == default_of(Chain, "priority_fee_wei") == 10**9
    assert settings.fee_model == DEFAULT_FEE_MODEL == default_of(Chain, "fee_model") == "auto"
    assert settings.receipt_timeout == DEFAULT_RECEIPT_TIMEOUT == default_of(Chain, "receipt_timeout") == 120.0
    assert (
        get_args(Settings.model_fields["fee_model"].annotation) == get_args(FeeModel) == ("auto", "eip1559", "legacy")
    )
    assert settings.keystore_scrypt_n == DEFAULT_SCRYPT_N == default_of(Keyring, "scrypt_n") == 2**18
    confirmations = {default_of(RecordAnchorClient, "confirmations"), default_of(ChainIndexer, "confirmations")}
    assert {settings.confirmations, batcher.confirmations, *confirmations} == {DEFAULT_CONFIRMATIONS} == {0}
    assert settings.default_fhir_version == DEFAULT_FHIR_VERSION == default_of(validate_fhir, "version") == "4.0"


ACCEPTED: list[dict[str, Any]] = [
    {},
    {"rpc_url": RPC, "keystore_passphrase": "operator"},
    {"rpc_url": RPC, "keystore_passphrase": "operator", "database_url": "postgresql://u:p@db/careledger"},
    {"keystore_passphrase": "set on the embedded chain too"},
    {"rpc_url": "", "database_url": None},  # an empty RPC URL means the embedded chain, as before
    {"max_batch_size": 1, "max_batch_age": 0.01, "receipt_timeout": 0.5, "port": 1, "confirmations": 0},
    {"max_batch_size": MAX_BATCH_SIZE_LIMIT, "max_batch_age": MAX_BATCH_AGE_LIMIT, "port": 65_535},
    {"receipt_timeout": MAX_RECEIPT_TIMEOUT, "confirmations": MAX_CONFIRMATIONS, "priority_fee_wei": 0},
    {"max_body_bytes": MIN_BODY_BYTES, "max_records_per_request": 1},
    {"max_body_bytes": MAX_BODY_BYTES_LIMIT, "max_records_per_request": MAX_RECORDS_PER_REQUEST_LIMIT},
    {"keystore_scrypt_n": MIN_SCRYPT_N, "chain_sync": "NORMAL"},
    {"keystore_scrypt_n": MAX_SCRYPT_N, "fee_model": "legacy"},
    {"fee_model": "eip1559", "host": "0.0.0.0"},
    {"max_bulk_body_bytes": MIN_BODY_BYTES, "max_json_elements": MIN_JSON_ELEMENTS, "cpu_workers": 1},
    {"max_bulk_body_bytes": MAX_BODY_BYTES_LIMIT, "max_json_elements": MAX_JSON_ELEMENTS_LIMIT, "cpu_workers": 64},
    {"idempotency_key_ttl": MIN_IDEMPOTENCY_KEY_TTL},
    {"idempotency_key_ttl": MAX_IDEMPOTENCY_KEY_TTL},
    {"default_fhir_version": "5.0"},
    {"public_rpc_url": "https://rpc.example.org"},
    {"public_rpc_url": "http://127.0.0.1:8545/"},
]


def test_the_rpc_url_is_a_secret() -> None:
    settings = Settings(rpc_url="https://node.example/v3/token-in-the-path", keystore_passphrase="x")
    assert "token-in-the-path" not in repr(settings) and "token-in-the-path" not in str(settings.model_dump())
    assert settings.rpc_url_text == "https://node.example/v3/token-in-the-path"


def test_the_public_rpc_url_names_the_origin_the_page_may_connect_to() -> None:
    assert Settings().public_rpc_origin is None
    assert Settings(public_rpc_url="").public_rpc_url is None  # an empty variable: none
    assert Settings(public_rpc_url="https://RPC.example.org:8443/v1/public").public_rpc_origin == (
        "https://rpc.example.org:8443"
    )


@pytest.mark.parametrize("values", ACCEPTED)
def test_valid_settings_are_accepted_as_given(values: dict[str, Any]) -> None:
    settings = Settings(**values)
    for name, value in values.items():
        loaded = getattr(settings, name)
        assert (loaded.get_secret_value() if hasattr(loaded, "get_secret_value") else loaded) == value


REFUSED: list[tuple[dict[str, Any], str]] = [
    ({"rpc_url": RPC}, "keystore_passphrase"),
    ({"rpc_url": RPC, "keystore_passphrase": ""}, "keystore_passphrase"),
    ({"rpc_url": RPC, "faucet_key": ANVIL_DEV_KEY}, "keystore_passphrase"),
    ({"database_url": "postgresql://u:p@db/careledger"}, "database_url"),
    ({"database_url": "postgresql://u:p@db/careledger", "keystore_passphrase": "x"}, "database_url"),
    ({"max_batch_size": 0}, "max_batch_size"),
    ({"max_batch_size": MAX_BATCH_SIZE_LIMIT + 1}, "max_batch_size"),
    ({"max_batch_age": 0}, "max_batch_age"),
    ({"max_batch_age": -1.0}, "max_batch_age"),
    ({"max_batch_age": math.nan}, "max_batch_age"),
    ({"max_batch_age": MAX_BATCH_AGE_LIMIT + 1}, "max_batch_age"),
    ({"max_body_bytes": MIN_BODY_BYTES - 1}, "max_body_bytes"),
    ({"max_body_bytes": MAX_BODY_BYTES_LIMIT + 1}, "max_body_bytes"),
    ({"max_bulk_body_bytes": MIN_BODY_BYTES - 1}, "max_bulk_body_bytes"),
    ({"max_json_elements": MIN_JSON_ELEMENTS - 1}, "max_json_elements"),
    ({"max_json_elements": MAX_JSON_ELEMENTS_LIMIT + 1}, "max_json_elements"),
    ({"cpu_workers": 0}, "cpu_workers"),
    ({"cpu_workers": MAX_CPU_WORKERS + 1}, "cpu_workers"),
    ({"idempotency_key_ttl": MIN_IDEMPOTENCY_KEY_TTL - 1}, "idempotency_key_ttl"),
    ({"idempotency_key_ttl": MAX_IDEMPOTENCY_KEY_TTL + 1}, "idempotency_key_ttl"),
    ({"idempotency_key_ttl": math.inf}, "idempotency_key_ttl"),
    ({"max_records_per_request": 0}, "max_records_per_request"),
    ({"max_records_per_request": MAX_RECORDS_PER_REQUEST_LIMIT + 1}, "max_records_per_request"),
    ({"confirmations": -1}, "confirmations"),
    ({"confirmations": MAX_CONFIRMATIONS + 1}, "confirmations"),
    ({"receipt_timeout": 0}, "receipt_timeout"),
    ({"receipt_timeout": math.inf}, "receipt_timeout"),
    ({"receipt_timeout": MAX_RECEIPT_TIMEOUT + 1}, "receipt_timeout"),
    ({"port": 0}, "port"),
    ({"port": 65_536}, "port"),
    ({"host": ""}, "host"),
    ({"keystore_scrypt_n": 3 * 2**10}, "keystore_scrypt_n"),
    ({"keystore_scrypt_n": MIN_SCRYPT_N // 2}, "keystore_scrypt_n"),
    ({"keystore_scrypt_n": MAX_SCRYPT_N * 2}, "keystore_scrypt_n"),
    ({"priority_fee_wei": -1}, "priority_fee_wei"),
    ({"fee_model": "eip-1559"}, "fee_model"),
    ({"chain_sync": "OFF"}, "chain_sync"),
    ({"default_fhir_version": "4.3"}, "default_fhir_version"),
    ({"public_rpc_url": "https://user:token@rpc.example.org"}, "public_rpc_url"),  # never a secret in it
    ({"public_rpc_url": "wss://rpc.example.org"}, "public_rpc_url"),
    ({"public_rpc_url": "https://rpc.example.org/#fragment"}, "public_rpc_url"),
    ({"public_rpc_url": "rpc.example.org"}, "public_rpc_url"),
]


@pytest.mark.parametrize(("values", "field"), REFUSED)
def test_bad_settings_are_refused_at_load_naming_the_setting(values: dict[str, Any], field: str) -> None:
    with pytest.raises(InputError) as refused:
        Settings(**values)
    assert refused.value.details["field"] == field
    assert f"{field} (CARELEDGER_{field.upper()})" in refused.value.message
    assert isinstance(refused.value.__cause__, ValidationError)


def test_every_refused_setting_is_named_and_no_value_is_shown(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings_file = tmp_path / "settings.toml"
    settings_file.write_text('keystore_passphrase = ["hunter2"]\nport = 0\n')
    monkeypatch.setenv(SETTINGS_FILE_VARIABLE, str(settings_file))
    monkeypatch.setenv("CARELEDGER_MAX_BATCH_SIZE", "many")
    with pytest.raises(InputError) as refused:
        Settings()
    named = [problem["field"] for problem in refused.value.details["errors"]]
    assert sorted(named) == ["keystore_passphrase", "max_batch_size", "port"]
    assert "CARELEDGER_MAX_BATCH_SIZE" in refused.value.message
    assert "hunter2" not in refused.value.message and "hunter2" not in str(refused.value.details)


def test_a_passphrase_from_a_secret_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Container secrets: a file named like the variable, in the directory CARELEDGER_SECRETS_DIR names."""
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "careledger_keystore_passphrase").write_text("from a secret file\n")
    (secrets / "CARELEDGER_RPC_URL").write_text(RPC)  # the variable's own spelling works too
    monkeypatch.setenv(SECRETS_DIR_VARIABLE, str(secrets))
    settings = Settings()
    assert settings.rpc_url_text == RPC
    assert settings.keystore_passphrase is not None
    assert settings.keystore_passphrase.get_secret_value() == "from a secret file"
    monkeypatch.delenv(SECRETS_DIR_VARIABLE)
    with pytest.raises(InputError, match="keystore_passphrase"):
        Settings(rpc_url=RPC)  # without the secret file the RPC chain lacks its passphrase
    passphrase = Settings(rpc_url=RPC, _secrets_dir=secrets).keystore_passphrase  # pydantic's own secrets_dir
    assert passphrase is not None and passphrase.get_secret_value() == "from a secret file"


def test_secret_files_rank_below_the_environment_and_above_the_settings_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    for name in ("max_batch_size", "max_batch_age"):
        (secrets / f"careledger_{name}").write_text("7")
    settings_file = tmp_path / "settings.toml"
    settings_file.write_text("max_batch_size = 512\nmax_batch_age = 5.0\nport = 9000\n")
    monkeypatch.setenv(SECRETS_DIR_VARIABLE, str(secrets))
    monkeypatch.setenv(SETTINGS_FILE_VARIABLE, str(settings_file))
    monkeypatch.setenv("CARELEDGER_MAX_BATCH_AGE", "1.5")
    settings = Settings()
    assert (settings.max_batch_size, settings.max_batch_age, settings.port) == (7, 1.5, 9000)


def test_a_missing_secrets_directory_is_an_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SECRETS_DIR_VARIABLE, str(tmp_path / "nope"))
    with pytest.raises(InputError, match=SECRETS_DIR_VARIABLE):
        Settings()


def test_a_settings_file_that_is_not_toml_is_an_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings_file = tmp_path / "settings.toml"
    settings_file.write_text("rpc_url = http://node:8545\n")  # unquoted
    monkeypatch.setenv(SETTINGS_FILE_VARIABLE, str(settings_file))
    with pytest.raises(InputError, match="not TOML") as refused:
        Settings()
    assert refused.value.details["field"] == SETTINGS_FILE_VARIABLE


def test_the_cli_reports_a_bad_setting_without_a_traceback(tmp_path: Path) -> None:
    cases = {
        "accounts": ({"CARELEDGER_RPC_URL": "http://127.0.0.1:9"}, "CARELEDGER_KEYSTORE_PASSPHRASE"),
        "serve": ({"CARELEDGER_PORT": "80000"}, "CARELEDGER_PORT"),
        "deploy": ({"CARELEDGER_DATABASE_URL": "postgresql://db/careledger"}, "CARELEDGER_DATABASE_URL"),
    }
    for command, (variables, named) in cases.items():
        env = service_env(tmp_path / "data", **variables)
        done = subprocess.run(
            [sys.executable, "-m", "api.cli", command], env=env, cwd=ROOT, capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 1, (command, done.stdout, done.stderr)
        assert "Traceback" not in done.stdout + done.stderr, command
        assert "invalid_input" in done.stderr and named in done.stderr, (command, done.stderr)  # text for people
        assert done.stdout == "", (command, done.stdout)  # results only


def test_file_then_environment_then_arguments(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings_file = tmp_path / "settings.toml"
    settings_file.write_text('rpc_url = "http://node.example:8545"\nmax_batch_size = 512\nmax_batch_age = 5.0\n')
    monkeypatch.setenv(SETTINGS_FILE_VARIABLE, str(settings_file))
    monkeypatch.setenv("CARELEDGER_MAX_BATCH_AGE", "1.5")
    monkeypatch.setenv("CARELEDGER_KEYSTORE_PASSPHRASE", "file test")  # an RPC chain needs one
    settings = Settings(max_batch_size=64)
    assert settings.rpc_url_text == "http://node.example:8545"  # from the file
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
            assert w3.eth.get_code(address) and address in first.stderr
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
        assert unfunded.returncode == 1 and "insufficient funds" in unfunded.stderr.lower(), unfunded.stderr
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
    assert again.returncode == 1 and "exists already" in again.stderr
