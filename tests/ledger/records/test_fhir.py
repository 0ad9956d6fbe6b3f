"""FHIR validation: R4 by default, R5 when asked, refusals that name the field, Bundles split per entry.

The examples are data files (``tests/testdata/fhir/r4``, ``r5``): small valid resources of the kinds
records usually are, each walked by the tests below.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import orjson
import pytest
from fhir.resources.R4B.operationoutcome import OperationOutcome

from ledger.exceptions import InputError, InvalidFhirError, PayloadTooLargeError, UnsupportedFhirVersionError
from ledger.records.fhir import (
    DEFAULT_FHIR_VERSION,
    FhirVersion,
    bundle_entries,
    fhir_version_of,
    requested_version,
    validate_fhir,
)
from tests.support.paths import TESTDATA

R4_EXAMPLES = sorted((TESTDATA / "fhir" / "r4").glob("*.json"))
R5_EXAMPLES = sorted((TESTDATA / "fhir" / "r5").glob("*.json"))
R4_KINDS = {
    "Patient",
    "Observation",
    "Encounter",
    "MedicationRequest",
    "Condition",
    "DiagnosticReport",
    "DocumentReference",
    "Bundle",
}


def example(path: Path) -> dict[str, Any]:
    document: dict[str, Any] = orjson.loads(path.read_bytes())
    return document


def r4(kind: str) -> dict[str, Any]:
    return example(TESTDATA / "fhir" / "r4" / f"{kind}.json")


def refusal(document: dict[str, Any], version: FhirVersion = "4.0") -> InvalidFhirError:
    with pytest.raises(InvalidFhirError) as caught:
        validate_fhir(document, version)
    return caught.value


def test_the_examples_cover_every_supported_kind() -> None:
    assert {example(p)["resourceType"] for p in R4_EXAMPLES} == R4_KINDS
    assert {example(p)["type"] for p in R4_EXAMPLES if example(p)["resourceType"] == "Bundle"} == {
        "transaction",
        "collection",
    }


@pytest.mark.parametrize("path", R4_EXAMPLES, ids=lambda p: p.stem)
def test_valid_r4_resources_are_accepted_by_default(path: Path) -> None:
    assert DEFAULT_FHIR_VERSION == "4.0"
    validate_fhir(example(path))


@pytest.mark.parametrize(
    ("kind", "r4_only_field"),
    [("MedicationRequest", "medicationCodeableConcept"), ("Encounter", "class"), ("DocumentReference", "context")],
)
def test_r4_shapes_are_refused_as_r5_naming_the_field(kind: str, r4_only_field: str) -> None:
    """What the issue saw: R4 documents refused because only R5 was used. Asked as R5, they still are."""
    validate_fhir(r4(kind), "4.0")
    refused = refusal(r4(kind), "5.0")
    assert r4_only_field in {e["field"] for e in refused.details["errors"]}
    assert refused.details["fhirVersion"] == "5.0"


@pytest.mark.parametrize("path", R5_EXAMPLES, ids=lambda p: p.stem)
def test_r5_resources_are_accepted_when_asked_and_are_not_r4(path: Path) -> None:
    validate_fhir(example(path), "5.0")
    assert refusal(example(path), "4.0").details["errors"]


def _without(document: dict[str, Any], *path: str | int) -> dict[str, Any]:
    changed = copy.deepcopy(document)
    target = changed
    for part in path[:-1]:
        target = target[part]
    del target[path[-1]]
    return changed


def _with(document: dict[str, Any], value: Any, *path: str | int) -> dict[str, Any]:
    changed = copy.deepcopy(document)
    target = changed
    for part in path[:-1]:
        target = target[part]
    target[path[-1]] = value
    return changed


MALFORMED = [
    # (name, document, failing field, OperationOutcome issue type, FHIRPath expression)
    ("patient gender not a code", _with(r4("Patient"), 5, "gender"), "gender", "structure", "Patient.gender"),
    ("patient birthDate not a date", _with(r4("Patient"), "25/12/1974", "birthDate"), "birthDate", "value", None),
    ("observation without code", _without(r4("Observation"), "code"), "code", "required", "Observation.code"),
    (
        "observation value not a decimal",
        _with(r4("Observation"), "fast", "valueQuantity", "value"),
        "valueQuantity.value",
        "value",
        "Observation.valueQuantity.value",
    ),
    (
        "encounter class as R5 list",
        _with(r4("Encounter"), [{"coding": [{"code": "AMB"}]}], "class"),
        "class",
        "structure",
        "Encounter.class",
    ),
    ("encounter without status", _without(r4("Encounter"), "status"), "status", "required", None),
    (
        "medication request with R5 medication",
        _with(r4("MedicationRequest"), {"concept": {"text": "x"}}, "medication"),
        "medication",
        "structure",
        "MedicationRequest.medication",
    ),
    ("medication request without subject", _without(r4("MedicationRequest"), "subject"), "subject", "required", None),
    ("condition without subject", _without(r4("Condition"), "subject"), "subject", "required", None),
    ("diagnostic report without code", _without(r4("DiagnosticReport"), "code"), "code", "required", None),
    ("document reference without content", _without(r4("DocumentReference"), "content"), "content", "required", None),
    (
        "bundle entry without code",
        _without(r4("Bundle-collection"), "entry", 0, "resource", "code"),
        "entry.0.resource.code",
        "required",
        "Bundle.entry[0].resource.code",
    ),
    (
        "bundle entry of an unknown type",
        _with(r4("Bundle-collection"), "Spaceship", "entry", 1, "resource", "resourceType"),
        "entry.1.resource.resourceType",
        "structure",
        "Bundle.entry[1].resource.resourceType",
    ),
    (
        "contained resource type not a string",
        _with(r4("Patient"), [{"resourceType": 7}], "contained"),
        "contained.0.resourceType",
        "structure",
        "Patient.contained[0].resourceType",
    ),
    ("an element no R4 Patient has", _with(r4("Patient"), True, "spaceship"), "spaceship", "structure", None),
]


@pytest.mark.parametrize(
    ("document", "field", "issue_type", "expression"), [m[1:] for m in MALFORMED], ids=[m[0] for m in MALFORMED]
)
def test_malformed_r4_resources_are_refused_naming_the_field(
    document: dict[str, Any], field: str, issue_type: str, expression: str | None
) -> None:
    refused = refusal(document)
    details = refused.details
    assert details["resourceType"] == document["resourceType"] and details["fhirVersion"] == "4.0"
    assert field in [e["field"] for e in details["errors"]], details["errors"]
    outcome = details["operationOutcome"]
    OperationOutcome.model_validate(outcome)  # a valid R4 OperationOutcome
    issue = outcome["issue"][[e["field"] for e in details["errors"]].index(field)]
    assert issue["severity"] == "error" and issue["code"] == issue_type and issue["diagnostics"]
    assert issue["expression"] == [expression or f"{document['resourceType']}.{field}"]


@pytest.mark.parametrize(
    "document",
    [
        {"resourceType": 5},
        {"resourceType": "Spaceship"},
        {"resourceType": "Coding", "code": "x"},  # a data type, no resource
        {"resourceType": "DomainResource"},  # abstract
        {"resourceType": "Resource"},
    ],
    ids=["not a string", "unknown", "a data type", "abstract", "the base"],
)
@pytest.mark.parametrize("version", ["4.0", "5.0"])
def test_what_is_no_resource_type_is_refused(document: dict[str, Any], version: FhirVersion) -> None:
    refused = refusal(document, version)
    assert [e["field"] for e in refused.details["errors"]] == ["resourceType"]
    OperationOutcome.model_validate(refused.details["operationOutcome"])


def test_a_refusal_reports_at_most_twenty_problems_and_counts_them_all() -> None:
    bundle = {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": {"resourceType": "Observation"}}]}
    bundle["entry"] = bundle["entry"] * 30  # each lacks code (and status, reported once the structure is right)
    details = refusal(bundle).details
    assert len(details["errors"]) == 20 == len(details["operationOutcome"]["issue"])
    assert details["errorCount"] == 30


@pytest.mark.parametrize(
    ("content_type", "version"),
    [
        (None, None),
        ("application/fhir+json", None),
        ("application/fhir+json; fhirVersion=5.0", "5.0"),
        ("application/fhir+json;fhirversion=4.0", "4.0"),
        ('Application/FHIR+JSON; charset=utf-8; FHIRVERSION="4.0.1"', "4.0"),
        ("application/fhir+json; fhirVersion=5.0.0", "5.0"),
        ("application/json", None),
    ],
)
def test_the_version_a_content_type_asks_for(content_type: str | None, version: str | None) -> None:
    assert requested_version(content_type) == version


@pytest.mark.parametrize("asked", ["3.0", "4.3", "6.0", "five", ""])
def test_an_unsupported_version_is_refused(asked: str) -> None:
    with pytest.raises(UnsupportedFhirVersionError) as caught:
        requested_version(f"application/fhir+json; fhirVersion={asked}")
    assert caught.value.details["field"] == "contentType" and caught.value.details["supported"] == ["4.0", "5.0"]
    OperationOutcome.model_validate(caught.value.details["operationOutcome"])


def test_a_version_on_another_media_type_is_refused() -> None:
    with pytest.raises(InputError) as caught:
        requested_version("application/json; fhirVersion=5.0", field="Content-Type")
    assert caught.value.details["field"] == "Content-Type"


def test_which_documents_are_fhir_and_as_which_version() -> None:
    observation = r4("Observation")
    assert fhir_version_of(observation, None) == "4.0"
    assert fhir_version_of(observation, None, "5.0") == "5.0"
    assert fhir_version_of(observation, "application/fhir+json; fhirVersion=5.0") == "5.0"
    assert fhir_version_of(observation, "application/fhir+json; fhirVersion=4.0", "5.0") == "4.0"
    assert fhir_version_of(observation, "application/json") is None  # any JSON, not validated
    assert fhir_version_of(observation, "application/json; charset=utf-8") is None
    assert fhir_version_of({"note": "no resourceType"}, None) is None


def test_a_bundles_entries_are_its_resources_in_entry_order() -> None:
    bundle = r4("Bundle-transaction")
    assert bundle_entries(bundle, limit=10) == [e["resource"] for e in bundle["entry"]]
    with pytest.raises(PayloadTooLargeError):
        bundle_entries(bundle, limit=2)


@pytest.mark.parametrize(
    ("bundle", "field"),
    [
        (r4("Observation"), "bundle"),
        (_with(r4("Bundle-collection"), "document", "type"), "document.type"),
        (_with(r4("Bundle-collection"), "searchset", "type"), "document.type"),
        (_without(r4("Bundle-collection"), "entry"), "document.entry"),
        (_with(r4("Bundle-transaction"), {"request": {"method": "DELETE", "url": "Patient/1"}}, "entry", 1), None),
    ],
    ids=["not a bundle", "document bundle", "searchset", "no entries", "an entry without resource"],
)
def test_bundles_that_cannot_be_split_are_refused(bundle: dict[str, Any], field: str | None) -> None:
    with pytest.raises(InputError) as caught:
        bundle_entries(bundle, limit=100)
    assert caught.value.details["field"] == (field or "document.entry.1.resource")
