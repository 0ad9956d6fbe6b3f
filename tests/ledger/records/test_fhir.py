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


# Required bindings: codes outside their value sets (the models check only the code grammar).

VALID: dict[tuple[FhirVersion, str], dict[str, Any]] = {
    **{("4.0", kind): r4(kind) for kind in R4_KINDS - {"Bundle"}},
    ("4.0", "Bundle"): r4("Bundle-collection"),
    **{("5.0", kind): r4(kind) for kind in ("Patient", "Observation", "DiagnosticReport")},
    ("5.0", "Condition"): _without(r4("Condition"), "asserter"),
    **{
        ("5.0", kind): example(TESTDATA / "fhir" / "r5" / f"{kind}.json")
        for kind in ("Encounter", "MedicationRequest", "DocumentReference")
    },
    ("5.0", "Bundle"): r4("Bundle-collection"),
}


def _coded(system: str, code: str) -> dict[str, Any]:
    return {"coding": [{"system": system, "code": code}]}


CLINICAL = "http://terminology.hl7.org/CodeSystem/condition-clinical"
VERIFICATION = "http://terminology.hl7.org/CodeSystem/condition-ver-status"
BAD_CODES = [
    # (kind, the bad value, where it goes, the field named), each for R4 and R5
    ("Patient", "x", ("gender",), "gender"),
    ("Patient", "nobody", ("contact",), "contact.1.gender"),
    ("Observation", "banana", ("status",), "status"),
    ("Encounter", "banana", ("status",), "status"),
    ("MedicationRequest", "whatever", ("intent",), "intent"),
    ("MedicationRequest", "whenever", ("priority",), "priority"),
    ("Condition", _coded(CLINICAL, "cured"), ("clinicalStatus",), "clinicalStatus"),
    ("Condition", _coded(VERIFICATION, "maybe"), ("verificationStatus",), "verificationStatus"),
    ("DiagnosticReport", "done", ("status",), "status"),
    ("DocumentReference", "draft", ("status",), "status"),
    ("DocumentReference", "done", ("docStatus",), "docStatus"),
    ("Bundle", "bag", ("type",), "type"),
]


def _bad(version: FhirVersion, kind: str, value: Any, where: tuple[str, ...]) -> dict[str, Any]:
    if where == ("contact",):  # a nested bound element, in a list
        value = [{"name": {"family": "Doe"}}, {"gender": value}]
    return _with(VALID[version, kind], value, *where)


@pytest.mark.parametrize("version", ["4.0", "5.0"])
@pytest.mark.parametrize("kind", sorted(R4_KINDS))
def test_each_kind_is_valid_with_its_required_codes(version: FhirVersion, kind: str) -> None:
    validate_fhir(VALID[version, kind], version)


@pytest.mark.parametrize("version", ["4.0", "5.0"])
@pytest.mark.parametrize(("kind", "value", "where", "field"), BAD_CODES, ids=[f"{c[0]}.{c[3]}" for c in BAD_CODES])
def test_a_code_outside_its_required_value_set_is_refused_naming_the_field(
    version: FhirVersion, kind: str, value: Any, where: tuple[str, ...], field: str
) -> None:
    document = _bad(version, kind, value, where)
    refused = refusal(document, version)
    details = refused.details
    assert "required value set" in refused.message and details["fhirVersion"] == version
    (error,) = details["errors"]
    sent = value if isinstance(value, str) else value["coding"][0]["code"]
    assert (error["field"], error["code"]) == (field, sent)
    assert error["valueSet"].endswith("|4.0.1" if version == "4.0" else "|5.0.0")
    outcome = OperationOutcome.model_validate(details["operationOutcome"])
    (issue,) = outcome.issue
    expression = kind + "".join(f"[{p}]" if p.isdigit() else f".{p}" for p in field.split("."))
    assert (issue.severity, issue.code, issue.expression) == ("error", "code-invalid", [expression])
    assert repr(sent) in (issue.diagnostics or "") or sent in (issue.diagnostics or "")


@pytest.mark.parametrize(
    ("kind", "field", "value", "valid_in"),
    [
        ("Encounter", "status", "finished", "4.0"),
        ("Encounter", "status", "completed", "5.0"),
        ("Condition", "clinicalStatus", _coded(CLINICAL, "unknown"), "5.0"),
        ("MedicationRequest", "status", "ended", "5.0"),
        ("DocumentReference", "docStatus", "registered", "5.0"),
        ("Bundle", "type", "subscription-notification", "5.0"),
    ],
    ids=lambda v: v if isinstance(v, str) else "coded",
)
def test_a_code_of_one_version_only_is_refused_in_the_other(
    kind: str, field: str, value: Any, valid_in: FhirVersion
) -> None:
    """R4 codes are checked against FHIR 4.0.1's value sets (the R4B models notwithstanding), R5's against 5.0.0's."""
    other: FhirVersion = "5.0" if valid_in == "4.0" else "4.0"
    validate_fhir(_with(VALID[valid_in, kind], value, field), valid_in)
    refused = refusal(_with(VALID[other, kind], value, field), other)
    assert [(e["field"], e["valueSet"].split("|")[1]) for e in refused.details["errors"]] == [
        (field, "4.0.1" if other == "4.0" else "5.0.0")
    ]


def _expressions(refused: InvalidFhirError) -> list[str]:
    outcome = OperationOutcome.model_validate(refused.details["operationOutcome"])
    assert {issue.code for issue in outcome.issue} == {"code-invalid"}
    return [e for issue in outcome.issue for e in issue.expression or []]


@pytest.mark.parametrize("version", ["4.0", "5.0"])
def test_a_bundles_entries_are_checked_as_resources_of_their_kinds(version: FhirVersion) -> None:
    bundle = _with(VALID[version, "Bundle"], "banana", "entry", 1, "resource", "status")
    bundle["entry"][1]["resource"] = _with(VALID[version, "Observation"], "banana", "status")
    refused = refusal(bundle, version)
    assert _expressions(refused) == ["Bundle.entry[1].resource.status"]
    assert refused.details["errors"][0]["field"] == "entry.1.resource.status"


def test_every_bad_code_is_named_the_bundles_own_first_then_by_entry() -> None:
    bundle = r4("Bundle-transaction")
    bundle["entry"][0]["resource"]["gender"] = "x"
    bundle["entry"][1]["resource"]["status"] = "banana"
    bundle["entry"][2]["request"]["method"] = "FETCH"
    bundle["entry"].append(
        {"resource": {**r4("Bundle-collection"), "type": "bag"}, "request": bundle["entry"][0]["request"]}
    )
    assert _expressions(refusal(bundle)) == [
        "Bundle.entry[2].request.method",
        "Bundle.entry[0].resource.gender",
        "Bundle.entry[1].resource.status",
        "Bundle.entry[3].resource.type",
    ]


def test_contained_resources_are_checked_too() -> None:
    patient = _with(r4("Patient"), [_with(r4("Observation"), "banana", "status")], "contained")
    assert _expressions(refusal(patient)) == ["Patient.contained[0].status"]


@pytest.mark.parametrize(
    ("status", "valid"),
    [
        (
            {"coding": [{"system": "http://example.org/local", "code": "A"}, {"system": CLINICAL, "code": "active"}]},
            True,
        ),
        (_coded("http://example.org/local", "active"), False),  # the right code in another system
        ({"coding": [{"code": "active"}]}, False),  # no system
        ({"text": "active"}, False),  # no coding at all
    ],
    ids=["a translation beside it", "another system", "no system", "text only"],
)
def test_a_codeable_concept_needs_one_coding_from_the_value_set(status: dict[str, Any], valid: bool) -> None:
    document = _with(r4("Condition"), status, "clinicalStatus")
    if valid:
        validate_fhir(document)
    else:
        assert _expressions(refusal(document)) == ["Condition.clinicalStatus"]


@pytest.mark.parametrize(
    ("document", "version"),
    [
        (
            _with(r4("Encounter"), {"system": "http://example.org/classes", "code": "SPACE"}, "class"),
            "4.0",
        ),  # extensible
        (_with(r4("Observation"), [_coded("http://example.org/local", "odd")], "category"), "4.0"),  # preferred
        (_with(r4("Patient"), [{"language": _coded("urn:ietf:bcp:47", "tlh")}], "communication"), "4.0"),  # preferred
        (_with(r4("Patient"), "x-klingon", "language"), "5.0"),  # required, but BCP 47 is a grammar: not listed
    ],
    ids=["extensible", "preferred", "R4 language", "R5 language"],
)
def test_bindings_that_are_not_required_or_not_enumerable_are_no_errors(
    document: dict[str, Any], version: FhirVersion
) -> None:
    validate_fhir(document, version)
