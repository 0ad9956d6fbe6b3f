"""A FHIR client this project did not write (``fhirpy``, from PyPI) against a running ``careledger serve``.

It reads the CapabilityStatement, creates a Consent the patient signed, searches it (as the grantee
organisation and as the patient's own session), withdraws it, is refused an unsupported one with an
OperationOutcome, searches the AuditEvents of allowed, denied and break-glass accesses (page by
page, as each side may see them), and fetches the Provenance of an anchored record. The client side signs as a
wallet would, from what the service publishes (``GET /v1/patient/signing``, the patient's nonce),
with the terms digest computed here from RFC 8785 and SHA-256 (not with the ledger's code).
Everything received validates with ``fhir.resources.R4B``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import rfc8785
from eth_account import Account
from eth_account.signers.local import LocalAccount
from fhir.resources.R4B import get_fhir_model_class
from fhirpy import SyncFHIRClient
from fhirpy.base.exceptions import OperationOutcome

from tests.support.chain_under_test import ChainUnderTest
from tests.support.fhir_consents import pcf_consent
from tests.support.postgres import store_env
from tests.support.processes import create_admin, free_port, running_service, service_env, setup_app

pytestmark = pytest.mark.slow
SIGNATURE_EXTENSION = "urn:careledger:fhir:eip712-signature"


@dataclass(frozen=True)
class Served:
    base: str
    app_key: str
    emergency_key: str


@pytest.fixture(scope="module")
def served(
    tmp_path_factory: pytest.TempPathFactory, chain_under_test: ChainUnderTest, request: pytest.FixtureRequest
) -> Iterator[Served]:
    env = service_env(
        tmp_path_factory.mktemp("fhir-client") / "data",
        CARELEDGER_MAX_BATCH_AGE="0.3",
        **chain_under_test.env(),
        **store_env(request),
    )
    port = free_port()
    with chain_under_test.isolated():
        admin_key = create_admin(env)
        with running_service(env, port):
            base = f"http://127.0.0.1:{port}"
            app_key = setup_app(base, admin_key, ["reader", "registrar", "relayer"])
            emergency_key = setup_app(base, admin_key, ["reader", "emergency"], "City ER", emergency=True)
            yield Served(base, app_key, emergency_key)


def validated(resource: Any) -> dict[str, Any]:
    data = dict(resource.serialize()) if hasattr(resource, "serialize") else dict(resource)
    get_fhir_model_class(data["resourceType"]).model_validate(data)
    return data


def code32(code: str) -> str:
    return "0x" + code.encode("ascii").ljust(32, b"\0").hex()


def terms_of(consent: dict[str, Any]) -> bytes:
    """What the patient signs: SHA-256 of the RFC 8785 form without id, meta, status and the signature."""
    signed = {k: v for k, v in consent.items() if k not in ("id", "meta", "status")}
    extensions = [e for e in signed.pop("extension", []) if e["url"] != SIGNATURE_EXTENSION]
    if extensions:
        signed["extension"] = extensions
    return hashlib.sha256(rfc8785.dumps(signed)).digest()


def sign(base: str, patient: LocalAccount, consent: dict[str, Any], grantee: str) -> dict[str, Any]:
    """``consent`` with the patient's signature: ConsentGrantSet when active, ConsentRevocationSet when inactive."""
    signing = httpx.get(f"{base}/v1/patient/signing").json()["consent"]
    nonce = httpx.get(f"{base}/v1/patient/{patient.address}/nonce").json()["nonce"]
    provision = consent["provision"]
    deadline = int(time.time()) + 600
    primary = "ConsentGrantSet" if consent["status"] == "active" else "ConsentRevocationSet"
    message: dict[str, Any] = {
        "patient": patient.address,
        "grantee": grantee,
        "scopes": [code32(c["code"]) for c in provision["class"]],
        "purposes": [code32(p["code"]) for p in provision["purpose"]],
        "terms": "0x" + terms_of(consent).hex(),
        "signer": patient.address,
        "nonce": nonce,
        "deadline": deadline,
    }
    if primary == "ConsentGrantSet":
        message |= {"validFrom": 1577836800, "validUntil": 4102444800}  # 2020-01-01 to the end of 2099-12-31
    typed = {
        "types": {"EIP712Domain": signing["types"]["EIP712Domain"], primary: signing["types"][primary]},
        "primaryType": primary,
        "domain": signing["domain"],
        "message": message,
    }
    signature = patient.sign_typed_data(full_message=typed).signature
    extension = {
        "url": SIGNATURE_EXTENSION,
        "extension": [
            {"url": "deadline", "valueUnsignedInt": deadline},
            {"url": "signature", "valueBase64Binary": base64.b64encode(bytes(signature)).decode()},
        ],
    }
    return {**{k: v for k, v in consent.items() if k != "extension"}, "extension": [extension]}


def patient_session(base: str, patient: LocalAccount) -> str:
    challenge = httpx.post(f"{base}/v1/patient/challenges", json={"patient": patient.address}).json()
    signing = httpx.get(f"{base}/v1/patient/signing").json()["session"]
    now = int(time.time())
    message = {
        "patient": patient.address,
        "origin": challenge["origin"],
        "challenge": challenge["challenge"],
        "issuedAt": now,
        "expiresAt": now + 600,
    }
    typed = {
        "types": {
            "EIP712Domain": signing["types"]["EIP712Domain"],
            "PatientSession": signing["types"]["PatientSession"],
        },
        "primaryType": "PatientSession",
        "domain": signing["domain"],
        "message": message,
    }
    signature = "0x" + bytes(patient.sign_typed_data(full_message=typed).signature).hex()
    answer = httpx.post(f"{base}/v1/patient/sessions", json={**message, "signature": signature})
    assert answer.status_code == 200, answer.text
    token: str = answer.json()["token"]
    return token


def test_a_fhir_client_creates_searches_and_withdraws_a_consent(served: Served) -> None:
    organisation = SyncFHIRClient(f"{served.base}/fhir/r4", authorization=f"Bearer {served.app_key}")
    statement = validated(organisation.execute("metadata", method="get"))
    assert {r["type"] for r in statement["rest"][0]["resource"]} == {"Consent", "AuditEvent", "Provenance"}

    organisations = httpx.get(f"{served.base}/v1/patient/organisations").json()["organisations"]
    (grantee,) = [o["address"] for o in organisations if o["name"] == "General Hospital"]  # the app's
    patient: LocalAccount = Account.create()
    unsigned = pcf_consent(patient.address, grantee, ("TREAT", "HPAYMT", "HOPERAT"))
    consent = organisation.resource("Consent", **sign(served.base, patient, unsigned, grantee))
    consent.save()
    created = validated(consent)
    assert created["status"] == "active" and consent.id

    own = SyncFHIRClient(f"{served.base}/fhir/r4", authorization=f"Bearer {patient_session(served.base, patient)}")
    for client in (organisation, own):
        found = client.resources("Consent").search(patient=f"Patient/{patient.address}", status="active").fetch()
        assert [validated(c)["id"] for c in found] == [consent.id]
        validated(client.execute("Consent", method="get", params={"patient": patient.address}))
        assert validated(client.reference("Consent", consent.id).to_resource())["status"] == "active"

    withdrawal = organisation.resource(
        "Consent", **sign(served.base, patient, {**created, "status": "inactive"}, grantee)
    )
    withdrawal.save()
    assert validated(withdrawal)["status"] == "inactive"
    assert organisation.resources("Consent").search(patient=patient.address, status="active").fetch() == []
    inactive = own.resources("Consent").search(status="inactive").fetch()
    assert [validated(c)["meta"]["versionId"] for c in inactive] == ["2"]

    nested = pcf_consent(patient.address, grantee, provision=[{"type": "deny"}])
    with pytest.raises(OperationOutcome) as refused:
        organisation.resource("Consent", **sign(served.base, patient, nested, grantee)).save()
    issue = validated(refused.value.resource)["issue"][0]
    assert issue["code"] == "not-supported" and issue["expression"] == ["Consent.provision.provision"]


def test_a_fhir_client_fetches_the_provenance_of_an_anchored_record(served: Served) -> None:
    headers = {"Authorization": f"Bearer {served.app_key}"}
    patient = Account.create().address
    document = {"resourceType": "Observation", "status": "final", "code": {"text": "heart rate"}}
    ack = httpx.post(f"{served.base}/v1/records", json={"patient": patient, "document": document}, headers=headers)
    record_id = ack.json()["recordId"]
    receipt = httpx.get(
        f"{served.base}/v1/records/{record_id}/receipt",
        params={"wait": "true", "timeout": 30},
        headers=headers,
        timeout=40,
    )
    assert receipt.status_code == 200, receipt.text

    client = SyncFHIRClient(f"{served.base}/fhir/r4", authorization=f"Bearer {served.app_key}")
    provenance = validated(client.reference("Provenance", record_id).to_resource())
    assert provenance["target"][0]["identifier"]["value"] == record_id
    carried = base64.b64decode(provenance["signature"][0]["data"])
    verdict = httpx.post(f"{served.base}/v1/verify", json={"receipt": json.loads(carried)})
    assert verdict.status_code == 200 and verdict.json()["match"] is True, verdict.text
    assert json.loads(carried) == receipt.json()


def access(base: str, key: str, path: str, body: dict[str, str]) -> int:
    return httpx.post(f"{base}/v1/access{path}", json=body, headers={"Authorization": f"Bearer {key}"}).status_code


def anchored(event: dict[str, Any]) -> bool:
    return any(d["type"] == "transaction" for d in event["entity"][-1]["detail"])


def test_a_fhir_client_searches_audit_events_after_allowed_denied_and_break_glass_accesses(served: Served) -> None:
    organisation = SyncFHIRClient(f"{served.base}/fhir/r4", authorization=f"Bearer {served.app_key}")
    organisations = httpx.get(f"{served.base}/v1/patient/organisations").json()["organisations"]
    (grantee,) = [o["address"] for o in organisations if o["name"] == "General Hospital"]
    patient: LocalAccount = Account.create()
    organisation.resource(
        "Consent", **sign(served.base, patient, pcf_consent(patient.address, grantee), grantee)
    ).save()
    who = {"patient": patient.address}
    assert access(served.base, served.app_key, "", {**who, "scope": "Observation", "purpose": "TREAT"}) == 200
    assert access(served.base, served.app_key, "", {**who, "scope": "Observation", "purpose": "HRESCH"}) == 403
    assert (
        access(served.base, served.emergency_key, "/emergency", {**who, "scope": "*", "reason": "UNCONSCIOUS"}) == 200
    )

    own = SyncFHIRClient(f"{served.base}/fhir/r4", authorization=f"Bearer {patient_session(served.base, patient)}")
    search = own.resources("AuditEvent").search(patient=f"Patient/{patient.address}")
    events = [validated(e) for e in search.limit(2).fetch_all()]  # three pages, following next links
    assert [validated(e)["id"] for e in search.fetch()] == [e["id"] for e in events]  # one page of 50
    kinds = [(e["id"].split("-")[1], e["outcome"]) for e in events]
    assert kinds == [("authz", "0"), ("read", "0"), ("authz", "8"), ("authz", "0"), ("read", "0")]
    *_, glass, glass_read = events
    for event in (glass, glass_read):
        assert [c["coding"][0]["code"] for c in event["purposeOfEvent"]] == ["ETREAT", "BTG"]
    assert glass_read["entity"][0]["what"]["reference"] == f"Patient/{patient.address}"
    assert [validated(e)["id"] for e in own.resources("AuditEvent").search(outcome="8").fetch()] == [events[2]["id"]]
    validated(own.execute("AuditEvent", method="get", params={"date": ["ge2020-01-01", "lt2100-01-01"]}))

    # The organisation sees its own apps' attempts only: not City ER's break-glass.
    seen = organisation.resources("AuditEvent").search(patient=patient.address).fetch_all()
    assert [validated(e)["id"] for e in seen] == [e["id"] for e in events[:3]]

    # Once the audit records are anchored, entity.detail carries transaction, root and receipt links.
    deadline = time.monotonic() + 60
    while not all(anchored(e) for e in events):
        assert time.monotonic() < deadline, "the audit records were not anchored in time"
        time.sleep(0.3)
        events = [validated(own.reference("AuditEvent", e["id"]).to_resource()) for e in events]
    details = {d["type"]: d["valueString"] for d in events[0]["entity"][-1]["detail"] if "valueString" in d}
    assert details["root"].startswith("0x") and details["transaction"].startswith("0x")
    provenance = validated(own.execute(details["provenance-url"].removeprefix(own.url), method="get"))
    assert base64.b64decode(provenance["signature"][0]["data"])

    with pytest.raises(OperationOutcome) as refused:
        organisation.resources("AuditEvent").search(subject="x").fetch()
    assert validated(refused.value.resource)["issue"][0]["code"] == "invalid"
