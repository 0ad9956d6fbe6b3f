"""The FHIR R4 facade over HTTP: the CapabilityStatement, Consents granted and withdrawn on the
patient's signature (with the chain naming their terms), searches, who sees what, refusals as
OperationOutcome, and the Provenance of anchored records. Everything answered validates with
``fhir.resources.R4B``."""

from __future__ import annotations

import base64
import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from fastapi.testclient import TestClient
from fhir.resources.R4B import get_fhir_model_class

from api.service import Service
from ledger.fhir.consent import terms_digest, with_signature
from ledger.records.receipts import Receipt, verify_receipt
from ledger.store.apps import Role
from tests.api.conftest import MakeApp
from tests.api.test_consent_api import assert_error, relay, signed_grant, signed_revocation
from tests.api.test_disclosures_api import anchored_accounting, build_scenario
from tests.support.fhir_consents import pcf_consent, signed_consent
from tests.support.patient_sessions import sign_in

FHIR = "application/fhir+json"


def valid(response: Any, resource_type: str) -> dict[str, Any]:
    """The answer's resource, checked: FHIR JSON of ``resource_type``, valid R4 (R4B models)."""
    assert response.headers["content-type"].startswith(FHIR), response.text
    body: dict[str, Any] = response.json()
    assert body["resourceType"] == resource_type, body
    get_fhir_model_class(resource_type).model_validate(body)
    return body


def outcome(response: Any, status: int, issue: str, code: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = valid(response, "OperationOutcome")
    assert body["issue"][0]["code"] == issue, body
    if code is not None:
        assert body["issue"][0]["details"]["coding"][0]["code"] == code, body
    return body


def create(
    client: TestClient, service: Service, signer: LocalAccount, resource: dict[str, Any], headers: dict[str, str]
) -> Any:
    patient = resource["patient"]["reference"].removeprefix("Patient/")
    nonce = service.ledger.consents.nonce(patient)
    body = signed_consent(service.ledger.consents.domain, nonce, signer, resource)
    return client.post("/fhir/r4/Consent", json=body, headers={**headers, "Content-Type": FHIR})


def withdraw(
    client: TestClient,
    service: Service,
    signer: LocalAccount,
    served: dict[str, Any],
    headers: dict[str, str],
    **kw: Any,
) -> Any:
    patient = served["patient"]["reference"].removeprefix("Patient/")
    body = signed_consent(
        service.ledger.consents.domain,
        service.ledger.consents.nonce(patient),
        signer,
        {**served, "status": "inactive"},
        **kw,
    )
    return client.put(f"/fhir/r4/Consent/{served['id']}", json=body, headers={**headers, "Content-Type": FHIR})


@pytest.fixture
def hospital(make_app: MakeApp) -> tuple[dict[str, str], str]:
    headers, org = make_app({Role.READER, Role.RELAYER}, "General Hospital")
    return headers, org.address


def test_metadata_lists_exactly_what_is_supported(client: TestClient) -> None:
    statement = valid(client.get("/fhir/r4/metadata"), "CapabilityStatement")
    assert statement["fhirVersion"] == "4.0.1"
    (rest,) = statement["rest"]
    by_type = {r["type"]: r for r in rest["resource"]}
    assert set(by_type) == {"Consent", "AuditEvent", "Provenance"}
    assert [i["code"] for i in by_type["Consent"]["interaction"]] == ["read", "search-type", "create", "update"]
    assert [p["name"] for p in by_type["Consent"]["searchParam"]] == ["patient", "status"]
    assert [i["code"] for i in by_type["Provenance"]["interaction"]] == ["read", "search-type"]
    assert [p["name"] for p in by_type["Provenance"]["searchParam"]] == ["target", "patient"]
    assert [i["code"] for i in by_type["AuditEvent"]["interaction"]] == ["read", "search-type"]
    assert [p["name"] for p in by_type["AuditEvent"]["searchParam"]] == ["patient", "date", "agent", "outcome"]


def test_a_patient_grants_reads_searches_and_withdraws_a_consent(
    client: TestClient, service: Service, patient: LocalAccount, hospital: tuple[dict[str, str], str]
) -> None:
    org_headers, org = hospital
    session = sign_in(client, service, patient)
    resource = pcf_consent(patient.address, org, ("TREAT", "HPAYMT"), classes=("Observation", "Condition"))

    created = create(client, service, patient, resource, session)
    assert created.status_code == 201, created.text
    served = valid(created, "Consent")
    assert served["status"] == "active" and served["meta"]["versionId"] == "1"
    assert created.headers["location"].endswith(f"/fhir/r4/Consent/{served['id']}/_history/1")
    assert terms_digest(served) == terms_digest(resource)  # what was signed is what is served
    for scope in ("Observation", "Condition"):
        for purpose in ("TREAT", "HPAYMT"):
            assert service.ledger.consents.is_permitted(patient.address, org, scope, purpose)
    set_events = [e for e in service.ledger.consents.history(patient.address) if e.kind == "ConsentSetGranted"]
    assert [e.fields["terms"] for e in set_events] == [terms_digest(resource)]

    for headers in (session, org_headers):
        assert valid(client.get(f"/fhir/r4/Consent/{served['id']}", headers=headers), "Consent") == served
        for query in ({"patient": f"Patient/{patient.address}"}, {"patient": patient.address, "status": "active"}):
            bundle = valid(client.get("/fhir/r4/Consent", params=query, headers=headers), "Bundle")
            assert bundle["type"] == "searchset" and bundle["total"] == 1
            assert bundle["entry"][0]["resource"] == served
        none = valid(client.get("/fhir/r4/Consent", params={"status": "inactive"}, headers=headers), "Bundle")
        assert none["total"] == 0

    withdrawn = withdraw(client, service, patient, served, session)
    assert withdrawn.status_code == 200, withdrawn.text
    after = valid(withdrawn, "Consent")
    assert after["status"] == "inactive" and after["meta"]["versionId"] == "2"
    assert not service.ledger.consents.is_permitted(patient.address, org, "Observation", "TREAT")
    revoked = [e for e in service.ledger.consents.history(patient.address) if e.kind == "ConsentSetRevoked"]
    assert [e.fields["terms"] for e in revoked] == [terms_digest(resource)]
    found = valid(client.get("/fhir/r4/Consent", params={"status": "inactive"}, headers=org_headers), "Bundle")
    assert [e["resource"]["id"] for e in found["entry"]] == [served["id"]]

    outcome(withdraw(client, service, patient, served, session), 409, "conflict", "conflict")


def test_an_organisation_sees_only_consents_to_itself(
    client: TestClient, service: Service, patient: LocalAccount, make_app: MakeApp, hospital: tuple[dict[str, str], str]
) -> None:
    org_headers, org = hospital
    other_headers, other = make_app({Role.READER}, "Riverside Clinic")
    served = valid(create(client, service, patient, pcf_consent(patient.address, org), org_headers), "Consent")
    outcome(client.get(f"/fhir/r4/Consent/{served['id']}", headers=other_headers), 404, "not-found", "not_found")
    bundle = valid(client.get("/fhir/r4/Consent", params={"patient": patient.address}, headers=other_headers), "Bundle")
    assert bundle["total"] == 0
    stranger = sign_in(client, service, Account.create())
    outcome(client.get(f"/fhir/r4/Consent/{served['id']}", headers=stranger), 404, "not-found")
    assert (
        valid(client.get("/fhir/r4/Consent", params={"patient": patient.address}, headers=stranger), "Bundle")["total"]
        == 0
    )
    assert other != org


def test_a_consent_revoked_elsewhere_or_granted_again_turns_inactive(
    client: TestClient, service: Service, patient: LocalAccount, hospital: tuple[dict[str, str], str]
) -> None:
    org_headers, org = hospital
    first = valid(create(client, service, patient, pcf_consent(patient.address, org), org_headers), "Consent")
    second = valid(
        create(client, service, patient, {**pcf_consent(patient.address, org), "dateTime": "2026-02-01"}, org_headers),
        "Consent",
    )
    read = {
        c["id"]: c["status"]
        for c in (
            valid(client.get(f"/fhir/r4/Consent/{i}", headers=org_headers), "Consent")
            for i in (first["id"], second["id"])
        )
    }
    assert read == {first["id"]: "inactive", second["id"]: "active"}
    outcome(withdraw(client, service, patient, first, org_headers), 409, "conflict")

    body = signed_revocation(service, patient, org, "Observation", "TREAT")
    assert client.post("/v1/consents/revocations", json=body, headers=org_headers).status_code == 200
    assert valid(client.get(f"/fhir/r4/Consent/{second['id']}", headers=org_headers), "Consent")["status"] == "inactive"


def test_a_guardian_grants_and_the_patient_withdraws(
    client: TestClient, service: Service, patient: LocalAccount, hospital: tuple[dict[str, str], str]
) -> None:
    org_headers, org = hospital
    guardian = Account.create()
    service.ledger.chain.fund(patient.address, 10**18)
    service.ledger.consents.appoint_guardian(patient, guardian.address, int(time.time()) + 86_400)
    resource = pcf_consent(patient.address, org, performer=f"RelatedPerson/{guardian.address}")
    served = valid(create(client, service, guardian, resource, org_headers), "Consent")
    assert service.ledger.consents.is_permitted(patient.address, org, "Observation", "TREAT")
    withdrawn = withdraw(client, service, patient, served, sign_in(client, service, patient), name_signer=True)
    assert valid(withdrawn, "Consent")["status"] == "inactive"


UNSUPPORTED: dict[str, tuple[dict[str, Any], str]] = {
    "nested deny provision": (
        {
            "provision": [
                {"type": "deny", "class": [{"system": "http://hl7.org/fhir/resource-types", "code": "Condition"}]}
            ]
        },
        "Consent.provision.provision",
    ),
    "no purpose": ({"purpose": []}, "Consent.provision.purpose"),
    "unknown purpose": (
        {"purpose": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActReason", "code": "MARKETING"}]},
        "Consent.provision.purpose[0]",
    ),
    "class and label together": (
        {"securityLabel": [{"system": "http://terminology.hl7.org/CodeSystem/v3-Confidentiality", "code": "N"}]},
        "Consent.provision.securityLabel",
    ),
    "two actors": ("two actors", "Consent.provision.actor"),
    "deny": ({"type": "deny"}, "Consent.provision.type"),
    "action": (
        {"action": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentaction", "code": "access"}]}]},
        "Consent.provision.action",
    ),
}


@pytest.mark.parametrize("case", sorted(UNSUPPORTED))
def test_unsupported_shapes_are_refused_with_an_operation_outcome(
    client: TestClient, service: Service, patient: LocalAccount, hospital: tuple[dict[str, str], str], case: str
) -> None:
    org_headers, org = hospital
    change, expression = UNSUPPORTED[case]
    resource = pcf_consent(patient.address, org)
    if change == "two actors":
        resource["provision"]["actor"] *= 2
    else:
        resource["provision"].update(change)
    before = service.ledger.chain.block_number()
    unsigned = with_signature(resource, int(time.time()) + 600, bytes(65))  # refused before any signature check
    response = client.post("/fhir/r4/Consent", json=unsigned, headers=org_headers)
    body = outcome(response, 400, "not-supported", "fhir_not_supported")
    assert body["issue"][0]["expression"] == [expression]
    assert service.ledger.chain.block_number() == before  # nothing sent


def test_refusals_are_operation_outcomes(
    client: TestClient, service: Service, patient: LocalAccount, hospital: tuple[dict[str, str], str]
) -> None:
    org_headers, org = hospital
    resource = pcf_consent(patient.address, org)
    outcome(client.post("/fhir/r4/Consent", json=resource, headers=org_headers), 400, "invalid", "invalid_input")
    forged = signed_consent(service.ledger.consents.domain, 0, Account.create(), resource)
    outcome(client.post("/fhir/r4/Consent", json=forged, headers=org_headers), 400, "security", "invalid_signature")
    invalid = {**resource, "status": 7}
    body = outcome(client.post("/fhir/r4/Consent", json=invalid, headers=org_headers), 400, "structure", "invalid_fhir")
    assert body["issue"][0]["expression"] == ["Consent.status"]
    outcome(client.get("/fhir/r4/Consent"), 401, "login", "unauthenticated")
    outcome(client.get("/fhir/r4/Consent/nope", headers=org_headers), 404, "not-found")
    outcome(client.get("/fhir/r4/Patient/1", headers=org_headers), 404, "not-found")
    outcome(client.get("/fhir/r4/Consent", params={"category": "x"}, headers=org_headers), 400, "invalid")
    not_deleted = client.delete("/fhir/r4/Consent/" + "0" * 32, headers=org_headers)  # an id of the right form
    outcome(not_deleted, 405, "not-supported")
    assert not_deleted.headers["allow"] == "GET, PUT"
    reader, _ = hospital
    assert client.post("/v1/consents/grants", json={}, headers=reader).headers["content-type"] == "application/json"


def test_a_reader_without_the_relayer_role_cannot_create(
    client: TestClient, service: Service, patient: LocalAccount, make_app: MakeApp
) -> None:
    headers, org = make_app({Role.READER}, "Reader Only")
    body = outcome(
        create(client, service, patient, pcf_consent(patient.address, org.address), headers), 403, "forbidden"
    )
    assert "relayer" in body["issue"][0]["diagnostics"]
    other = Account.create()
    outcome(
        create(client, service, patient, pcf_consent(patient.address, org.address), sign_in(client, service, other)),
        403,
        "forbidden",
    )


def test_provenance_of_an_anchored_record_carries_its_receipt(
    client: TestClient, service: Service, make_app: MakeApp, patient: LocalAccount
) -> None:
    headers, org = make_app({Role.REGISTRAR}, "General Hospital")
    document = {"resourceType": "Observation", "status": "final", "code": {"text": "heart rate"}}
    ack = client.post("/v1/records", json={"patient": patient.address, "document": document}, headers=headers).json()
    record_id = ack["recordId"]
    client.get(f"/v1/records/{record_id}/receipt", params={"wait": "true", "timeout": 20}, headers=headers)
    for who in (headers, sign_in(client, service, patient)):
        provenance = valid(client.get(f"/fhir/r4/Provenance/{record_id}", headers=who), "Provenance")
        assert provenance["target"][0]["identifier"]["value"] == record_id
        assert provenance["agent"][0]["who"]["reference"] == f"Organization/{org.address}"
        receipt = Receipt.parse(base64.b64decode(provenance["signature"][0]["data"]))
        assert verify_receipt(receipt, anchors=service.ledger.anchors).valid
        assert provenance["entity"][0]["what"]["identifier"]["value"].endswith(receipt.transaction_hash.hex())
    other, _ = make_app({Role.READER}, "Riverside Clinic")
    outcome(client.get(f"/fhir/r4/Provenance/{record_id}", headers=other), 404, "not-found")
    pending = client.post("/v1/records", json={"patient": patient.address, "digest": "0x" + "11" * 32}, headers=headers)
    outcome(client.get(f"/fhir/r4/Provenance/{pending.json()['recordId']}", headers=headers), 404, "not-found")


# --- Provenance search: anchored records by target and patient, paged ---------------------------


def provenance_search(client: TestClient, headers: dict[str, str], **params: Any) -> list[str]:
    """The record ids of every Provenance a search finds, page after page (following ``next``), each validated."""
    found: list[str] = []
    response = client.get("/fhir/r4/Provenance", params=params, headers=headers)
    while True:
        bundle = valid(response, "Bundle")
        assert bundle["type"] == "searchset" and "total" not in bundle
        for entry in bundle.get("entry", []):
            provenance = entry["resource"]
            get_fhir_model_class("Provenance").model_validate(provenance)
            assert entry["fullUrl"].endswith(f"/fhir/r4/Provenance/{provenance['id']}")
            assert provenance["target"][0]["identifier"]["value"] == provenance["id"]
            found.append(provenance["id"])
        following = [link["url"] for link in bundle["link"] if link["relation"] == "next"]
        if not following:
            return found
        response = client.get(following[0], headers=headers)


@pytest.fixture
def anchored(
    client: TestClient, service: Service, make_app: MakeApp, patient: LocalAccount
) -> tuple[dict[str, str], list[str], list[str], str]:
    """An organisation's app, its anchored records about the patient and about someone else (in
    registration order), and one record still pending (the batcher is stopped before it is sent,
    so it stays pending whatever the machine's speed)."""
    headers, _ = make_app({Role.REGISTRAR, Role.READER}, "General Hospital")
    someone = Account.create().address
    about = [patient.address, someone, patient.address, patient.address, someone]
    ids = []
    for index, whose in enumerate(about):
        body = {"patient": whose, "digest": "0x" + f"{index + 1:02x}" * 32}
        ids.append(client.post("/v1/records", json=body, headers=headers).json()["recordId"])
    for record_id in ids:
        waited = client.get(f"/v1/records/{record_id}/receipt", params={"wait": "true", "timeout": 20}, headers=headers)
        assert waited.status_code == 200, waited.text
    service.batcher.stop()
    pending = client.post("/v1/records", json={"patient": patient.address, "digest": "0x" + "ee" * 32}, headers=headers)
    own = [i for i, whose in zip(ids, about, strict=True) if whose == patient.address]
    return headers, ids, own, pending.json()["recordId"]


def test_provenances_are_searched_by_target_and_patient(
    client: TestClient,
    service: Service,
    patient: LocalAccount,
    anchored: tuple[dict[str, str], list[str], list[str], str],
) -> None:
    headers, every, own, pending = anchored
    assert provenance_search(client, headers) == every  # record order; the pending one has none
    assert provenance_search(client, headers, patient=f"Patient/{patient.address}") == own
    assert provenance_search(client, headers, patient=patient.address.lower()) == own
    for target in (every[1], f"urn:careledger:record|{every[1]}"):
        assert provenance_search(client, headers, target=target) == [every[1]]
    assert provenance_search(client, headers, target=every[1], patient=patient.address) == []
    assert provenance_search(client, headers, target=pending) == []
    read = valid(client.get(f"/fhir/r4/Provenance/{every[0]}", headers=headers), "Provenance")
    bundle = valid(client.get("/fhir/r4/Provenance", params={"target": every[0]}, headers=headers), "Bundle")
    assert bundle["entry"][0]["resource"] == read  # the same Provenance as the read

    session = sign_in(client, service, patient)  # the patient's own, whoever registered them
    assert provenance_search(client, session) == own
    assert provenance_search(client, session, patient=patient.address) == own
    assert provenance_search(client, session, target=own[1]) == [own[1]]
    assert provenance_search(client, session, target=every[1]) == []  # someone else's
    assert provenance_search(client, session, patient=Account.create().address) == []


def test_another_organisation_finds_no_provenance_of_these_records(
    client: TestClient,
    service: Service,
    make_app: MakeApp,
    patient: LocalAccount,
    anchored: tuple[dict[str, str], list[str], list[str], str],
) -> None:
    """An empty searchset, as for ids that do not exist: a search does not tell whose records exist."""
    _, every, _, _ = anchored
    other, _ = make_app({Role.READER}, "Riverside Clinic")
    assert provenance_search(client, other) == []
    assert provenance_search(client, other, patient=patient.address) == []
    assert provenance_search(client, other, target=every[0]) == []
    stranger = sign_in(client, service, Account.create())
    assert provenance_search(client, stranger, target=every[0]) == []
    outcome(client.get("/fhir/r4/Provenance"), 401, "login")


def test_provenances_page_with_a_next_link(
    client: TestClient, anchored: tuple[dict[str, str], list[str], list[str], str]
) -> None:
    headers, every, _, _ = anchored
    for count in (1, 2, 4, 5, 200):
        assert provenance_search(client, headers, _count=str(count)) == every, count
    first = valid(client.get("/fhir/r4/Provenance", params={"_count": "2"}, headers=headers), "Bundle")
    assert [e["resource"]["id"] for e in first["entry"]] == every[:2]
    (following,) = [link["url"] for link in first["link"] if link["relation"] == "next"]
    assert f"_cursor={every[2]}" in following and "_count=2" in following
    whole = valid(client.get("/fhir/r4/Provenance", params={"_count": "5"}, headers=headers), "Bundle")
    assert [link["relation"] for link in whole["link"]] == ["self"]
    for past in ("7" + "f" * 31, "f" * 32):  # beyond every row (and any database integer): empty, not an error
        page = valid(client.get("/fhir/r4/Provenance", params={"_cursor": past}, headers=headers), "Bundle")
        assert page.get("entry", []) == []


@pytest.mark.parametrize(
    "params",
    [
        {"subject": "x"},
        {"target": "nope"},
        {"target": f"urn:other|{'ab' * 16}"},
        {"target": "AB" * 16},
        {"target": ["ab" * 16, "cd" * 16]},
        {"patient": "Practitioner/0x1"},
        {"patient": "Patient/0x1"},
        {"_count": "0"},
        {"_count": "201"},
        {"_count": "two"},
        {"_cursor": "nowhere"},
    ],
)
def test_provenance_searches_refuse_what_they_cannot_answer(
    client: TestClient, service: Service, patient: LocalAccount, params: dict[str, Any]
) -> None:
    session = sign_in(client, service, patient)
    refused = outcome(client.get("/fhir/r4/Provenance", params=params, headers=session), 400, "invalid")
    assert refused["issue"][0]["diagnostics"]


# --- AuditEvent: the access trail as IHE BALP events ---------------------------------------------


def audit_search(client: TestClient, headers: dict[str, str], **params: Any) -> list[dict[str, Any]]:
    """Every AuditEvent a search finds, page after page (following ``next``), each validated."""
    events: list[dict[str, Any]] = []
    response = client.get("/fhir/r4/AuditEvent", params=params, headers=headers)
    while True:
        bundle = valid(response, "Bundle")
        assert bundle["type"] == "searchset"
        events += [valid_event(e["resource"]) for e in bundle.get("entry", [])]
        following = [link["url"] for link in bundle["link"] if link["relation"] == "next"]
        if not following:
            return events
        response = client.get(following[0], headers=headers)


def valid_event(resource: dict[str, Any]) -> dict[str, Any]:
    get_fhir_model_class("AuditEvent").model_validate(resource)
    return resource


def ids(events: list[dict[str, Any]]) -> list[str]:
    return [e["id"] for e in events]


def expected_ids(entries: list[dict[str, Any]]) -> list[str]:
    """The events of trail entries: each decision, then the read of each that gave access."""
    gave = ("allowed", "break_glass")
    return [i for e in entries for i in (f"{e['id']}-authz", *([f"{e['id']}-read"] if e["decision"] in gave else []))]


def details(event: dict[str, Any]) -> dict[str, str]:
    record = event["entity"][-1]
    assert record["what"]["identifier"]["system"] == "urn:careledger:record"
    return {d["type"]: d.get("valueString") or d.get("valueBase64Binary") for d in record["detail"]}


@pytest.fixture
def trail(client: TestClient, service: Service, make_app: MakeApp, patient: LocalAccount) -> list[dict[str, Any]]:
    """The disclosures scenario (three organisations; allowed, denied and break-glass accesses), anchored."""
    build_scenario(client, service, make_app, patient)
    token = sign_in(client, service, patient)
    anchored_accounting(client, patient.address, token)
    entries: list[dict[str, Any]] = client.get(f"/v1/patient/{patient.address}/accesses", headers=token).json()[
        "entries"
    ]
    assert len(entries) == 6
    return entries


def test_audit_events_show_each_decision_and_each_read_with_its_anchoring(
    client: TestClient, service: Service, patient: LocalAccount, trail: list[dict[str, Any]]
) -> None:
    session = sign_in(client, service, patient)
    events = audit_search(client, session, patient=f"Patient/{patient.address}")
    assert ids(events) == expected_ids(trail)
    assert ids(audit_search(client, session)) == ids(events)  # the patient's own, unasked
    by_id = {e["id"]: e for e in events}
    for entry in trail:
        decision = by_id[f"{entry['id']}-authz"]
        assert decision["type"]["code"] == "110113" and decision["action"] == "E"
        assert decision["outcome"] == ("8" if entry["decision"] == "denied" else "0")
        recipient = next(a for a in decision["agent"] if a["requestor"])
        assert recipient["who"]["identifier"]["value"].endswith(entry["organisation"]["address"])
        anchoring = details(decision)
        assert {"transaction", "root", "receipt", "receipt-url", "provenance-url"} <= set(anchoring)
        assert anchoring["provenance-url"].endswith(f"/fhir/r4/Provenance/{entry['recordId']}")
        provenance = valid(client.get(anchoring["provenance-url"], headers=session), "Provenance")
        receipt = Receipt.parse(base64.b64decode(provenance["signature"][0]["data"]))
        assert "0x" + receipt.transaction_hash.hex() == anchoring["transaction"]
        assert "0x" + receipt.root.hex() == anchoring["root"]
        if entry["decision"] == "denied":
            assert f"{entry['id']}-read" not in by_id
            continue
        read = by_id[f"{entry['id']}-read"]
        assert (read["type"]["code"], read["subtype"][0]["code"], read["action"]) == ("rest", "read", "R")
        assert read["entity"][0]["what"]["reference"] == f"Patient/{patient.address}"
        assert read["entity"][0]["role"]["code"] == "1"
        assert details(read) == anchoring
        purposes = [[c["coding"][0]["code"] for c in e["purposeOfEvent"]] for e in (decision, read)]
        if entry["decision"] == "break_glass":
            assert purposes == [["ETREAT", "BTG"]] * 2
            assert decision["subtype"][0]["code"] == "AuthZ-Role"
            # decided by the emergency role in the block that recorded the access
            recorded = service.ledger.chain.transaction_receipt(bytes.fromhex(entry["breakGlassTx"][2:]))
            assert anchoring["decision-block"] == str(recorded["blockNumber"])
            assert anchoring["decision-block-hash"] == "0x" + bytes(recorded["blockHash"]).hex()
        else:
            assert purposes == [[entry["purpose"]]] * 2
            assert decision["subtype"][0]["code"] == "AuthZ-Consent"
            consent = consent_entity(decision)
            assert consent["what"]["identifier"]["value"].startswith(f"{patient.address}:")
            assert_decided_on_chain(service, consent)

    # Read by id: the same event; a denied attempt read nothing.
    for event in events:
        assert valid(client.get(f"/fhir/r4/AuditEvent/{event['id']}", headers=session), "AuditEvent") == event
    denied = next(e for e in trail if e["decision"] == "denied")
    for missing in (f"{denied['id']}-read", "0-authz", "x", f"{denied['id']}"):
        outcome(client.get(f"/fhir/r4/AuditEvent/{missing}", headers=session), 404, "not-found")


def consent_entity(event: dict[str, Any]) -> dict[str, Any]:
    found: dict[str, Any] = next(e for e in event["entity"] if e["type"]["code"] == "Consent")
    return found


def entity_details(entity: dict[str, Any]) -> dict[str, str]:
    return {d["type"]: d.get("valueString") or d.get("valueBase64Binary") for d in entity.get("detail", [])}


def events_by_record(events: list[dict[str, Any]]) -> dict[str, dict[str, dict[str, Any]]]:
    """Each audit record's events by kind (``authz``, ``read``)."""
    found: dict[str, dict[str, dict[str, Any]]] = {}
    for event in events:
        record = event["entity"][-1]["what"]["identifier"]["value"]
        found.setdefault(record, {})[event["id"].rsplit("-", 1)[1]] = event
    return found


def assert_decided_on_chain(service: Service, consent: dict[str, Any]) -> int:
    """The consent entity carries the decision's chain state, and its block hash is the chain's; returns the block."""
    shown = entity_details(consent)
    block = int(shown["decision-block"])
    assert shown["decision-block-hash"] == "0x" + bytes(service.ledger.chain.w3.eth.get_block(block)["hash"]).hex()
    assert shown["decision-registry"] == service.ledger.consents.address
    assert shown["decision-chain"] == str(service.ledger.chain.chain_id)
    return block


def test_the_authz_event_names_the_fhir_consent_and_the_chain_state_that_decided(
    client: TestClient,
    service: Service,
    make_app: MakeApp,
    patient: LocalAccount,
    hospital: tuple[dict[str, str], str],
) -> None:
    org_headers, org = hospital
    session = sign_in(client, service, patient)
    created = create(client, service, patient, pcf_consent(patient.address, org), session)
    assert created.status_code == 201, created.text
    consent_id = valid(created, "Consent")["id"]
    lab_headers, lab = make_app({Role.READER, Role.RELAYER}, "City Lab")
    relay(client, lab_headers, "grants", signed_grant(service, patient, lab.address))  # through /v1

    def access(headers: dict[str, str], purpose: str = "TREAT") -> Any:
        body = {"patient": patient.address, "scope": "Observation", "purpose": purpose}
        return client.post("/v1/access", headers=headers, json=body)

    allowed = access(org_headers)
    assert allowed.status_code == 200, allowed.text
    denied = assert_error(access(org_headers, "HRESCH"), 403, "consent_required")
    assert denied["details"]["reason"] == "no_consent"
    by_v1 = access(lab_headers)
    assert by_v1.status_code == 200, by_v1.text
    events = events_by_record(audit_search(client, session))

    # Allowed by the FHIR Consent: named by reference, beside its on-chain key, in both events.
    allowed_events = events[allowed.json()["auditRecordId"]]
    decision = consent_entity(allowed_events["authz"])
    assert decision["what"]["reference"] == f"Consent/{consent_id}"
    assert decision["what"]["identifier"]["value"] == f"{patient.address}:{org}:Observation:TREAT"
    assert entity_details(decision)["decision"] == "permitted"
    block = assert_decided_on_chain(service, decision)
    assert consent_entity(allowed_events["read"])["what"] == decision["what"]
    document = json.loads(base64.b64decode(details(allowed_events["authz"])["document"]))
    assert document["version"] == 2
    assert document["decidedAt"]["block"] == block
    assert document["consent"] == {
        "key": decision["what"]["identifier"]["value"],
        "fhirConsent": f"Consent/{consent_id}",
    }

    # Denied for want of any consent: the key asked for, no Consent, the chain state all the same.
    refusal = consent_entity(events[denied["details"]["audit_record_id"]]["authz"])
    assert "reference" not in refusal["what"]
    assert refusal["what"]["identifier"]["value"] == f"{patient.address}:{org}:Observation:HRESCH"
    assert entity_details(refusal)["decision"] == "no_consent"
    assert assert_decided_on_chain(service, refusal) >= block

    # Allowed by a consent granted through /v1: its key, no Consent.
    plain = events[by_v1.json()["auditRecordId"]]
    granted = consent_entity(plain["authz"])
    assert "reference" not in granted["what"]
    assert granted["what"]["identifier"]["value"] == f"{patient.address}:{lab.address}:Observation:TREAT"
    assert_decided_on_chain(service, granted)
    assert "reference" not in consent_entity(plain["read"])["what"]


def test_audit_event_searches_by_outcome_agent_and_date(
    client: TestClient, service: Service, patient: LocalAccount, trail: list[dict[str, Any]]
) -> None:
    session = sign_in(client, service, patient)
    denied = [e for e in trail if e["decision"] == "denied"]
    given = [e for e in trail if e["decision"] != "denied"]
    assert ids(audit_search(client, session, outcome="8")) == expected_ids(denied)
    assert ids(audit_search(client, session, outcome="http://hl7.org/fhir/audit-event-outcome|0")) == expected_ids(
        given
    )
    assert audit_search(client, session, outcome="4") == []
    lab = next(e["organisation"]["address"] for e in trail if e["organisation"]["name"] == "City Lab")
    of_lab = [e for e in trail if e["organisation"]["address"] == lab]
    assert ids(audit_search(client, session, agent=f"Organization/{lab}")) == expected_ids(of_lab)
    assert ids(audit_search(client, session, agent=lab, outcome="8")) == expected_ids(
        [e for e in of_lab if e["decision"] == "denied"]
    )
    assert audit_search(client, session, agent=Account.create().address) == []

    everything = expected_ids(trail)
    today = datetime.now(UTC).date()
    yesterday, tomorrow = today - timedelta(days=1), today + timedelta(days=1)
    assert ids(audit_search(client, session, date=[f"ge{yesterday}", f"lt{tomorrow}"])) == everything
    assert ids(audit_search(client, session, date=f"gt{yesterday}")) == everything
    assert audit_search(client, session, date=f"lt{yesterday}") == []
    assert audit_search(client, session, date=f"ge{tomorrow}") == []
    assert ids(audit_search(client, session, date=str(today.year))) == everything
    # Instants: to the millisecond, as recorded.
    times = [datetime.fromisoformat(e["document"]["time"]) for e in trail]
    for at in (times[1], times[3]):
        instant = at.isoformat(timespec="milliseconds").replace("+00:00", "Z")
        from_then = [e for e, t in zip(trail, times, strict=True) if t >= at]
        assert ids(audit_search(client, session, date=f"ge{instant}")) == expected_ids(from_then)
        before = [e for e, t in zip(trail, times, strict=True) if t < at]
        assert ids(audit_search(client, session, date=f"lt{instant}")) == expected_ids(before)
        assert ids(audit_search(client, session, date=instant)) == expected_ids(
            [e for e, t in zip(trail, times, strict=True) if t == at]
        )
    assert ids(audit_search(client, session, date=f"le{times[0].isoformat()}")) == expected_ids(
        [e for e, t in zip(trail, times, strict=True) if t == times[0]]
    )


def test_audit_events_page_with_a_next_link(
    client: TestClient, service: Service, patient: LocalAccount, trail: list[dict[str, Any]]
) -> None:
    session = sign_in(client, service, patient)
    everything = expected_ids(trail)
    for count in (1, 2, 3, 200):
        assert ids(audit_search(client, session, _count=str(count))) == everything, count
    first = valid(client.get("/fhir/r4/AuditEvent", params={"_count": "2"}, headers=session), "Bundle")
    assert "total" not in first and len(first["entry"]) == 2
    (following,) = [link["url"] for link in first["link"] if link["relation"] == "next"]
    assert "_cursor=" in following and "_count=2" in following
    last = valid(client.get("/fhir/r4/AuditEvent", params={"_count": "200"}, headers=session), "Bundle")
    assert [link["relation"] for link in last["link"]] == ["self"]
    for refused in (
        {"_count": "0"},
        {"_count": "201"},
        {"_count": "two"},
        {"_count": "9" * 5000},
        {"_cursor": "nowhere"},
    ):
        outcome(client.get("/fhir/r4/AuditEvent", params=refused, headers=session), 400, "invalid")


def test_an_organisation_sees_only_its_own_audit_events(
    client: TestClient, service: Service, make_app: MakeApp, patient: LocalAccount, trail: list[dict[str, Any]]
) -> None:
    hospital, org = make_app({Role.READER, Role.REGISTRAR}, "General Hospital")
    own = [e for e in trail if e["organisation"]["address"] == org.address]
    assert len(own) == 2
    for params in ({}, {"patient": patient.address}, {"agent": f"Organization/{org.address}"}):
        assert ids(audit_search(client, hospital, **params)) == expected_ids(own), params
    lab = next(e for e in trail if e["organisation"]["name"] == "City Lab")
    assert audit_search(client, hospital, agent=f"Organization/{lab['organisation']['address']}") == []
    assert audit_search(client, hospital, patient=Account.create().address) == []
    outcome(client.get(f"/fhir/r4/AuditEvent/{lab['id']}-authz", headers=hospital), 404, "not-found")
    assert valid(client.get(f"/fhir/r4/AuditEvent/{own[0]['id']}-authz", headers=hospital), "AuditEvent")

    # Another patient's session sees none of this patient's events.
    other = sign_in(client, service, Account.create())
    assert audit_search(client, other) == []
    assert audit_search(client, other, patient=patient.address) == []
    outcome(client.get(f"/fhir/r4/AuditEvent/{lab['id']}-authz", headers=other), 404, "not-found")
    outcome(client.get("/fhir/r4/AuditEvent"), 401, "login")


@pytest.mark.parametrize(
    "params",
    [
        {"subject": "x"},
        {"patient": ["Patient/0x1", "Patient/0x2"]},
        {"patient": "Practitioner/1"},
        {"agent": "Organization/nope"},
        {"outcome": "9"},
        {"outcome": ["0", "8"]},
        {"date": "ne2026-01-01"},
        {"date": "2026-13-01"},
        {"date": "2026-01-01T10:00"},
        {"date": ["ge2026", "le2027", "eq2026"]},
    ],
)
def test_audit_event_searches_refuse_what_they_cannot_answer(
    client: TestClient, service: Service, patient: LocalAccount, params: dict[str, Any]
) -> None:
    session = sign_in(client, service, patient)
    outcome(client.get("/fhir/r4/AuditEvent", params=params, headers=session), 400, "invalid")
