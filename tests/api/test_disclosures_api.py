"""The accounting of disclosures (HIPAA 164.528) through the API: over a scenario with several
organisations and purposes, a guardian's grant, a revocation and break-glass access it is the access
trail exactly, each entry's receipt verifies with ``careledger-audit verify``, the printable page
escapes what organisations named themselves, the FHIR Bundle validates as R4, and only the patient's
own session reads any of it."""

from __future__ import annotations

import base64
import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from fastapi.testclient import TestClient
from fhir.resources.R4B.bundle import Bundle
from typer.testing import CliRunner

from api.service import Service
from ledger.auditor.cli import app as auditor
from ledger.disclosures import accounting
from ledger.disclosures.period import earliest_start
from ledger.disclosures.printable import CONTENT_SECURITY_POLICY
from ledger.store.apps import Role
from tests.api.conftest import MakeApp
from tests.api.test_consent_api import assert_error, chain_time, signed_grant, signed_guardian, signed_revocation
from tests.support.chain_under_test import ChainUnderTest
from tests.support.patient_sessions import sign_in

runner = CliRunner()
HOSTILE_NAME = '<script>alert("owned")</script> & <img src=x onerror=alert(1)> Clinic'
SECTIONS = {"allowed": "disclosures", "break_glass": "breakGlass", "denied": "denied"}
FORMATS = ("", "/html", "/fhir")


LAB_ADDRESS = {
    "lines": ["12 Harbour Street", "Unit 4"],
    "city": "Portsmouth",
    "state": None,
    "postalCode": "PO1 2AB",
    "country": "GB",
}


def relay(client: TestClient, path: str, body: dict[str, Any]) -> None:
    response = client.post(f"/v1/patient/{path}", json=body)  # the patient's own relay: no API key
    assert response.status_code == 200, response.text


def access(client: TestClient, headers: dict[str, str], patient: str, scope: str, purpose: str) -> int:
    body = {"patient": patient, "scope": scope, "purpose": purpose}
    return client.post("/v1/access", headers=headers, json=body).status_code


def break_glass(client: TestClient, headers: dict[str, str], patient: str) -> int:
    body = {"patient": patient, "scope": "*", "reason": "UNCONSCIOUS"}
    return client.post("/v1/access/emergency", headers=headers, json=body).status_code


def accounting_of(client: TestClient, patient: str, token: dict[str, str], **period: str) -> dict[str, Any]:
    params = {"from": period["start"], "to": period["end"]} if period else None
    response = client.get(f"/v1/patient/{patient}/disclosures", headers=token, params=params)
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    answer: dict[str, Any] = response.json()
    return answer


def anchored_accounting(client: TestClient, patient: str, token: dict[str, str]) -> dict[str, Any]:
    """The accounting once every entry's audit record is anchored for good (has its receipt)."""
    deadline = time.monotonic() + 60
    while True:
        answer = accounting_of(client, patient, token)
        entries = [e for name in SECTIONS.values() for e in answer[name]]
        if all(e["receipt"] is not None for e in entries):
            return answer
        assert time.monotonic() < deadline, [e["status"] for e in entries]
        time.sleep(0.2)


def build_scenario(client: TestClient, service: Service, make_app: MakeApp, patient: LocalAccount) -> None:
    """Three organisations; grants by the patient and by a guardian; allowed and denied accesses for
    several purposes; a revocation; a break-glass access and a refused one."""
    hospital, hospital_org = make_app({Role.READER})
    lab, lab_org = make_app({Role.READER}, organisation="City Lab")
    er, _ = make_app({Role.READER, Role.EMERGENCY}, organisation="City ER", emergency=True)
    admin, _ = make_app({Role.ADMIN}, organisation="Operator")
    registered = client.put(f"/v1/admin/organisations/{lab_org.id}/postal-address", json=LAB_ADDRESS, headers=admin)
    assert registered.status_code == 200 and registered.json()["postalAddress"] == LAB_ADDRESS, registered.text
    who = patient.address
    guardian: LocalAccount = Account.create()
    relay(client, "grants", signed_grant(service, patient, hospital_org.address, "Observation", "TREAT"))
    relay(client, "guardians", signed_guardian(service, patient, guardian.address, chain_time(service) + 86_400))
    relay(client, "grants", signed_grant(service, patient, lab_org.address, "*", "HOPERAT", signer=guardian))
    assert access(client, hospital, who, "Observation", "TREAT") == 200
    assert access(client, lab, who, "Condition", "HOPERAT") == 200  # under the guardian's grant
    assert access(client, lab, who, "Observation", "HRESCH") == 403  # no consent for research
    relay(client, "revocations", signed_revocation(service, patient, hospital_org.address, "Observation", "TREAT"))
    assert access(client, hospital, who, "Observation", "TREAT") == 403  # revoked
    assert break_glass(client, er, who) == 200
    assert break_glass(client, lab, who) == 403  # no emergency role


def test_the_accounting_is_the_access_trail_and_every_receipt_verifies(
    client: TestClient,
    service: Service,
    make_app: MakeApp,
    patient: LocalAccount,
    api_settings: Any,
    chain_under_test: ChainUnderTest,
    tmp_path: Path,
) -> None:
    build_scenario(client, service, make_app, patient)
    token = sign_in(client, service, patient)
    answer = anchored_accounting(client, patient.address, token)
    trail = client.get(f"/v1/patient/{patient.address}/accesses", headers=token).json()
    assert trail["nextAfter"] is None and len(trail["entries"]) == 6

    # Each attempt of the trail is in exactly one section (its decision's), in the trail's order,
    # with the same facts and the same anchored document.
    for decision, name in SECTIONS.items():
        expected = [e for e in trail["entries"] if e["decision"] == decision]
        got = answer[name]
        assert [e["id"] for e in got] == [e["id"] for e in expected], name
        for mine, theirs in zip(got, expected, strict=True):
            assert mine["recordId"] == theirs["recordId"]
            assert mine["recipient"] == {
                "name": theirs["organisation"]["name"],
                "account": theirs["organisation"]["address"],
                "postalAddress": LAB_ADDRESS if theirs["organisation"]["name"] == "City Lab" else None,
            }
            for field in ("appId", "scope", "purpose", "decision", "reason", "breakGlassTx", "time", "document"):
                assert mine[field] == theirs[field], field
            assert mine["date"] == theirs["document"]["time"]
    assert [(e["recipient"]["name"], e["purpose"], e["description"]) for e in answer["disclosures"]] == [
        ("General Hospital", "TREAT", "test results and measurements (Observation)"),
        ("City Lab", "HOPERAT", "diagnoses and health problems (Condition)"),
    ]
    assert [(e["recipient"]["name"], e["reason"]) for e in answer["breakGlass"]] == [("City ER", "UNCONSCIOUS")]
    assert [(e["recipient"]["name"], e["reason"]) for e in answer["denied"]] == [
        ("City Lab", "no_consent"),
        ("General Hospital", "revoked"),
        ("City Lab", "not_authorised_for_break_glass"),
    ]
    assert answer["denied"][1]["reasonDescription"] == "you had withdrawn your consent (revoked)"
    assert any("postal address" in note for note in answer["notes"])
    deployment = service.ledger.deployment
    assert answer["deployment"] == {"chainId": deployment.chain_id, "recordAnchor": deployment.record_anchor}
    today = datetime.now(UTC).date()
    assert answer["period"] == {"from": str(earliest_start(today)), "to": str(today)}  # six years by default

    # Every entry's receipt verifies with the auditor, against the entry's anchored document.
    chain = ["--data-dir", str(api_settings.data_dir), *chain_under_test.rpc_options()]
    for entry in [e for name in SECTIONS.values() for e in answer[name]]:
        receipt, document = tmp_path / f"{entry['id']}.receipt.json", tmp_path / f"{entry['id']}.json"
        receipt.write_text(json.dumps(entry["receipt"]))
        document.write_text(json.dumps(entry["document"]))
        result = runner.invoke(auditor, ["verify", "--receipt", str(receipt), "--document", str(document), *chain])
        assert result.exit_code == 0, (entry["id"], result.output)
        assert "VALID" in result.output

    # The FHIR Bundle: one R4 AuditEvent per entry, carrying the same document and receipt.
    response = client.get(f"/v1/patient/{patient.address}/disclosures/fhir", headers=token)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/fhir+json")
    bundle = response.json()
    Bundle.model_validate(bundle)
    events = [e["resource"] for e in bundle["entry"]]
    assert [e["id"] for e in events] == [f"{e['id']}-authz" for e in trail["entries"]]
    assert [e["entity"][-1]["what"]["identifier"]["value"] for e in events] == [e["recordId"] for e in trail["entries"]]
    by_id = {f"{e['id']}-authz": e for name in SECTIONS.values() for e in answer[name]}
    for event in events:
        entry = by_id[event["id"]]
        details = {d["type"]: d for d in event["entity"][-1]["detail"]}
        assert json.loads(base64.b64decode(details["document"]["valueBase64Binary"])) == entry["document"]
        assert json.loads(base64.b64decode(details["receipt"]["valueBase64Binary"])) == entry["receipt"]
        assert event["outcome"] == ("8" if entry["decision"] == "denied" else "0")
        purposes = [c["coding"][0]["code"] for c in event["purposeOfEvent"]]
        assert purposes == ([entry["purpose"], "BTG"] if entry["decision"] == "break_glass" else [entry["purpose"]])
        assert event["subtype"][0]["code"] == ("AuthZ-Role" if entry["decision"] == "break_glass" else "AuthZ-Consent")
        recipient = next(a for a in event["agent"] if a["requestor"])
        assert recipient["who"]["display"] == entry["recipient"]["name"]
        assert recipient["who"]["identifier"]["value"].endswith(entry["recipient"]["account"])
        if entry["recipient"]["postalAddress"] is None:
            assert "contained" not in event and "reference" not in recipient["who"]
        else:  # the recipient's address, in a contained Organization the agent references
            (organisation,) = event["contained"]
            assert recipient["who"]["reference"] == f"#{organisation['id']}"
            assert organisation["name"] == "City Lab" and organisation["address"] == [
                {"use": "work", "type": "postal", "line": LAB_ADDRESS["lines"], "city": "Portsmouth",
                 "postalCode": "PO1 2AB", "country": "GB"}
            ]  # fmt: skip

    # The printable page lists the same entries in its three sections.
    page = client.get(f"/v1/patient/{patient.address}/disclosures/html", headers=token)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert page.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    for name, count in (("Disclosures", 2), ("Emergency (break-glass) accesses", 1), ("Denied attempts", 3)):
        assert f"{name} ({count})" in page.text
    assert all(e["recordId"] in page.text for e in trail["entries"])
    assert "12 Harbour Street, Unit 4, PO1 2AB, Portsmouth, GB" in page.text  # City Lab's, as registered
    assert "postal address: not registered" in page.text  # the others registered none


def test_hostile_organisation_names_are_escaped_in_the_page(
    client: TestClient, service: Service, make_app: MakeApp, patient: LocalAccount
) -> None:
    headers, org = make_app({Role.READER}, organisation=HOSTILE_NAME)
    assert org.name == HOSTILE_NAME
    assert access(client, headers, patient.address, "Observation", "TREAT") == 403
    token = sign_in(client, service, patient)
    page = client.get(f"/v1/patient/{patient.address}/disclosures/html", headers=token).text
    assert "<script" not in page and "<img" not in page and "onerror=alert(1)>" not in page
    assert "&lt;script&gt;alert(&quot;owned&quot;)&lt;/script&gt; &amp; &lt;img src=x onerror=alert(1)&gt;" in page
    assert "Content-Security-Policy" in page and "script-src" not in CONTENT_SECURITY_POLICY
    assert accounting_of(client, patient.address, token)["denied"][0]["recipient"]["name"] == HOSTILE_NAME


@pytest.mark.parametrize("path", FORMATS)
def test_only_the_patients_own_session_reads_the_accounting(
    client: TestClient, service: Service, make_app: MakeApp, patient: LocalAccount, path: str
) -> None:
    headers, _ = make_app({Role.READER, Role.ADMIN})
    url = f"/v1/patient/{patient.address}/disclosures{path}"
    assert_error(client.get(url), 401, "unauthenticated")
    assert_error(client.get(url, headers=headers), 401, "unauthenticated")  # an organisation's API key
    other: LocalAccount = Account.create()
    assert_error(client.get(url, headers=sign_in(client, service, other)), 403, "forbidden")
    assert client.get(url, headers=sign_in(client, service, patient)).status_code == 200


@pytest.mark.parametrize("path", FORMATS)
def test_a_period_inverted_or_over_six_years_is_refused(
    client: TestClient, service: Service, patient: LocalAccount, path: str
) -> None:
    token = sign_in(client, service, patient)
    url = f"/v1/patient/{patient.address}/disclosures{path}"
    inverted = client.get(url, headers=token, params={"from": "2026-03-02", "to": "2026-03-01"})
    assert assert_error(inverted, 400, "invalid_period")["details"]["field"] == "from"
    too_long = client.get(url, headers=token, params={"from": "2019-12-31", "to": "2025-12-31"})
    assert assert_error(too_long, 400, "period_too_long")["details"]["earliest_start"] == "2020-01-01"
    six_years = client.get(url, headers=token, params={"from": "2020-01-01", "to": "2025-12-31"})
    assert six_years.status_code == 200, six_years.text
    assert_error(client.get(url, headers=token, params={"from": "yesterday"}), 422, "invalid_request")


def test_a_period_holds_only_its_own_days(
    client: TestClient, service: Service, make_app: MakeApp, patient: LocalAccount
) -> None:
    headers, _ = make_app({Role.READER})
    assert access(client, headers, patient.address, "Observation", "TREAT") == 403
    token = sign_in(client, service, patient)
    today = datetime.now(UTC).date()
    assert len(accounting_of(client, patient.address, token, start=str(today), end=str(today))["denied"]) == 1
    yesterday = str(today - timedelta(days=1))
    before = accounting_of(client, patient.address, token, start="2021-01-01", end=yesterday)
    assert (before["disclosures"], before["breakGlass"], before["denied"]) == ([], [], [])
    assert before["period"] == {"from": "2021-01-01", "to": yesterday}


def test_an_accounting_over_the_cap_is_refused(
    client: TestClient, service: Service, make_app: MakeApp, patient: LocalAccount, monkeypatch: pytest.MonkeyPatch
) -> None:
    headers, _ = make_app({Role.READER})
    for _ in range(3):
        assert access(client, headers, patient.address, "Observation", "TREAT") == 403
    monkeypatch.setattr(accounting, "MAX_ENTRIES", 2)
    token = sign_in(client, service, patient)
    refused = client.get(f"/v1/patient/{patient.address}/disclosures", headers=token)
    assert assert_error(refused, 400, "accounting_too_large")["details"]["limit"] == 2
    monkeypatch.setattr(accounting, "MAX_ENTRIES", 3)
    assert len(accounting_of(client, patient.address, token)["denied"]) == 3


def test_the_page_learns_where_to_check_receipts(client: TestClient, service: Service) -> None:
    deployment = service.ledger.deployment
    assert client.get("/v1/patient/anchoring").json() == {
        "chainId": deployment.chain_id,
        "recordAnchor": deployment.record_anchor,
        "publicRpcUrl": None,
        "service": service.settings.origin,
    }
