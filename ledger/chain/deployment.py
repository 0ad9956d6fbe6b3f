"""Idempotent deployment of the contracts, recorded in the data directory (and, for replicas, in
the shared store).

``deployment.json`` says which chain (by id) holds which contracts, from which block, deployed by
which admin, and the keccak of their runtime code. Opening a data directory checks the record
against the chain: a different chain id or different code is an error, never a silent redeploy.
The code on chain must also be this release's contracts (the shipped artifacts, immutables
aside): a deployment made with other contracts, such as an earlier version whose anchors and
record changes follow other rules, cannot be migrated and is refused with a message telling the
operator to redeploy.
With replicas the record is a shared document and one replica at a time may deploy, so they all
use the same contracts; each keeps a copy in its data directory for auditors.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from eth_account.signers.local import LocalAccount
from web3 import Web3

from ledger.chain.client import Chain
from ledger.chain.contracts import CONSENT_REGISTRY, RECORD_ANCHOR, load_artifact
from ledger.exceptions import DeploymentError, NotFoundError, OutdatedDeploymentError
from ledger.store.shared_files import DirectoryFiles, SharedFiles, write_private_file
from ledger.values import encode_code

DEPLOYMENT_FILE = "deployment.json"


@dataclass(frozen=True)
class Deployment:
    """Where the contracts live on one chain."""

    chain_id: int
    record_anchor: str
    consent_registry: str
    deploy_block: int
    admin: str
    record_anchor_code_hash: str
    consent_registry_code_hash: str

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2) + "\n"

    def save(self, data_dir: Path) -> None:
        """Write the record atomically."""
        Path(data_dir).mkdir(parents=True, exist_ok=True)
        write_private_file(Path(data_dir) / DEPLOYMENT_FILE, self.to_json())

    @classmethod
    def load(cls, data_dir: Path) -> Deployment:
        """Read the record, or raise :class:`NotFoundError`."""
        path = Path(data_dir) / DEPLOYMENT_FILE
        if not path.exists():
            raise NotFoundError(f"no deployment recorded in {data_dir}")
        return cls(**json.loads(path.read_text("utf-8")))

    def check_against(self, chain: Chain) -> None:
        """Raise :class:`DeploymentError` unless the chain holds exactly these contracts, and
        :class:`OutdatedDeploymentError` unless they are this release's."""
        if chain.chain_id != self.chain_id:
            raise DeploymentError(
                f"deployment is on chain {self.chain_id}, connected to chain {chain.chain_id}",
                expected=self.chain_id,
                actual=chain.chain_id,
            )
        for name, address, code_hash in (
            (RECORD_ANCHOR, self.record_anchor, self.record_anchor_code_hash),
            (CONSENT_REGISTRY, self.consent_registry, self.consent_registry_code_hash),
        ):
            code = chain.code_at(address)
            actual = Web3.keccak(code).to_0x_hex()
            if actual != code_hash:
                raise DeploymentError(
                    f"code at {address} is not the deployed contract",
                    address=address,
                    expected=code_hash,
                    actual=actual,
                )
            require_current_code(name, address, code)


def require_current_code(name: str, address: str, code: bytes) -> None:
    """Raise :class:`OutdatedDeploymentError` unless ``code`` (deployed at ``address``) is this
    release's contract ``name``, as its shipped artifact holds it."""
    if not load_artifact(name).is_code_of(code):
        raise OutdatedDeploymentError(
            f"the {name} at {address} is not the {name} this release ships: the data directory or node was "
            "deployed with other contracts (an earlier version, whose anchors, amendments and break-glass follow "
            "other rules), and a deployment cannot be migrated. Redeploy: start from an empty data directory "
            "(with CARELEDGER_DATABASE_URL, an empty database too), then run `careledger deploy`",
            contract=name,
            address=address,
        )


def ensure_deployed(
    chain: Chain,
    data_dir: Path,
    admin: LocalAccount,
    documents: SharedFiles | None = None,
    *,
    emergency_purposes: Sequence[str],
) -> Deployment:
    """Return the recorded deployment (checked against the chain), deploying first if there is none;
    a new ConsentRegistry allows break-glass access for ``emergency_purposes`` (purpose-of-use codes).

    A crash between deploying and recording leaves orphaned contracts that nothing uses; the next
    start deploys again. Deployment costs two transactions and happens once per data directory, or
    once for all replicas sharing ``documents``.
    """
    documents = documents or DirectoryFiles(Path(data_dir))
    with documents.exclusive(DEPLOYMENT_FILE):
        stored = documents.read(DEPLOYMENT_FILE)
        if stored is not None:
            deployment = Deployment(**json.loads(stored))
            deployment.check_against(chain)
        else:
            deployment = _deploy(chain, admin, emergency_purposes)
            documents.create(DEPLOYMENT_FILE, deployment.to_json())
    if not isinstance(documents, DirectoryFiles):
        deployment.save(data_dir)  # the local copy auditors read
    return deployment


def _deploy(chain: Chain, admin: LocalAccount, emergency_purposes: Sequence[str]) -> Deployment:
    anchor_receipt = chain.deploy(load_artifact(RECORD_ANCHOR), admin, admin.address)
    consent_receipt = chain.deploy(
        load_artifact(CONSENT_REGISTRY), admin, admin.address, [encode_code(p) for p in emergency_purposes]
    )
    anchor_address = anchor_receipt["contractAddress"]
    consent_address = consent_receipt["contractAddress"]
    if anchor_address is None or consent_address is None:
        raise DeploymentError("deployment receipt carries no contract address")
    return Deployment(
        chain_id=chain.chain_id,
        record_anchor=anchor_address,
        consent_registry=consent_address,
        deploy_block=int(anchor_receipt["blockNumber"]),
        admin=admin.address,
        record_anchor_code_hash=Web3.keccak(chain.code_at(anchor_address)).to_0x_hex(),
        consent_registry_code_hash=Web3.keccak(chain.code_at(consent_address)).to_0x_hex(),
    )
