"""Settings: keyword arguments, then environment variables (``CARELEDGER_*``), then secret files, then
a TOML settings file, then the defaults.

The file is named by ``CARELEDGER_SETTINGS_FILE`` (for example ``/etc/careledger/settings.toml``) and
holds the same names in lower case (``rpc_url = "http://node:8545"``); secrets such as the keystore
passphrase are better left to the environment or to secret files: with ``CARELEDGER_SECRETS_DIR``
naming a directory (a container's ``/run/secrets``), a file there named like the variable
(``careledger_keystore_passphrase``, in any case) holds that setting's value.

Settings check themselves when loaded: a value out of bounds or a combination that cannot work (an
RPC chain without a keystore passphrase, a PostgreSQL store on the embedded chain) raises
:class:`~ledger.exceptions.InputError` naming the setting, from pydantic's ``ValidationError``.
Defaults are stated by the code that uses them (the chain client, the batcher, the keyring) and
imported here.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_core import PydanticCustomError
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SecretsSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from ledger.chain.client import (
    DEFAULT_CONFIRMATIONS,
    DEFAULT_FEE_MODEL,
    DEFAULT_PRIORITY_FEE_WEI,
    DEFAULT_RECEIPT_TIMEOUT,
    FeeModel,
)
from ledger.chain.keys import DEFAULT_SCRYPT_N
from ledger.exceptions import InputError
from ledger.oauth.access_tokens import DEFAULT_TOKEN_LIFETIME, MAX_TOKEN_LIFETIME, MIN_TOKEN_LIFETIME
from ledger.records.batcher import BatcherConfig
from ledger.records.fhir import DEFAULT_FHIR_VERSION, FhirVersion

ENV_PREFIX = "CARELEDGER_"
SETTINGS_FILE_VARIABLE = "CARELEDGER_SETTINGS_FILE"
SECRETS_DIR_VARIABLE = "CARELEDGER_SECRETS_DIR"

BATCHER_DEFAULTS = BatcherConfig()
MAX_BATCH_SIZE_LIMIT = 2**20
"""Most records in one batch: its Merkle tree is built in memory and sealed in one store
transaction; its proofs (20 nodes) stay far inside the 64 a receipt may carry."""
MAX_BATCH_AGE_LIMIT = 3600.0
"""Longest a record may wait to be sealed (seconds): its receipt waits as long."""
MAX_RECEIPT_TIMEOUT = 3600.0
MIN_BODY_BYTES = 1024
MAX_BODY_BYTES_LIMIT = 2**30
"""Request bodies are read into memory before parsing."""
DEFAULT_MAX_BODY_BYTES = 2**20
DEFAULT_MAX_BULK_BODY_BYTES = 32 * 2**20
MIN_JSON_ELEMENTS, MAX_JSON_ELEMENTS_LIMIT = 1_000, 10_000_000
MAX_CPU_WORKERS = 64
MIN_IDEMPOTENCY_KEY_TTL, MAX_IDEMPOTENCY_KEY_TTL = 60.0, 30 * 86_400.0
DEFAULT_IDEMPOTENCY_KEY_TTL = 86_400.0
"""A day, as the Idempotency-Key draft suggests: long enough to retry, short enough to forget."""
MAX_RECORDS_PER_REQUEST_LIMIT = 1_000_000
MAX_CONFIRMATIONS = 10_000
MIN_SCRYPT_N, MAX_SCRYPT_N = 2**4, 2**20
"""scrypt cost bounds: 2**4 only for throwaway test keys; 2**20 already needs 1 GiB per key."""


def _setting_conflict(field: str, message: str) -> PydanticCustomError:
    """An error about a combination of settings, naming the setting to change."""
    return PydanticCustomError("settings_conflict", message, {"field": field})


def _variable(field: str) -> str:
    return f"{field} ({ENV_PREFIX}{field.upper()})"


def settings_error(err: ValidationError) -> InputError:
    """The :class:`InputError` for settings pydantic refused: each problem with the setting it names
    and that setting's variable, never the value given (it may be a secret)."""
    problems: list[dict[str, str]] = []
    for error in err.errors(include_url=False, include_input=False):
        field = ".".join(str(part) for part in error["loc"]) or str((error.get("ctx") or {}).get("field", ""))
        problems.append({"field": field, "message": error["msg"]})
    described = "; ".join(f"{_variable(p['field'])}: {p['message']}" if p["field"] else p["message"] for p in problems)
    return InputError(f"invalid settings: {described}", field=problems[0]["field"], errors=problems)


DEFAULT_MIN_FREE_DISK_BYTES = 4 << 20
"""4 MiB: many SQLite pages and chain blocks, and small beside any real disk."""


class Settings(BaseSettings):
    """Where the ledger keeps its state and which chain it talks to.

    Attributes:
        data_dir: Directory of the embedded chain, the deployment record and the keystore.
        rpc_url: JSON-RPC URL of an EVM node; unset means the embedded chain in ``data_dir``. A
            secret (a node provider's token is often in its path): never shown, and kept out of
            logs and responses.
        database_url: PostgreSQL URL (``postgresql://user:password@host/db``) of a store shared by
            several API replicas; unset means SQLite in ``data_dir`` (one API process). Replicas
            need an RPC chain (``rpc_url``); the keystore and the deployment record then live in the database.
        fee_model: ``auto`` (EIP-1559 when the chain has a base fee, else legacy gas price),
            ``eip1559`` or ``legacy`` (type-0 transactions priced by the node's ``eth_gasPrice``).
        priority_fee_wei: EIP-1559 tip per gas; 0 suits a free-gas consortium network.
        confirmations: Blocks on top of an anchoring transaction's block before its receipt is
            final (0 on the embedded chain; pick what the network's finality needs).
        keystore_passphrase: Passphrase of the encrypted keystore. Required with ``rpc_url``; on
            the embedded chain a random one is generated into ``data_dir/keys/passphrase`` (mode
            0600) when unset, which protects nothing beyond file permissions: development only.
        keystore_scrypt_n: scrypt cost of newly written keystore files, a power of two (2**18 is the
            Web3 Secret Storage default; tests lower it to stay fast).
        faucet_key: A funded key of a development node (anvil) used only to fund the ledger's
            own accounts. Never set on a real network: accounts are funded by their operators.
        chain_sync: SQLite durability of the embedded chain (``FULL``: a block survives power
            loss once mined; ``NORMAL``: it survives a process crash).
        receipt_timeout: Seconds to wait for a transaction to be mined.
        host, port: Where the API listens (loopback by default).
        public_origin: The origin patients and SMART clients reach the service at
            (``https://ledger.example.org``); a patient's sign-in names it, so a signature made for
            another service is refused here, and the token endpoint's URL (the audience of every
            client assertion) is built from it. Default ``http://{host}:{port}``.
        max_batch_size, max_batch_age: Seal a batch at this many records or when the oldest pending
            record is this many seconds old.
        max_body_bytes: Largest request body accepted, on every route but bulk registration (one
            record or one document to verify: about a MiB).
        max_bulk_body_bytes: Largest body of a bulk registration.
        max_json_elements: Most values (array elements and member values) in the JSON body of a
            request carrying a document; with the body limit it bounds the memory and CPU a
            document costs.
        cpu_workers: Threads for CPU-heavy request work (parsing, validating, canonicalising and
            hashing large documents), off the event loop; more such requests wait their turn.
        cpu_queue: Most large documents queued or being processed at once; past it a large
            request gets 503 ``server_busy`` at once (so waiting bodies cannot fill the memory).
        idempotency_key_ttl: Seconds an ``Idempotency-Key`` is remembered; after that the key is
            new again.
        max_records_per_request: Most records in one bulk registration.
        public_verify_per_minute: Receipts one client may verify per minute without an API key.
        access_token_lifetime: Seconds a SMART Backend Services access token lives (five minutes
            at most); the client then signs a new assertion for a new one.
        token_requests_per_minute: Token requests one client address may make per minute.
        trusted_proxies: Comma-separated addresses (or networks) of reverse proxies whose
            ``X-Forwarded-For`` names the client; empty (the default) trusts no header, so every
            per-client limit counts the peer's address.
        default_fhir_version: The FHIR version (``4.0`` for R4, ``5.0`` for R5) record documents are
            validated as when their content type names none (``fhirVersion=``).
        public_rpc_url: A public JSON-RPC URL of the ledger's chain (``https://rpc.example.org``) that
            the patient page checks anchored roots against (its origin is added to the page's
            ``connect-src``; the node must answer CORS requests from the page's origin). Unset: the page
            asks the service, and says so. Given to every patient's browser: never a URL with a secret
            in it (unlike ``rpc_url``).
        min_free_disk_bytes: Free bytes the data directory's filesystem must have for ``/readyz`` to
            answer ready; below it the replica reports ``not_ready`` (writes themselves fail only
            when the disk is full, with ``storage_full``), so a load balancer sends registrations elsewhere.
    """

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore")

    data_dir: Path = Path("data")
    rpc_url: SecretStr | None = None
    database_url: SecretStr | None = None
    confirmations: int = Field(default=DEFAULT_CONFIRMATIONS, ge=0, le=MAX_CONFIRMATIONS)
    fee_model: FeeModel = DEFAULT_FEE_MODEL
    priority_fee_wei: int = Field(default=DEFAULT_PRIORITY_FEE_WEI, ge=0)
    keystore_passphrase: SecretStr | None = None
    keystore_scrypt_n: int = Field(default=DEFAULT_SCRYPT_N, ge=MIN_SCRYPT_N, le=MAX_SCRYPT_N)
    faucet_key: SecretStr | None = None
    chain_sync: Literal["FULL", "NORMAL"] = "FULL"
    receipt_timeout: float = Field(default=DEFAULT_RECEIPT_TIMEOUT, gt=0, le=MAX_RECEIPT_TIMEOUT, allow_inf_nan=False)
    host: str = Field(default="127.0.0.1", min_length=1)
    port: int = Field(default=8000, ge=1, le=65_535)
    public_origin: str | None = Field(default=None, max_length=255, pattern=r"^https?://[^/\s]+$")
    max_batch_size: int = Field(default=BATCHER_DEFAULTS.max_batch_size, ge=1, le=MAX_BATCH_SIZE_LIMIT)
    max_batch_age: float = Field(
        default=BATCHER_DEFAULTS.max_batch_age, gt=0, le=MAX_BATCH_AGE_LIMIT, allow_inf_nan=False
    )
    max_body_bytes: int = Field(default=DEFAULT_MAX_BODY_BYTES, ge=MIN_BODY_BYTES, le=MAX_BODY_BYTES_LIMIT)
    max_bulk_body_bytes: int = Field(default=DEFAULT_MAX_BULK_BODY_BYTES, ge=MIN_BODY_BYTES, le=MAX_BODY_BYTES_LIMIT)
    max_json_elements: int = Field(default=100_000, ge=MIN_JSON_ELEMENTS, le=MAX_JSON_ELEMENTS_LIMIT)
    cpu_workers: int = Field(default=2, ge=1, le=MAX_CPU_WORKERS)
    cpu_queue: int = Field(default=16, ge=1, le=10_000)
    idempotency_key_ttl: float = Field(
        default=DEFAULT_IDEMPOTENCY_KEY_TTL, ge=MIN_IDEMPOTENCY_KEY_TTL, le=MAX_IDEMPOTENCY_KEY_TTL, allow_inf_nan=False
    )
    max_records_per_request: int = Field(default=100_000, ge=1, le=MAX_RECORDS_PER_REQUEST_LIMIT)
    public_verify_per_minute: int = Field(default=600, ge=1, le=10_000_000)
    access_token_lifetime: int = Field(default=DEFAULT_TOKEN_LIFETIME, ge=MIN_TOKEN_LIFETIME, le=MAX_TOKEN_LIFETIME)
    token_requests_per_minute: int = Field(default=120, ge=1, le=10_000_000)
    trusted_proxies: str = Field(default="", max_length=4096, pattern=r"^[0-9A-Fa-f.:/, ]*$")
    default_fhir_version: FhirVersion = DEFAULT_FHIR_VERSION
    public_rpc_url: str | None = Field(default=None, max_length=2048, pattern=r"^https?://[^/\s?#@]+(/[^\s#]*)?$")
    min_free_disk_bytes: int = Field(default=DEFAULT_MIN_FREE_DISK_BYTES, ge=0, le=1 << 50)

    def __init__(self, **values: Any) -> None:
        """Load and check the settings; a refused value raises :class:`InputError` (see :func:`settings_error`)."""
        try:
            super().__init__(**values)
        except ValidationError as err:
            raise settings_error(err) from err

    @property
    def rpc_url_text(self) -> str | None:
        """The RPC URL itself (None or empty: the embedded chain). Keep it out of messages."""
        return self.rpc_url.get_secret_value() if self.rpc_url is not None else None

    @property
    def public_rpc_origin(self) -> str | None:
        """The origin (``scheme://host[:port]``) of ``public_rpc_url``, for the page's ``connect-src``."""
        if self.public_rpc_url is None:
            return None
        scheme, _, rest = self.public_rpc_url.partition("://")
        return f"{scheme.lower()}://{rest.split('/', 1)[0].lower()}"

    @field_validator("public_rpc_url", mode="before")
    @classmethod
    def _empty_public_rpc_url_is_none(cls, url: object) -> object:
        return None if url == "" else url

    @field_validator("keystore_scrypt_n")
    @classmethod
    def _scrypt_n_is_a_power_of_two(cls, n: int) -> int:
        if n & (n - 1):
            raise PydanticCustomError("power_of_two", "must be a power of two")
        return n

    @property
    def origin(self) -> str:
        """The service's origin as patients see it (``public_origin``, else its listening address)."""
        return self.public_origin or f"http://{self.host}:{self.port}"

    @model_validator(mode="after")
    def _chain_store_and_keys_fit(self) -> Settings:
        """An RPC chain needs a keystore passphrase; a PostgreSQL store needs an RPC chain (replicas
        cannot share the embedded chain, which one process holds)."""
        passphrase = self.keystore_passphrase.get_secret_value() if self.keystore_passphrase else ""
        if self.rpc_url_text and not passphrase:
            raise _setting_conflict("keystore_passphrase", "is required with an RPC chain (rpc_url is set)")
        if self.database_url is not None and not self.rpc_url_text:
            raise _setting_conflict(
                "database_url", "needs an RPC chain (rpc_url): the embedded chain serves one process only"
            )
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Arguments win over the environment, which wins over secret files, which win over the settings file."""
        secrets = file_secret_settings
        secrets_dir = os.environ.get(SECRETS_DIR_VARIABLE)
        if secrets_dir:
            if not Path(secrets_dir).is_dir():
                raise InputError(
                    f"{SECRETS_DIR_VARIABLE} names no directory: {secrets_dir}", field=SECRETS_DIR_VARIABLE
                )
            secrets = SecretsSettingsSource(settings_cls, secrets_dir=secrets_dir)
        settings_file = os.environ.get(SETTINGS_FILE_VARIABLE)
        if not settings_file:
            return init_settings, env_settings, secrets
        if not Path(settings_file).is_file():
            raise InputError(f"{SETTINGS_FILE_VARIABLE} names no file: {settings_file}", field=SETTINGS_FILE_VARIABLE)
        try:
            settings_toml = TomlConfigSettingsSource(settings_cls, toml_file=Path(settings_file))
        except tomllib.TOMLDecodeError as err:
            raise InputError(f"{settings_file} is not TOML: {err}", field=SETTINGS_FILE_VARIABLE) from err
        return init_settings, env_settings, secrets, settings_toml
