"""Settings: keyword arguments, then environment variables (``CARELEDGER_*``), then a TOML settings file.

The file is named by ``CARELEDGER_SETTINGS_FILE`` (for example ``/etc/careledger/settings.toml``) and
holds the same names in lower case (``rpc_url = "http://node:8545"``); secrets such as the keystore
passphrase are better left to the environment.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from ledger.exceptions import InputError

SETTINGS_FILE_VARIABLE = "CARELEDGER_SETTINGS_FILE"


class Settings(BaseSettings):
    """Where the ledger keeps its state and which chain it talks to.

    Attributes:
        data_dir: Directory of the embedded chain, the deployment record and the keystore.
        rpc_url: JSON-RPC URL of an EVM node; unset means the embedded chain in ``data_dir``.
        database_url: PostgreSQL URL (``postgresql://user:password@host/db``) of a store shared by
            several API replicas; unset means SQLite in ``data_dir`` (one API process). Replicas
            need an RPC chain; the keystore and the deployment record then live in the database.
        fee_model: ``auto`` (EIP-1559 when the chain has a base fee, else legacy gas price),
            ``eip1559`` or ``legacy`` (type-0 transactions priced by the node's ``eth_gasPrice``).
        priority_fee_wei: EIP-1559 tip per gas; 0 suits a free-gas consortium network.
        confirmations: Blocks on top of an anchoring transaction's block before its receipt is
            final (0 on the embedded chain; pick what the network's finality needs).
        keystore_passphrase: Passphrase of the encrypted keystore. Required with ``rpc_url``; on
            the embedded chain a random one is generated into ``data_dir/keys/passphrase`` (mode
            0600) when unset, which protects nothing beyond file permissions: development only.
        keystore_scrypt_n: scrypt cost of newly written keystore files (2**18 is the Web3 Secret
            Storage default; tests lower it to stay fast).
        faucet_key: A funded key of a development node (anvil) used only to fund the ledger's
            own accounts. Never set on a real network: accounts are funded by their operators.
        chain_sync: SQLite durability of the embedded chain (``FULL``: a block survives power
            loss once mined; ``NORMAL``: it survives a process crash).
        receipt_timeout: Seconds to wait for a transaction to be mined.
        host, port: Where the API listens (loopback by default).
        max_batch_size, max_batch_age: Seal a batch at this many records or when the oldest pending
            record is this many seconds old.
        max_body_bytes: Largest request body accepted.
        max_records_per_request: Most records in one bulk registration.
    """

    model_config = SettingsConfigDict(env_prefix="CARELEDGER_", extra="ignore")

    data_dir: Path = Path("data")
    rpc_url: str | None = None
    database_url: SecretStr | None = None
    confirmations: int = Field(default=0, ge=0, le=10_000)
    fee_model: Literal["auto", "eip1559", "legacy"] = "auto"
    priority_fee_wei: int = Field(default=10**9, ge=0)
    keystore_passphrase: SecretStr | None = None
    keystore_scrypt_n: int = 2**18
    faucet_key: SecretStr | None = None
    chain_sync: Literal["FULL", "NORMAL"] = "FULL"
    receipt_timeout: float = 120.0
    host: str = "127.0.0.1"
    port: int = 8000
    max_batch_size: int = 4096
    max_batch_age: float = 2.0
    max_body_bytes: int = 32 * 1024 * 1024
    max_records_per_request: int = 100_000

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Arguments win over the environment, which wins over the settings file."""
        settings_file = os.environ.get(SETTINGS_FILE_VARIABLE)
        if not settings_file:
            return init_settings, env_settings
        if not Path(settings_file).is_file():
            raise InputError(f"{SETTINGS_FILE_VARIABLE} names no file: {settings_file}", field=SETTINGS_FILE_VARIABLE)
        return init_settings, env_settings, TomlConfigSettingsSource(settings_cls, toml_file=Path(settings_file))
