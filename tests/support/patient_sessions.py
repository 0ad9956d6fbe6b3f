"""Signing a patient in to the API (a signed ``PatientSession`` for a session token), as the page does."""

from __future__ import annotations

import time
from typing import Any

import httpx
from eth_account.signers.local import LocalAccount
from fastapi.testclient import TestClient

from api.service import Service
from ledger.consent.patient_session import PatientSession, session_domain, session_typed_data
from ledger.consent.typed_data import sign_typed_data


def session_body(
    client: TestClient,
    service: Service,
    signer: LocalAccount,
    patient: str | None = None,
    *,
    issued_at: int | None = None,
    lasts: int = 600,
    origin: str | None = None,
) -> dict[str, Any]:
    """A ``PatientSession`` signed by ``signer`` for ``patient`` (default: the signer) over a fresh
    challenge of the service, at the origin it names (unless ``origin`` overrides it)."""
    who = patient or signer.address
    challenge = client.post("/v1/patient/challenges", json={"patient": who})
    assert challenge.status_code == 200, challenge.text
    issued = int(time.time()) if issued_at is None else issued_at
    session = PatientSession(
        who,
        origin or challenge.json()["origin"],
        bytes.fromhex(challenge.json()["challenge"][2:]),
        issued,
        issued + lasts,
    )
    domain = session_domain(service.ledger.chain.chain_id, service.ledger.consents.address)
    return {
        "patient": session.patient,
        "origin": session.origin,
        "challenge": "0x" + session.challenge.hex(),
        "issuedAt": session.issued_at,
        "expiresAt": session.expires_at,
        "signature": "0x" + sign_typed_data(signer, session_typed_data(domain, session)).hex(),
    }


def sign_in(client: TestClient, service: Service, patient: LocalAccount) -> dict[str, str]:
    response = client.post("/v1/patient/sessions", json=session_body(client, service, patient))
    assert response.status_code == 200, response.text
    assert response.json()["patient"] == patient.address
    return {"Authorization": f"Bearer {response.json()['token']}"}


def own_consents(client: TestClient, service: Service, patient: LocalAccount) -> dict[str, Any]:
    """The patient's own view of their consents, guardians and history (through a patient session)."""
    response = client.get(f"/v1/patient/{patient.address}/consents", headers=sign_in(client, service, patient))
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


def sign_in_over_http(base: str, patient: LocalAccount, lasts: int = 3600) -> str:
    """Sign ``patient`` in to a served instance at ``base`` (as the patient page does); its session token."""
    signing = httpx.get(f"{base}/v1/patient/signing", timeout=30).json()
    challenge = httpx.post(f"{base}/v1/patient/challenges", json={"patient": patient.address}, timeout=30).json()
    issued = int(time.time())
    session = PatientSession(
        patient.address, challenge["origin"], bytes.fromhex(challenge["challenge"][2:]), issued, issued + lasts
    )
    body = {
        "patient": session.patient,
        "origin": session.origin,
        "challenge": challenge["challenge"],
        "issuedAt": session.issued_at,
        "expiresAt": session.expires_at,
        "signature": "0x" + sign_typed_data(patient, session_typed_data(signing["session"]["domain"], session)).hex(),
    }
    response = httpx.post(f"{base}/v1/patient/sessions", json=body, timeout=30)
    assert response.status_code == 200, response.text
    token: str = response.json()["token"]
    return token
