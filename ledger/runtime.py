"""The running ledger: a chain, its deployment and the signing accounts, opened from settings.

``open_ledger`` is what the service, the demo and the tests call: it connects to the embedded
chain in the data directory (or a JSON-RPC node), unlocks the keystore, deploys the contracts on
first start, and hands back clients for both contracts.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from eth_account import Account
from eth_account.signers.local import LocalAccount
from web3 import HTTPProvider, Web3

from ledger.chain.client import Chain
from ledger.chain.deployment import Deployment, ensure_deployed
from ledger.chain.embedded.backend import open_embedded_web3
from ledger.chain.keys import Keyring, development_passphrase
from ledger.config import Settings
from ledger.consent.codes import EMERGENCY_PURPOSES
from ledger.consent.registry import ConsentRegistryClient
from ledger.records.anchoring import RecordAnchorClient
from ledger.store import postgres
from ledger.store.shared_files import DirectoryFiles, PostgresFiles, SharedFiles, adopt

DEV_FUNDING_WEI = 10**21  # 1,000 ether on development chains: enough for many thousand anchors
ADMIN_KEY = "admin"
RELAYER_KEY = "relayer"
DEFAULT_ANCHORER_KEY = "anchorer-default"


@dataclass
class Ledger:
    """An open ledger. Close it (or use ``with``) to release the chain."""

    settings: Settings
    chain: Chain
    keyring: Keyring
    deployment: Deployment
    anchors: RecordAnchorClient
    consents: ConsentRegistryClient
    shared_files: SharedFiles

    @property
    def admin(self) -> LocalAccount:
        """Deploys the contracts and grants roles; sends nothing else."""
        return self.keyring.get(ADMIN_KEY)

    @property
    def relayer(self) -> LocalAccount:
        """Pays the gas of patient-signed consent changes; holds no role."""
        return self.keyring.get(RELAYER_KEY)

    def anchorer(self, name: str = DEFAULT_ANCHORER_KEY) -> LocalAccount:
        """An organisation's anchoring key, created, funded and given ``ANCHORER_ROLE`` on first use."""
        account = self.keyring.get_or_create(name)
        self.chain.fund(account.address, DEV_FUNDING_WEI)
        self.anchors.grant_anchorer(self.admin, account.address)
        return account

    def close(self) -> None:
        """Release the chain."""
        self.chain.close()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_chain(settings: Settings) -> Chain:
    """Connect to the configured chain: the embedded one in ``data_dir``, or ``rpc_url``."""
    faucet = Account.from_key(settings.faucet_key.get_secret_value()) if settings.faucet_key else None
    rpc_url = settings.rpc_url_text
    if rpc_url:
        w3 = Web3(HTTPProvider(rpc_url, request_kwargs={"timeout": 30}))
        return Chain(
            w3,
            faucet=faucet,
            receipt_timeout=settings.receipt_timeout,
            fee_model=settings.fee_model,
            priority_fee_wei=settings.priority_fee_wei,
        )
    embedded = open_embedded_web3(Path(settings.data_dir), synchronous=settings.chain_sync)
    try:
        dev_faucet = faucet or Account.from_key(embedded.faucet_keys[0])
        return Chain(
            embedded.w3,
            close=embedded.close,
            faucet=dev_faucet,
            receipt_timeout=settings.receipt_timeout,
            serialize=True,
        )
    except BaseException:
        embedded.close()
        raise


def open_shared_files(settings: Settings) -> SharedFiles:
    """Where the keys and the deployment record live: the data directory, or with a
    ``database_url`` the store shared by the replicas (the data directory's own keys and record are
    copied there first, where absent)."""
    local = DirectoryFiles(Path(settings.data_dir))
    if settings.database_url is None:
        return local
    url = settings.database_url.get_secret_value()
    postgres.migrate(url)
    shared = PostgresFiles(url)
    adopt(local, shared)
    return shared


def open_keyring(settings: Settings, documents: SharedFiles | None = None) -> Keyring:
    """The keystore (``keys/`` documents), unlocked with the configured passphrase (which
    :class:`Settings` requires with an RPC chain) or the embedded chain's development one."""
    directory = Path(settings.data_dir) / "keys"
    documents = documents or open_shared_files(settings)
    if settings.keystore_passphrase is not None:
        passphrase = settings.keystore_passphrase.get_secret_value()
    else:
        passphrase = development_passphrase(directory)
    return Keyring(documents, passphrase, scrypt_n=settings.keystore_scrypt_n)


def open_ledger(settings: Settings | None = None) -> Ledger:
    """Open the ledger described by ``settings`` (default: from the environment)."""
    settings = settings or Settings()
    chain = open_chain(settings)
    try:
        documents = open_shared_files(settings)
        keyring = open_keyring(settings, documents)
        admin = keyring.get_or_create(ADMIN_KEY)
        relayer = keyring.get_or_create(RELAYER_KEY)
        chain.fund(admin.address, DEV_FUNDING_WEI)
        chain.fund(relayer.address, DEV_FUNDING_WEI)
        deployment = ensure_deployed(
            chain, Path(settings.data_dir), admin, documents, emergency_purposes=EMERGENCY_PURPOSES
        )
        return Ledger(
            settings=settings,
            chain=chain,
            keyring=keyring,
            deployment=deployment,
            anchors=RecordAnchorClient(
                chain, deployment.record_anchor, deployment.deploy_block, confirmations=settings.confirmations
            ),
            consents=ConsentRegistryClient(chain, deployment.consent_registry, deployment.deploy_block),
            shared_files=documents,
        )
    except BaseException:
        chain.close()
        raise
