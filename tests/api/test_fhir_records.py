"""FHIR records over HTTP: R4 accepted by default, R5 when asked, the version kept with the record,
refusals carrying an OperationOutcome, and Bundles registered whole or one record per entry."""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient
from fhir.resources.R4B.operationoutcome import OperationOutcome

from api.service import Service
from ledger.records.hashing import digest_json
from ledger.store.apps import Role
from tests.api.conftest import PATIENT, MakeApp
from tests.api.test_records_api import receipt_of
from tests.support.paths import TESTDATA

R4_EXAMPLES = sorted((TESTDATA / "fhir" / "r4").glob("*.json"))
R5_EXAMPLES = sorted((TESTDATA / "fhir" / "r5").glob("*.json"))
R5 = "application/fhir+json; fhirVersion=5.0"


def example(path: Path) -> dict[str, Any]:
    document: dict[str, Any] = orjson.loads(path.read_bytes())
    return document


def r4(name: str) -> dict[str, Any]:
    return example(TESTDATA / "fhir" / "r4" / f"{name}.json")


def record_count(service: Service) -> int:
    return int(service.db.conn.execute("SELECT COUNT(*) FROM records").fetchone()[0])


@pytest.fixture
def app_key(make_app: MakeApp) -> dict[str, str]:
    headers, _ = make_app({Role.REGISTRAR, Role.READER})
    return headers


@pytest.mark.parametrize("path", R4_EXAMPLES, ids=lambda p: p.stem)
def test_valid_r4_resources_are_registered_as_r4(client: TestClient, app_key: dict[str, str], path: Path) -> None:
    document = example(path)
    response = client.post("/v1/records", json={"patient": PATIENT, "document": document}, headers=app_key)
    assert response.status_code == 202, response.text
    assert response.json()["digest"] == "0x" + digest_json(document).hex()
    record = client.get(f"/v1/records/{response.json()['recordId']}", headers=app_key).json()
    assert (record["fhirVersion"], record["contentType"]) == ("4.0", "application/fhir+json")


@pytest.mark.parametrize("path", R5_EXAMPLES, ids=lambda p: p.stem)
def test_r5_resources_are_registered_as_r5_when_asked(
    client: TestClient, app_key: dict[str, str], service: Service, path: Path
) -> None:
    document = example(path)
    as_r4 = client.post("/v1/records", json={"patient": PATIENT, "document": document}, headers=app_key)
    assert (as_r4.status_code, as_r4.json()["code"]) == (400, "invalid_fhir")
    assert record_count(service) == 0
    asked = client.post(
        "/v1/records", json={"patient": PATIENT, "document": document, "contentType": R5}, headers=app_key
    )
    assert asked.status_code == 202, asked.text
    record = client.get(f"/v1/records/{asked.json()['recordId']}", headers=app_key).json()
    assert (record["fhirVersion"], record["contentType"]) == ("5.0", R5)


def test_the_request_content_type_or_the_setting_may_ask_for_r5(
    client: TestClient, app_key: dict[str, str], service: Service, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``Content-Type: application/fhir+json; fhirVersion=5.0`` on the request is the default for its
    records; a record's own ``contentType`` wins over it; the setting is the default of both."""
    document = example(R5_EXAMPLES[0])
    body = orjson.dumps({"patient": PATIENT, "document": document})
    by_header = client.post("/v1/records", content=body, headers={**app_key, "Content-Type": R5})
    assert by_header.status_code == 202, by_header.text
    assert client.get(f"/v1/records/{by_header.json()['recordId']}", headers=app_key).json()["fhirVersion"] == "5.0"
    own = orjson.dumps(
        {"patient": PATIENT, "document": document, "contentType": "application/fhir+json; fhirVersion=4.0"}
    )
    overridden = client.post("/v1/records", content=own, headers={**app_key, "Content-Type": R5})
    assert (overridden.status_code, overridden.json()["details"]["fhirVersion"]) == (400, "4.0")
    bulk = orjson.dumps({"records": [{"patient": PATIENT, "document": document}]})
    assert client.post("/v1/records/bulk", content=bulk, headers={**app_key, "Content-Type": R5}).status_code == 202
    monkeypatch.setattr(service.settings, "default_fhir_version", "5.0")
    by_setting = client.post("/v1/records", content=body, headers={**app_key, "Content-Type": "application/json"})
    assert by_setting.status_code == 202, by_setting.text
    refused = client.post("/v1/records", json={"patient": PATIENT, "document": r4("Encounter")}, headers=app_key)
    assert (refused.status_code, refused.json()["details"]["fhirVersion"]) == (400, "5.0")


@pytest.mark.parametrize(
    ("document", "field"),
    [
        ({**r4("MedicationRequest"), "medication": {"concept": {"text": "amlodipine"}}}, "medication"),
        ({**r4("Encounter"), "class": [{"coding": [{"code": "AMB"}]}]}, "class"),
        ({k: v for k, v in r4("Observation").items() if k != "code"}, "code"),
        ({**r4("Patient"), "birthDate": "25 Dec 1974"}, "birthDate"),
    ],
    ids=["R5 medication", "R5 class", "no code", "bad date"],
)
def test_malformed_r4_resources_are_refused_with_an_operation_outcome(
    client: TestClient, app_key: dict[str, str], service: Service, document: dict[str, Any], field: str
) -> None:
    response = client.post("/v1/records", json={"patient": PATIENT, "document": document}, headers=app_key)
    assert (response.status_code, response.json()["code"]) == (400, "invalid_fhir"), response.text
    details = response.json()["details"]
    assert field in [e["field"] for e in details["errors"]]
    outcome = OperationOutcome.model_validate(details["operationOutcome"])
    assert f"{document['resourceType']}.{field}" in [e for issue in outcome.issue for e in issue.expression or []]
    assert record_count(service) == 0


@pytest.mark.parametrize(
    ("content_type", "header", "code", "field"),
    [
        ("application/fhir+json; fhirVersion=3.0", None, "unsupported_fhir_version", "contentType"),
        (None, "application/fhir+json; fhirVersion=4.3", "unsupported_fhir_version", "Content-Type"),
        ("application/json; fhirVersion=5.0", None, "invalid_input", "contentType"),
    ],
)
def test_a_version_that_cannot_be_validated_is_refused(
    client: TestClient,
    app_key: dict[str, str],
    service: Service,
    content_type: str | None,
    header: str | None,
    code: str,
    field: str,
) -> None:
    body: dict[str, Any] = {"patient": PATIENT, "document": r4("Patient")}
    if content_type is not None:
        body["contentType"] = content_type
    headers = {**app_key, "Content-Type": header or "application/json"}
    response = client.post("/v1/records", content=orjson.dumps(body), headers=headers)
    assert (response.status_code, response.json()["code"]) == (400, code), response.text
    assert response.json()["details"]["field"] == field
    assert record_count(service) == 0


def test_a_bundle_is_one_record_by_default(client: TestClient, app_key: dict[str, str]) -> None:
    bundle = r4("Bundle-transaction")
    for body in ({"patient": PATIENT, "document": bundle}, {"patient": PATIENT, "document": bundle, "bundle": "whole"}):
        response = client.post("/v1/records", json=body, headers=app_key)
        assert response.status_code == 202, response.text
        assert set(response.json()) == {"recordId", "digest", "status"}
        assert response.json()["digest"] == "0x" + digest_json(bundle).hex()


@pytest.mark.parametrize("name", ["Bundle-transaction", "Bundle-collection"])
def test_a_bundle_per_entry_is_one_record_per_entry_in_entry_order(
    client: TestClient, app_key: dict[str, str], name: str
) -> None:
    """Each entry's digest is its resource's canonical digest: the receipt of each verifies with that
    resource as the document, as a FHIR client holding just the resource would verify it."""
    bundle = r4(name)
    metadata = {"source": "ehr-feed"}
    body = {"patient": PATIENT, "document": bundle, "bundle": "entries", "metadata": metadata}
    response = client.post("/v1/records", json=body, headers=app_key)
    assert response.status_code == 202, response.text
    answer = response.json()
    entries = bundle["entry"]
    assert answer["count"] == len(entries) == len(answer["records"])
    assert len({a["recordId"] for a in answer["records"]}) == len(entries)
    for index, (ack, entry) in enumerate(zip(answer["records"], entries, strict=True)):
        assert (ack["entry"], ack["fullUrl"], ack["status"]) == (index, entry.get("fullUrl"), "pending")
        assert ack["digest"] == "0x" + digest_json(entry["resource"]).hex()
        record = client.get(f"/v1/records/{ack['recordId']}", headers=app_key).json()
        assert (record["fhirVersion"], record["metadata"], record["digest"]) == ("4.0", metadata, ack["digest"])
    for ack, entry in zip(answer["records"], entries, strict=True):
        receipt = receipt_of(client, app_key, ack["recordId"])
        verdict = client.post("/v1/verify", json={"receipt": receipt, "document": entry["resource"]}).json()
        assert verdict["match"] and verdict["mismatches"] == [], verdict
        other = client.post("/v1/verify", json={"receipt": receipt, "document": bundle}).json()
        assert other["mismatches"] == ["digest"]


def test_a_whole_records_receipt_verifies_with_its_document(client: TestClient, app_key: dict[str, str]) -> None:
    document = r4("MedicationRequest")
    ack = client.post("/v1/records", json={"patient": PATIENT, "document": document}, headers=app_key).json()
    verdict = client.post(
        "/v1/verify", json={"receipt": receipt_of(client, app_key, ack["recordId"]), "document": document}
    )
    assert verdict.json()["match"], verdict.text
    lookup = client.post("/v1/verify/lookup", json={"document": document}, headers=app_key).json()
    assert lookup["match"] and lookup["digest"] == ack["digest"]


def _entry_without(bundle: dict[str, Any], index: int, key: str) -> dict[str, Any]:
    entries = [dict(e) for e in bundle["entry"]]
    entries[index]["resource"] = {k: v for k, v in entries[index]["resource"].items() if k != key}
    return {**bundle, "entry": entries}


@pytest.mark.parametrize(
    ("bundle", "status", "code", "field"),
    [
        (_entry_without(r4("Bundle-collection"), 1, "subject"), 400, "invalid_fhir", "entry.1.resource.subject"),
        (
            {
                **r4("Bundle-transaction"),
                "entry": [*r4("Bundle-transaction")["entry"], {"request": {"method": "DELETE", "url": "Patient/9"}}],
            },
            400,
            "invalid_input",
            "document.entry.3.resource",
        ),
        ({**r4("Bundle-collection"), "type": "searchset"}, 400, "invalid_input", "document.type"),
        ({**r4("Bundle-collection"), "entry": []}, 400, "invalid_input", "document.entry"),
        (r4("Observation"), 400, "invalid_input", "bundle"),
    ],
    ids=["an invalid entry", "an entry without resource", "a searchset", "no entries", "not a bundle"],
)
def test_a_bundle_per_entry_is_all_or_nothing(
    client: TestClient,
    app_key: dict[str, str],
    service: Service,
    bundle: dict[str, Any],
    status: int,
    code: str,
    field: str,
) -> None:
    body = {"patient": PATIENT, "document": bundle, "bundle": "entries"}
    response = client.post("/v1/records", json=body, headers=app_key)
    assert (response.status_code, response.json()["code"]) == (status, code), response.text
    details = response.json()["details"]
    assert field in ([e["field"] for e in details["errors"]] if code == "invalid_fhir" else [details["field"]])
    assert record_count(service) == 0


def test_a_bundle_over_the_record_limit_is_refused_whole(
    client: TestClient, app_key: dict[str, str], service: Service, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(service.settings, "max_records_per_request", 2)
    body = {"patient": PATIENT, "document": r4("Bundle-collection"), "bundle": "entries"}
    response = client.post("/v1/records", json=body, headers=app_key)
    assert (response.status_code, response.json()["code"]) == (413, "payload_too_large")
    assert record_count(service) == 0


@pytest.mark.parametrize(
    "body",
    [
        {"patient": PATIENT, "digest": "0x" + "11" * 32, "bundle": "entries"},
        {"patient": PATIENT, "document": r4("Bundle-collection"), "bundle": "each"},
    ],
    ids=["no document", "unknown mode"],
)
def test_a_bundle_mode_without_a_bundle_is_a_422(
    client: TestClient, app_key: dict[str, str], body: dict[str, Any]
) -> None:
    response = client.post("/v1/records", json=body, headers=app_key)
    assert (response.status_code, response.json()["code"]) == (422, "invalid_request")


def test_per_entry_is_refused_where_one_record_answers_one_record(
    client: TestClient, app_key: dict[str, str], service: Service
) -> None:
    """Bulk answers one record per item and an amendment replaces one record: neither splits a Bundle."""
    entries = {"patient": PATIENT, "document": r4("Bundle-collection"), "bundle": "entries"}
    bulk = client.post(
        "/v1/records/bulk",
        json={"records": [{"patient": PATIENT, "digest": "0x" + "22" * 32}, entries]},
        headers=app_key,
    )
    assert (bulk.status_code, bulk.json()["code"]) == (400, "invalid_input")
    assert bulk.json()["details"] == {**bulk.json()["details"], "field": "bundle", "index": 1}
    assert record_count(service) == 0
    original = client.post("/v1/records", json={"patient": PATIENT, "document": r4("Patient")}, headers=app_key).json()
    amend = client.post(f"/v1/records/{original['recordId']}/amend", json=entries, headers=app_key)
    assert (amend.status_code, amend.json()["details"]["field"]) == (400, "bundle")
    assert record_count(service) == 1


def test_records_that_are_no_fhir_document_have_no_version(client: TestClient, app_key: dict[str, str]) -> None:
    bodies = [
        {"patient": PATIENT, "digest": "0x" + "33" * 32},
        {"patient": PATIENT, "document": {"note": "any JSON"}},
        {"patient": PATIENT, "document": {"resourceType": "Observation"}, "contentType": "application/json"},
        {"patient": PATIENT, "content": "JVBERi0xLjc=", "contentType": "application/pdf"},
    ]
    for body in bodies:
        ack = client.post("/v1/records", json=body, headers=app_key)
        assert ack.status_code == 202, ack.text
        assert client.get(f"/v1/records/{ack.json()['recordId']}", headers=app_key).json()["fhirVersion"] is None


def _base64(document: dict[str, Any]) -> str:
    return base64.b64encode(orjson.dumps(document)).decode("ascii")


@pytest.mark.parametrize(
    ("document", "expression"),
    [
        ({**r4("Observation"), "status": "banana"}, "Observation.status"),
        ({**r4("Patient"), "gender": "x"}, "Patient.gender"),
        ({**r4("MedicationRequest"), "intent": "whatever"}, "MedicationRequest.intent"),
    ],
    ids=["observation status", "patient gender", "medication request intent"],
)
def test_a_code_outside_its_required_value_set_is_refused_with_an_operation_outcome(
    client: TestClient, app_key: dict[str, str], service: Service, document: dict[str, Any], expression: str
) -> None:
    bad = next(
        v for k, v in document.items() if k in ("status", "gender", "intent") and v in ("banana", "x", "whatever")
    )
    for path, body in [
        ("/v1/records", {"patient": PATIENT, "document": document}),
        (
            "/v1/records/bulk",
            {"records": [{"patient": PATIENT, "digest": "0x" + "44" * 32}, {"patient": PATIENT, "document": document}]},
        ),
        ("/v1/records", {"patient": PATIENT, "content": _base64(document), "contentType": "application/fhir+json"}),
    ]:
        response = client.post(path, json=body, headers=app_key)
        assert (response.status_code, response.json()["code"]) == (400, "invalid_fhir"), response.text
        details = response.json()["details"]
        assert [(e["field"], e["code"]) for e in details["errors"]] == [(expression.split(".", 1)[1], bad)]
        outcome = OperationOutcome.model_validate(details["operationOutcome"])
        assert [(i.code, i.expression) for i in outcome.issue] == [("code-invalid", [expression])]
        assert bad in (outcome.issue[0].diagnostics or "")
    assert record_count(service) == 0


def test_a_bundle_per_entry_with_a_bad_code_is_refused_naming_the_entry(
    client: TestClient, app_key: dict[str, str], service: Service
) -> None:
    bundle = r4("Bundle-transaction")
    bundle["entry"][1]["resource"]["status"] = "banana"
    response = client.post(
        "/v1/records", json={"patient": PATIENT, "document": bundle, "bundle": "entries"}, headers=app_key
    )
    assert (response.status_code, response.json()["code"]) == (400, "invalid_fhir"), response.text
    issues = response.json()["details"]["operationOutcome"]["issue"]
    assert [(i["code"], i["expression"]) for i in issues] == [("code-invalid", ["Bundle.entry[1].resource.status"])]
    assert record_count(service) == 0


@pytest.mark.parametrize(
    ("content_type", "header", "version"),
    [(R5, None, "5.0"), (None, R5, "5.0"), (None, None, "4.0"), ("application/fhir+json", None, "4.0")],
    ids=["contentType R5", "Content-Type R5", "default", "fhir+json without version"],
)
def test_each_entry_of_a_bundle_per_entry_keeps_the_version_it_was_validated_as(
    client: TestClient, app_key: dict[str, str], content_type: str | None, header: str | None, version: str
) -> None:
    bundle = r4("Bundle-collection")  # valid in R4 and R5 alike
    body: dict[str, Any] = {"patient": PATIENT, "document": bundle, "bundle": "entries"}
    if content_type is not None:
        body["contentType"] = content_type
    headers = {**app_key, "Content-Type": header or "application/json"}
    response = client.post("/v1/records", content=orjson.dumps(body), headers=headers)
    assert response.status_code == 202, response.text
    for ack in response.json()["records"]:
        record = client.get(f"/v1/records/{ack['recordId']}", headers=app_key).json()
        assert record["fhirVersion"] == version
        (found,) = client.get("/v1/records", params={"digest": ack["digest"]}, headers=app_key).json()
        assert (found["recordId"], found["fhirVersion"]) == (ack["recordId"], version)


@pytest.mark.parametrize(
    ("document", "content_type", "version"),
    [
        (example(TESTDATA / "fhir" / "r5" / "Encounter.json"), R5, "5.0"),
        (r4("Encounter"), "application/fhir+json", "4.0"),
        (r4("Encounter"), "application/fhir+json; fhirVersion=4.0.1", "4.0"),
    ],
    ids=["R5", "default", "R4 asked"],
)
def test_a_base64_fhir_document_is_validated_and_keeps_its_version(
    client: TestClient, app_key: dict[str, str], document: dict[str, Any], content_type: str, version: str
) -> None:
    raw = orjson.dumps(document)
    body = {"patient": PATIENT, "content": base64.b64encode(raw).decode("ascii"), "contentType": content_type}
    response = client.post("/v1/records", json=body, headers=app_key)
    assert response.status_code == 202, response.text
    assert response.json()["digest"] == "0x" + hashlib.sha256(raw).hexdigest()  # the bytes as sent
    record = client.get(f"/v1/records/{response.json()['recordId']}", headers=app_key).json()
    assert (record["fhirVersion"], record["contentType"]) == (version, content_type)
    (found,) = client.get("/v1/records", params={"digest": response.json()["digest"]}, headers=app_key).json()
    assert found["fhirVersion"] == version
    bulk = client.post("/v1/records/bulk", json={"records": [body]}, headers=app_key)
    assert bulk.status_code == 202, bulk.text
    bulk_record = client.get(f"/v1/records/{bulk.json()['records'][0]['recordId']}", headers=app_key).json()
    assert bulk_record["fhirVersion"] == version


@pytest.mark.parametrize(
    ("raw", "content_type", "code"),
    [
        (orjson.dumps(example(TESTDATA / "fhir" / "r5" / "Encounter.json")), "application/fhir+json", "invalid_fhir"),
        (orjson.dumps(r4("Encounter")), R5, "invalid_fhir"),
        (b"%PDF-1.7", "application/fhir+json", "invalid_json"),
        (b"[1, 2]", "application/fhir+json", "invalid_fhir"),
        (b'{"resourceType": "Patient", "gender": "male", "gender": "x"}', "application/fhir+json", "duplicate_key"),
        (orjson.dumps(r4("Patient")), "application/fhir+json; fhirVersion=3.0", "unsupported_fhir_version"),
    ],
    ids=["R5 as R4", "R4 as R5", "not JSON", "not an object", "a duplicate key", "an unsupported version"],
)
def test_a_base64_fhir_document_that_is_not_valid_is_refused(
    client: TestClient, app_key: dict[str, str], service: Service, raw: bytes, content_type: str, code: str
) -> None:
    body = {"patient": PATIENT, "content": base64.b64encode(raw).decode("ascii"), "contentType": content_type}
    response = client.post("/v1/records", json=body, headers=app_key)
    assert (response.status_code, response.json()["code"]) == (400, code), response.text
    if code == "invalid_fhir":
        OperationOutcome.model_validate(response.json()["details"]["operationOutcome"])
    assert record_count(service) == 0
