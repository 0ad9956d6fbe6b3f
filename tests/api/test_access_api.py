"""Access requests on the real embedded chain: consent decides, every attempt is audited and anchored,
break-glass is recorded on chain and flagged, and refusals carry a stable code and reason."""

from __future__ import annotations

import time
from typing import Any

from eth_account.signers.local import LocalAccount
from fastapi.testclient import TestClient

from api.service import Service
from ledger.consent.registry import EMERGENCY_ROLE
from ledger.store.apps import Role
from ledger.store.records import get_record
from tests.api.conftest import MakeApp
from tests.api.test_consent_api import (
    PURPOSE,
    SCOPE,
    assert_error,
    chain_time,
    relay,
    signed_grant,
    signed_revocation,
    travel_to,
)
from tests.support.patient_sessions import own_consents


def access(
    client: TestClient, headers: dict[str, str], patient: str, scope: str = SCOPE, purpose: str = PURPOSE
) -> Any:
    return client.post("/v1/access", headers=headers, json={"patient": patient, "scope": scope, "purpose": purpose})


def receipt(client: TestClient, headers: dict[str, str], record_id: str) -> dict[str, Any]:
    """The audit record's receipt, waiting for its batch to be anchored."""
    response = client.get(f"/v1/records/{record_id}/receipt", headers=headers, params={"wait": "true"})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_consent_allows_then_revocation_denies_and_both_attempts_are_anchored(
    client: TestClient,
    service: Service,
    make_app: MakeApp,
    patient: LocalAccount,
) -> None:
    headers, org = make_app({Role.READER, Role.RELAYER})
    relay(client, headers, "grants", signed_grant(service, patient, org.address))
    allowed = access(client, headers, patient.address)
    assert allowed.status_code == 200, allowed.text
    assert allowed.json()["decision"] == "allowed" and allowed.json()["breakGlass"] is False

    relay(client, headers, "revocations", signed_revocation(service, patient, org.address))
    denied = assert_error(access(client, headers, patient.address), 403, "consent_required")
    assert denied["details"]["reason"] == "revoked"
    denied_id = denied["details"]["audit_record_id"]
    record = get_record(service.db.conn, denied_id)  # durable before the 403 was sent
    assert record is not None and record.kind == "audit" and record.organisation_id == org.id

    trail = client.get(f"/v1/audit/patients/{patient.address}", headers=headers).json()["entries"]
    assert [(e["decision"], e["reason"]) for e in trail] == [("allowed", None), ("denied", "revoked")]
    assert trail[0]["recordId"] == allowed.json()["auditRecordId"] and trail[1]["recordId"] == denied_id
    for entry in trail:
        proof = receipt(client, headers, entry["recordId"])
        assert proof["anchorer"] == org.address
        verified = client.post("/v1/verify", json={"document": entry["document"], "receipt": proof}).json()
        assert verified["match"] is True, verified
    anchored = client.get(f"/v1/audit/patients/{patient.address}", headers=headers).json()["entries"]
    assert {e["status"] for e in anchored} == {"anchored"}


def test_denial_reasons_no_consent_not_yet_valid_and_expired(
    client: TestClient,
    service: Service,
    make_app: MakeApp,
    patient: LocalAccount,
) -> None:
    headers, org = make_app({Role.READER, Role.RELAYER})
    assert (
        assert_error(access(client, headers, patient.address), 403, "consent_required")["details"]["reason"]
        == "no_consent"
    )
    now = chain_time(service)
    relay(
        client,
        headers,
        "grants",
        signed_grant(service, patient, org.address, valid_from=now + 50, valid_until=now + 100),
    )
    assert (
        assert_error(access(client, headers, patient.address), 403, "consent_required")["details"]["reason"]
        == "not_yet_valid"
    )
    travel_to(service, now + 60)
    assert access(client, headers, patient.address).status_code == 200
    travel_to(service, now + 200)
    assert (
        assert_error(access(client, headers, patient.address), 403, "consent_required")["details"]["reason"]
        == "expired"
    )


def test_a_wildcard_consent_allows_any_scope_for_its_purpose_only(
    client: TestClient,
    service: Service,
    make_app: MakeApp,
    patient: LocalAccount,
) -> None:
    headers, org = make_app({Role.READER, Role.RELAYER})
    relay(client, headers, "grants", signed_grant(service, patient, org.address, "*"))
    assert access(client, headers, patient.address, "DiagnosticReport").status_code == 200
    assert_error(access(client, headers, patient.address, "DiagnosticReport", "HRESCH"), 403, "consent_required")
    other, _ = make_app({Role.READER}, organisation="Other Clinic")  # consent names one organisation
    assert_error(access(client, other, patient.address), 403, "consent_required")


def test_break_glass_is_allowed_recorded_on_chain_and_flagged(
    client: TestClient,
    service: Service,
    make_app: MakeApp,
    patient: LocalAccount,
) -> None:
    headers, org = make_app({Role.EMERGENCY, Role.READER}, organisation="Emergency Unit", emergency=True)
    response = client.post(
        "/v1/access/emergency",
        headers=headers,
        json={"patient": patient.address, "scope": "*", "reason": "UNCONSCIOUS"},
    )
    assert response.status_code == 200, response.text
    answer = response.json()
    assert (answer["decision"], answer["breakGlass"], answer["reason"], answer["purpose"]) == (
        "break_glass",
        True,
        "UNCONSCIOUS",
        "ETREAT",
    )

    history = own_consents(client, service, patient)["history"]
    assert [(h["event"], h["transactionHash"]) for h in history] == [
        ("EmergencyAccessRecorded", answer["breakGlassTx"])
    ]
    assert history[0]["fields"] == {"accessor": org.address, "scope": "*", "purpose": "ETREAT", "reason": "UNCONSCIOUS"}
    (entry,) = client.get(f"/v1/audit/patients/{patient.address}", headers=headers).json()["entries"]
    assert entry["breakGlass"] is True and entry["breakGlassTx"] == answer["breakGlassTx"]
    assert entry["document"]["breakGlassTx"] == answer["breakGlassTx"]
    assert receipt(client, headers, entry["recordId"])["anchorer"] == org.address


def test_break_glass_without_the_emergency_role_is_refused_and_audited(
    client: TestClient,
    service: Service,
    make_app: MakeApp,
    patient: LocalAccount,
) -> None:
    headers, _ = make_app({Role.READER, Role.RELAYER})
    head = service.ledger.chain.block_number()
    refused = client.post(
        "/v1/access/emergency",
        headers=headers,
        json={"patient": patient.address, "scope": "*", "reason": "UNCONSCIOUS"},
    )
    assert_error(refused, 403, "forbidden")
    assert service.ledger.chain.block_number() == head  # nothing recorded on chain
    (entry,) = client.get(f"/v1/audit/patients/{patient.address}", headers=headers).json()["entries"]
    assert (entry["decision"], entry["reason"], entry["breakGlass"]) == (
        "denied",
        "not_authorised_for_break_glass",
        False,
    )


def test_access_errors_have_stable_codes(client: TestClient, make_app: MakeApp, patient: LocalAccount) -> None:
    admin, _ = make_app({Role.ADMIN})
    assert_error(access(client, admin, patient.address), 403, "forbidden")
    assert_error(
        client.post("/v1/access", json={"patient": patient.address, "scope": SCOPE, "purpose": PURPOSE}),
        401,
        "unauthenticated",
    )
    reader, _ = make_app({Role.READER, Role.RELAYER})
    assert_error(access(client, reader, patient.address, purpose="SHOPPING"), 400, "invalid_code")
    assert_error(access(client, reader, patient.address, scope="bad scope!"), 400, "invalid_code")
    assert_error(access(client, reader, "0x1234"), 422, "invalid_request")
    assert_error(client.post("/v1/access", headers=reader, content=b"{not json"), 422, "invalid_request")
    emergency, _ = make_app({Role.EMERGENCY}, organisation="Emergency Unit", emergency=True)
    assert_error(
        client.post("/v1/access/emergency", headers=emergency, json={"patient": patient.address, "scope": "*"}),
        422,
        "invalid_request",
    )
    assert_error(
        client.post(
            "/v1/access/emergency",
            headers=emergency,
            json={"patient": patient.address, "scope": "*", "reason": "no spaces"},
        ),
        400,
        "invalid_code",
    )
    # nothing malformed reached the trail
    assert client.get(f"/v1/audit/patients/{patient.address}", headers=reader).json()["entries"] == []


def test_break_glass_after_the_chain_role_was_revoked_is_refused_by_the_chain_and_audited(
    client: TestClient,
    service: Service,
    make_app: MakeApp,
    patient: LocalAccount,
) -> None:
    headers, org = make_app({Role.EMERGENCY, Role.READER}, organisation="Emergency Unit", emergency=True)
    contract = service.ledger.consents.contract
    service.ledger.chain.transact(contract.functions.revokeRole(EMERGENCY_ROLE, org.address), service.ledger.admin)
    refused = client.post(
        "/v1/access/emergency",
        headers=headers,
        json={"patient": patient.address, "scope": "Observation", "reason": "UNCONSCIOUS"},
    )
    assert_error(refused, 403, "missing_chain_role")
    (entry,) = client.get(f"/v1/audit/patients/{patient.address}", headers=headers).json()["entries"]
    assert (entry["decision"], entry["breakGlassTx"]) == ("denied", None)


def test_a_consent_that_expired_while_no_block_was_mined_is_refused(
    client: TestClient,
    service: Service,
    make_app: MakeApp,
    patient: LocalAccount,
) -> None:
    service.batcher.stop()  # nothing else mines: the chain's newest block time stands still
    headers, org = make_app({Role.READER, Role.RELAYER})
    until = int(time.time()) + 2
    relay(
        client,
        headers,
        "grants",
        signed_grant(service, patient, org.address, valid_from=chain_time(service) - 10, valid_until=until),
    )
    assert access(client, headers, patient.address).status_code == 200
    head = service.ledger.chain.block_number()
    time.sleep(max(0.0, until - time.time()) + 1.1)
    assert service.ledger.chain.block_number() == head
    assert service.ledger.consents.is_permitted(patient.address, org.address, SCOPE, PURPOSE)  # the stale view
    denied = assert_error(access(client, headers, patient.address), 403, "consent_required")
    assert denied["details"]["reason"] == "expired"


def test_break_glass_for_a_purpose_outside_the_emergency_set_is_refused_before_any_transaction(
    client: TestClient,
    service: Service,
    make_app: MakeApp,
    patient: LocalAccount,
) -> None:
    """Research (``HRESCH``) and payment (``HPAYMT``) are no emergencies: refused with a stable code,
    nothing sent on chain, and the attempt is in the audit trail like any other refusal. An
    emergency purpose goes on chain with the access."""
    headers, org = make_app({Role.EMERGENCY, Role.READER}, organisation="Emergency Unit", emergency=True)
    head = service.ledger.chain.block_number()
    for purpose in ("HRESCH", "HPAYMT"):
        refused = client.post(
            "/v1/access/emergency",
            headers=headers,
            json={"patient": patient.address, "scope": "*", "reason": "UNCONSCIOUS", "purpose": purpose},
        )
        error = assert_error(refused, 403, "not_an_emergency_purpose")
        assert error["details"]["purpose"] == purpose and error["details"]["audit_record_id"]
    assert service.ledger.chain.block_number() == head  # no transaction: the refusal came first
    entries = client.get(f"/v1/audit/patients/{patient.address}", headers=headers).json()["entries"]
    assert [(e["decision"], e["purpose"], e["reason"], e["breakGlass"]) for e in entries] == [
        ("denied", "HRESCH", "not_an_emergency_purpose", False),
        ("denied", "HPAYMT", "not_an_emergency_purpose", False),
    ]

    allowed = client.post(
        "/v1/access/emergency",
        headers=headers,
        json={"patient": patient.address, "scope": "*", "reason": "UNCONSCIOUS", "purpose": "BTG"},
    )
    assert allowed.status_code == 200, allowed.text
    history = own_consents(client, service, patient)["history"]
    assert [(h["event"], h["fields"]) for h in history] == [
        ("EmergencyAccessRecorded", {"accessor": org.address, "scope": "*", "purpose": "BTG", "reason": "UNCONSCIOUS"})
    ]
