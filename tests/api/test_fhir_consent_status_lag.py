"""The status the facade serves on a chain index that lags by ``confirmations`` (issue 15): its own
changes (a Consent it created, one it withdrew) show at once; a revocation made elsewhere (``/v1``)
shows once the index has read its block, ``confirmations`` blocks later."""

from __future__ import annotations

from pathlib import Path

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from fastapi.testclient import TestClient

from api.service import Service
from ledger.config import Settings
from ledger.store.apps import Role
from tests.api.conftest import MakeApp
from tests.api.test_consent_api import signed_revocation
from tests.api.test_fhir_facade import create, valid, withdraw
from tests.support.chain_under_test import ChainUnderTest
from tests.support.fhir_consents import pcf_consent


@pytest.fixture
def hospital(make_app: MakeApp) -> tuple[dict[str, str], str]:
    headers, org = make_app({Role.READER, Role.RELAYER}, "General Hospital")
    return headers, org.address


CONFIRMATIONS = 2


@pytest.fixture
def api_settings(tmp_path: Path, chain_under_test: ChainUnderTest, store_overrides: dict[str, str]) -> Settings:
    """The service of these tests indexes a block only once two more are on top of it."""
    return chain_under_test.settings(
        tmp_path / "data", max_batch_age=0.2, confirmations=CONFIRMATIONS, **store_overrides
    )


def revoke_through_v1(
    client: TestClient, service: Service, patient: LocalAccount, org: str, headers: dict[str, str]
) -> None:
    body = signed_revocation(service, patient, org, "Observation", "TREAT")
    answer = client.post("/v1/consents/revocations", json=body, headers=headers)
    assert answer.status_code == 200, answer.text


def test_with_confirmations_the_facades_own_changes_show_at_once_and_others_a_few_blocks_late(
    client: TestClient, service: Service, patient: LocalAccount, hospital: tuple[dict[str, str], str]
) -> None:
    assert service.indexer.confirmations == CONFIRMATIONS
    org_headers, org = hospital

    def status(consent_id: str) -> str:
        read = valid(client.get(f"/fhir/r4/Consent/{consent_id}", headers=org_headers), "Consent")
        found = valid(
            client.get("/fhir/r4/Consent", params={"patient": patient.address}, headers=org_headers), "Bundle"
        )
        assert {e["resource"]["id"]: e["resource"]["status"] for e in found["entry"]}[consent_id] == read["status"]
        return str(read["status"])

    # Created through the facade: active in the answer and at once after.
    created = create(client, service, patient, pcf_consent(patient.address, org), org_headers)
    served = valid(created, "Consent")
    assert served["status"] == "active" and status(served["id"]) == "active"

    # Withdrawn through the facade: inactive in the answer and at once after.
    withdrawn = withdraw(client, service, patient, served, org_headers)
    assert valid(withdrawn, "Consent")["status"] == "inactive" and status(served["id"]) == "inactive"

    # Revoked elsewhere (/v1): the index reads the revoking block once CONFIRMATIONS blocks are on top.
    again = valid(
        create(client, service, patient, {**pcf_consent(patient.address, org), "dateTime": "2026-02-01"}, org_headers),
        "Consent",
    )
    revoke_through_v1(client, service, patient, org, org_headers)
    revoked_in = service.ledger.chain.block_number()
    assert not service.ledger.consents.is_permitted(patient.address, org, "Observation", "TREAT")
    assert status(again["id"]) == "active"  # the index has not read the revocation's block yet
    for late in range(1, CONFIRMATIONS + 1):
        service.ledger.chain.fund(Account.create().address, 10**15)  # one more block on top
        service.indexer.sync()  # the indexer's next pass
        head = service.ledger.chain.block_number()
        assert status(again["id"]) == ("inactive" if head - revoked_in >= CONFIRMATIONS else "active"), late
    assert status(again["id"]) == "inactive"
