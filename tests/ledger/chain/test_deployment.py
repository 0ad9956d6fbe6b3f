"""Deployments made with other contracts than this release ships are refused, with what to do.

The contracts of issue 12 key anchors by account and record changes by the record as anchored;
a data directory (or node) deployed by an earlier release holds contracts with other rules, which
cannot be migrated. ``tests/testdata/contracts/before_issue_12/`` holds those contracts' ABI and
creation code as that release shipped them.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner
from web3 import Web3

from api.cli import app as careledger
from ledger.auditor.chain_reader import open_reader
from ledger.chain.contracts import CONSENT_REGISTRY, RECORD_ANCHOR, Artifact, load_artifact
from ledger.chain.deployment import Deployment
from ledger.exceptions import OutdatedDeploymentError
from ledger.runtime import open_ledger
from tests.support import paths
from tests.support.chain_under_test import ChainUnderTest

PREVIOUS = paths.TESTDATA / "contracts" / "before_issue_12"


def previous_artifact(name: str) -> Artifact:
    """The contract ``name`` as the release before issue 12 shipped it (ABI and creation code)."""
    data = json.loads((PREVIOUS / f"{name}.json").read_text("utf-8"))
    return Artifact(
        name=data["contractName"], abi=data["abi"], bytecode=data["bytecode"], deployed_bytecode="", metadata=""
    )


def deployed_before_issue_12(
    chain_under_test: ChainUnderTest, data_dir: Path, contracts: tuple[str, ...] = (RECORD_ANCHOR, CONSENT_REGISTRY)
) -> Deployment:
    """A data directory whose ``deployment.json`` records the previous release's ``contracts`` (the
    others this release's), exactly as a release records them (addresses, deploy block, admin,
    code hashes)."""
    with open_ledger(chain_under_test.settings(data_dir)) as ledger:
        admin, chain = ledger.admin, ledger.chain
        fields = dict(ledger.deployment.__dict__)
        for name, prefix in ((RECORD_ANCHOR, "record_anchor"), (CONSENT_REGISTRY, "consent_registry")):
            if name not in contracts:
                continue
            receipt = chain.deploy(previous_artifact(name), admin, admin.address)
            address = receipt["contractAddress"]
            assert address is not None
            fields[prefix] = address
            fields[f"{prefix}_code_hash"] = Web3.keccak(chain.code_at(address)).to_0x_hex()
            fields["deploy_block"] = min(fields["deploy_block"], int(receipt["blockNumber"]))
    record = Deployment(**fields)
    record.save(data_dir)
    return record


def test_the_previous_contracts_are_not_this_release_s() -> None:
    for name in (RECORD_ANCHOR, CONSENT_REGISTRY):
        assert previous_artifact(name).bytecode != load_artifact(name).bytecode


def test_a_data_directory_deployed_with_the_previous_contracts_is_refused_with_what_to_do(
    tmp_path: Path, chain_under_test: ChainUnderTest
) -> None:
    data_dir = tmp_path / "data"
    with chain_under_test.isolated():
        old = deployed_before_issue_12(chain_under_test, data_dir)

        with pytest.raises(OutdatedDeploymentError) as caught:
            open_ledger(chain_under_test.settings(data_dir))
        refusal = caught.value
        assert refusal.code == "deployment_outdated"
        assert refusal.details == {"contract": RECORD_ANCHOR, "address": old.record_anchor}
        assert "earlier version" in refusal.message and "Redeploy" in refusal.message
        assert "empty data directory" in refusal.message and "careledger deploy" in refusal.message

        # The operator sees it from the command line, and the auditor refuses to read those contracts too.
        result = CliRunner().invoke(careledger, ["deploy", "--data-dir", str(data_dir)], env=chain_under_test.env())
        assert result.exit_code == 1, result.output
        assert "deployment_outdated" in result.output and "Redeploy" in result.output
        with pytest.raises(OutdatedDeploymentError):
            open_reader(rpc_url=chain_under_test.rpc_url, data_dir=data_dir)


def test_the_consent_registry_alone_being_outdated_is_refused_too(
    tmp_path: Path, chain_under_test: ChainUnderTest
) -> None:
    """A record naming this release's RecordAnchor beside the previous ConsentRegistry (break-glass
    for any purpose, no purpose in the event) is refused by the registry's code, immutables aside."""
    data_dir = tmp_path / "data"
    with chain_under_test.isolated():
        mixed = deployed_before_issue_12(chain_under_test, data_dir, (CONSENT_REGISTRY,))
        with pytest.raises(OutdatedDeploymentError) as caught:
            open_ledger(chain_under_test.settings(data_dir))
        assert caught.value.details == {"contract": CONSENT_REGISTRY, "address": mixed.consent_registry}
