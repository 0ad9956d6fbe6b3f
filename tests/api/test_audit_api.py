"""The audit trail's read side: who sees which entries, pagination, and what each entry proves."""

from __future__ import annotations

from typing import Any

from eth_account import Account
from eth_account.signers.local import LocalAccount
from fastapi.testclient import TestClient

from api.service import Service
from ledger.consent.access_trail import DOCUMENT_TYPE
from ledger.records.hashing import canonical_json, digest_json
from ledger.store.apps import Role
from tests.api.conftest import MakeApp
from tests.api.test_access_api import access
from tests.api.test_consent_api import assert_error


def trail(client: TestClient, headers: dict[str, str], path: str, **params: Any) -> dict[str, Any]:
    response = client.get(f"/v1/audit/{path}", headers=headers, params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_each_organisation_sees_its_own_entries_and_an_admin_sees_all(
    client: TestClient,
    make_app: MakeApp,
    patient: LocalAccount,
) -> None:
    hospital, hospital_org = make_app({Role.READER}, organisation="General Hospital")
    clinic, clinic_org = make_app({Role.READER}, organisation="Other Clinic")
    admin, _ = make_app({Role.ADMIN}, organisation="CareLedger operator")
    access(client, hospital, patient.address)
    access(client, clinic, patient.address)
    access(client, clinic, Account.create().address)

    def orgs(entries: list[dict[str, Any]]) -> list[str]:
        return [e["organisation"]["name"] for e in entries]

    assert orgs(trail(client, hospital, f"patients/{patient.address}")["entries"]) == ["General Hospital"]
    assert orgs(trail(client, clinic, f"patients/{patient.address}")["entries"]) == ["Other Clinic"]
    assert orgs(trail(client, admin, f"patients/{patient.address}")["entries"]) == ["General Hospital", "Other Clinic"]
    assert len(trail(client, clinic, f"organisations/{clinic_org.id}")["entries"]) == 2
    assert len(trail(client, admin, f"organisations/{clinic_org.id}")["entries"]) == 2
    assert_error(client.get(f"/v1/audit/organisations/{hospital_org.id}", headers=clinic), 403, "forbidden")
    assert_error(client.get("/v1/audit/organisations/9999", headers=admin), 404, "not_found")


def test_pages_follow_the_after_cursor(client: TestClient, make_app: MakeApp, patient: LocalAccount) -> None:
    headers, org = make_app({Role.READER})
    for scope in ("Observation", "Condition", "Procedure", "Immunization", "Encounter"):
        access(client, headers, patient.address, scope)
    seen, after, pages = [], 0, 0
    while True:
        page = trail(client, headers, f"organisations/{org.id}", limit=2, after=after)
        seen += [e["scope"] for e in page["entries"]]
        pages += 1
        if page["nextAfter"] is None:
            break
        after = page["nextAfter"]
    assert seen == ["Observation", "Condition", "Procedure", "Immunization", "Encounter"]
    assert pages == 3


def test_an_entry_is_the_canonical_document_whose_digest_is_its_record(
    client: TestClient,
    service: Service,
    make_app: MakeApp,
    patient: LocalAccount,
) -> None:
    headers, org = make_app({Role.READER})
    access(client, headers, patient.address)
    (entry,) = trail(client, headers, f"patients/{patient.address}")["entries"]
    document = entry["document"]
    assert document["type"] == DOCUMENT_TYPE
    assert (
        document["patient"],
        document["organisation"],
        document["appId"],
        document["decision"],
        document["reason"],
        document["breakGlass"],
    ) == (patient.address, {"name": org.name, "address": org.address}, entry["appId"], "denied", "no_consent", False)
    record = client.get(f"/v1/records/{entry['recordId']}", headers=headers).json()
    assert record["kind"] == "audit" and record["digest"] == "0x" + digest_json(document).hex()
    (stored,) = service.db.conn.execute(
        "SELECT document FROM access_events WHERE record_id = ?", (entry["recordId"],)
    ).fetchone()
    assert stored.encode() == canonical_json(document)


def test_reading_the_trail_needs_a_reading_role_and_valid_parameters(
    client: TestClient,
    make_app: MakeApp,
    patient: LocalAccount,
) -> None:
    emergency_only, _ = make_app({Role.EMERGENCY}, organisation="Emergency Unit", emergency=True)
    assert_error(client.get(f"/v1/audit/patients/{patient.address}", headers=emergency_only), 403, "forbidden")
    reader, _ = make_app({Role.READER})
    assert_error(client.get("/v1/audit/patients/0xnope", headers=reader), 422, "invalid_request")
    assert_error(
        client.get(f"/v1/audit/patients/{patient.address}", headers=reader, params={"limit": 0}), 422, "invalid_request"
    )
    assert_error(
        client.get(f"/v1/audit/patients/{patient.address}", headers=reader, params={"after": -1}),
        422,
        "invalid_request",
    )
    assert_error(client.get("/v1/audit/organisations/abc", headers=reader), 422, "invalid_request")


def test_trail_documents_carry_a_nonce_so_they_cannot_be_guessed(
    client: TestClient, make_app: MakeApp, patient: LocalAccount
) -> None:
    """Everything else in an access-trail document is public or a small set of codes and a time:
    the nonce makes two identical attempts two unguessable documents with distinct digests."""
    headers, org = make_app({Role.READER})
    access(client, headers, patient.address)
    access(client, headers, patient.address)
    first, second = trail(client, headers, f"organisations/{org.id}")["entries"]
    nonces = [e["document"]["nonce"] for e in (first, second)]
    assert all(isinstance(n, str) and len(bytes.fromhex(n)) == 16 for n in nonces) and nonces[0] != nonces[1]
    without = [{k: v for k, v in e["document"].items() if k not in ("nonce", "time")} for e in (first, second)]
    assert without[0] == without[1]  # the same attempt: only the nonce (and the time) tell them apart
    assert digest_json(first["document"]) != digest_json(second["document"])
