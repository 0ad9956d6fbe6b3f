"""The Consent search pages (issue 15): ``_count`` Consents a page, oldest first, a ``next`` link with
an opaque cursor, refusals as the AuditEvent search refuses."""

from __future__ import annotations

from typing import Any

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from fastapi.testclient import TestClient

from api.service import Service
from ledger.store.apps import Role
from tests.api.conftest import MakeApp
from tests.api.test_fhir_facade import create, outcome, valid, withdraw
from tests.support.fhir_consents import pcf_consent
from tests.support.patient_sessions import sign_in

DATA_CLASSES = ("Observation", "Condition", "Procedure", "Immunization", "AllergyIntolerance")


@pytest.fixture
def hospital(make_app: MakeApp) -> tuple[dict[str, str], str]:
    headers, org = make_app({Role.READER, Role.RELAYER}, "General Hospital")
    return headers, org.address


def consents(client: TestClient, service: Service, patient: LocalAccount, org: str, n: int) -> list[dict[str, Any]]:
    """``n`` Consents of the patient to ``org``, created one after the other, each of another data class
    (so that none replaces another on chain)."""
    made = []
    session = sign_in(client, service, patient)
    for scope in DATA_CLASSES[:n]:
        resource = pcf_consent(patient.address, org, classes=(scope,))
        created = create(client, service, patient, resource, session)
        assert created.status_code == 201, created.text
        made.append(valid(created, "Consent"))
    return made


def pages(client: TestClient, headers: dict[str, str], **params: Any) -> list[list[str]]:
    """The ids of each page of a search, following ``next`` links."""
    found: list[list[str]] = []
    response = client.get("/fhir/r4/Consent", params=params, headers=headers)
    while True:
        bundle = valid(response, "Bundle")
        assert bundle["type"] == "searchset"
        found.append([e["resource"]["id"] for e in bundle.get("entry", [])])
        following = [link["url"] for link in bundle["link"] if link["relation"] == "next"]
        if not following:
            return found
        assert len(found) < 20, "the next links go round"
        response = client.get(following[0], headers=headers)


def test_consents_page_with_next_links_in_a_stable_order(
    client: TestClient,
    service: Service,
    patient: LocalAccount,
    hospital: tuple[dict[str, str], str],
    make_app: MakeApp,
) -> None:
    org_headers, org = hospital
    made = [c["id"] for c in consents(client, service, patient, org, 5)]
    session = sign_in(client, service, patient)
    for headers in (org_headers, session):
        assert pages(client, headers, _count="2") == [made[0:2], made[2:4], made[4:5]]
        assert pages(client, headers, patient=patient.address, _count="2") == [made[0:2], made[2:4], made[4:5]]
        assert pages(client, headers, _count="5") == [made]
        assert pages(client, headers, _count="1") == [[i] for i in made]
        assert pages(client, headers) == [made]  # 50 a page by default

    first = valid(client.get("/fhir/r4/Consent", params={"_count": "2"}, headers=org_headers), "Bundle")
    assert "total" not in first  # one page of several: the total is not counted
    (following,) = [link["url"] for link in first["link"] if link["relation"] == "next"]
    assert "_cursor=" in following and "_count=2" in following
    whole = valid(client.get("/fhir/r4/Consent", params={"_count": "200"}, headers=org_headers), "Bundle")
    assert whole["total"] == 5 and [link["relation"] for link in whole["link"]] == ["self"]

    # Status filters before paging: withdrawn ones are left out of active pages, not left as holes.
    third = valid(client.get(f"/fhir/r4/Consent/{made[2]}", headers=session), "Consent")
    withdrawn = withdraw(client, service, patient, third, session)
    assert withdrawn.status_code == 200, withdrawn.text
    active = [i for i in made if i != made[2]]
    assert pages(client, org_headers, status="active", _count="2") == [active[0:2], active[2:4]]
    assert pages(client, org_headers, status="inactive", _count="2") == [[made[2]]]

    # A cursor works only in the reach of the search that gave it.
    other_headers, _ = make_app({Role.READER}, "Riverside Clinic")
    outcome(client.get(following, headers=other_headers), 400, "invalid", "invalid_input")
    stranger = sign_in(client, service, Account.create())
    outcome(client.get(following, headers=stranger), 400, "invalid")


@pytest.mark.parametrize(
    "params",
    [
        {"_count": "0"},
        {"_count": "201"},
        {"_count": "two"},
        {"_count": "-1"},
        {"_count": "9" * 5000},
        {"_count": ["2", "3"]},
        {"_cursor": "nowhere"},
        {"_cursor": "0" * 32},
        {"_cursor": ["a", "b"]},
        {"status": ["active", "inactive"]},
    ],
)
def test_paging_parameters_it_cannot_answer_are_refused(
    client: TestClient, service: Service, hospital: tuple[dict[str, str], str], params: dict[str, Any]
) -> None:
    org_headers, _ = hospital
    outcome(client.get("/fhir/r4/Consent", params=params, headers=org_headers), 400, "invalid", "invalid_input")
