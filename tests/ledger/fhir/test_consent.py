"""Reading an IHE PCF-shaped Consent as a consent document: scopes and purposes, windows at their
precision, the signed terms (without id, meta, status and the signature), and every shape refused
by name rather than narrowed or widened."""

from __future__ import annotations

from typing import Any

import pytest

from ledger.consent.terms import UINT64_MAX
from ledger.exceptions import InputError, InvalidFhirError, UnsupportedFhirError
from ledger.fhir.consent import WITHDRAWN, read_consent, terms_digest, with_signature
from tests.support.fhir_consents import pcf_consent

PATIENT = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
GRANTEE = "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC"
GUARDIAN = "0x90F79bf6EB2c4f870365E785982E1f101E93b906"


def consent(**provision: Any) -> dict[str, Any]:
    return pcf_consent(PATIENT, GRANTEE, **provision)


def test_a_basic_consent_is_every_scope_and_purpose_pair() -> None:
    read = read_consent(
        pcf_consent(PATIENT, GRANTEE, ("TREAT", "HPAYMT", "HOPERAT"), classes=("Observation", "Condition"))
    )
    assert read.consent.patient == PATIENT and read.consent.grantee == GRANTEE and read.signer == PATIENT
    assert read.consent.scopes == ("Observation", "Condition")
    assert read.consent.purposes == ("TREAT", "HPAYMT", "HOPERAT")
    assert len(read.consent.consent_keys()) == 6
    assert read.signed is None


@pytest.mark.parametrize(
    ("element", "values", "scopes"),
    [
        ("code", [{"coding": [{"system": "http://loinc.org", "code": "8867-4"}]}], ("LOINC:8867-4",)),
        ("code", [{"coding": [{"system": "http://snomed.info/sct", "code": "38341003"}]}], ("SNOMED:38341003",)),
        (
            "securityLabel",
            [
                {"system": "http://terminology.hl7.org/CodeSystem/v3-Confidentiality", "code": "N"},
                {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "PSY"},
            ],
            ("confidentiality:N", "sensitivity:PSY"),
        ),
    ],
)
def test_data_scopes_come_from_one_element(element: str, values: list[Any], scopes: tuple[str, ...]) -> None:
    assert read_consent(consent(classes=(), **{element: values})).consent.scopes == scopes


def test_no_data_element_means_all_data() -> None:
    assert read_consent(consent(classes=())).consent.scopes == ("*",)


@pytest.mark.parametrize(
    ("period", "window"),
    [
        ({"start": "2026-01-01", "end": "2026-12-31"}, (1767225600, 1798761600)),
        ({"start": "2026-02", "end": "2026-02"}, (1769904000, 1772323200)),
        ({"start": "2026", "end": "2026"}, (1767225600, 1798761600)),
        ({"start": "2026-01-01T01:00:00+01:00", "end": "2026-01-01T10:00:00Z"}, (1767225600, 1767261601)),
        ({"start": "2026-01-01"}, (1767225600, UINT64_MAX)),
        ({}, (0, UINT64_MAX)),
    ],
)
def test_periods_are_read_at_their_precision(period: dict[str, str], window: tuple[int, int]) -> None:
    resource = consent(period=period)
    if not period:
        del resource["provision"]["period"]
    read = read_consent(resource)
    assert (read.consent.valid_from, read.consent.valid_until) == window


def test_the_terms_leave_out_id_meta_status_and_the_signature_only() -> None:
    resource = consent()
    digest = terms_digest(resource)
    served = {**with_signature(resource, 1, bytes(65)), "id": "x", "meta": {"versionId": "2"}, "status": WITHDRAWN}
    assert terms_digest(served) == digest
    assert read_consent(served, statuses=(WITHDRAWN,)).terms == digest
    assert terms_digest({**resource, "dateTime": "2026-01-02"}) != digest
    assert terms_digest({**resource, "extension": [{"url": "https://example.org/x", "valueString": "y"}]}) != digest


def test_a_signature_names_its_signer_or_the_performer() -> None:
    guardian = consent(performer=None)
    guardian["performer"] = [{"reference": f"RelatedPerson/{GUARDIAN}"}]
    signed = read_consent(with_signature(guardian, 7, b"\1" * 65)).signed
    assert signed is not None and (signed.signer, signed.deadline, signed.signature) == (GUARDIAN, 7, b"\1" * 65)
    by_patient = read_consent(with_signature(guardian, 7, b"\1" * 65, PATIENT)).signed
    assert by_patient is not None and by_patient.signer == PATIENT


def _set(path: str, value: Any) -> Any:
    def change(resource: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        target = resource
        for name in parents:
            target = target[name]
        target[last] = value

    return change


REFUSED: dict[str, tuple[Any, str]] = {
    "nested provision": (_set("provision.provision", [{"type": "deny"}]), "Consent.provision.provision"),
    "deny": (_set("provision.type", "deny"), "Consent.provision.type"),
    "dataPeriod": (_set("provision.dataPeriod", {"start": "2020-01-01"}), "Consent.provision.dataPeriod"),
    "data": (
        _set("provision.data", [{"meaning": "instance", "reference": {"reference": "Observation/1"}}]),
        "Consent.provision.data",
    ),
    "no actor": (_set("provision.actor", []), "Consent.provision.actor"),
    "actor not IRCP": (
        _set(
            "provision.actor",
            [{"role": {"coding": [{"code": "PRCP"}]}, "reference": {"reference": f"Organization/{GRANTEE}"}}],
        ),
        "Consent.provision.actor[0].role",
    ),
    "actor not an Organization": (
        _set(
            "provision.actor",
            [
                {
                    "role": {
                        "coding": [
                            {"system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType", "code": "IRCP"}
                        ]
                    },
                    "reference": {"reference": "Practitioner/1"},
                }
            ],
        ),
        "Consent.provision.actor[0].reference",
    ),
    "unknown class system": (
        _set("provision.class", [{"system": "https://example.org/kinds", "code": "labs"}]),
        "Consent.provision.class[0]",
    ),
    "two codings for one concept": (
        _set(
            "provision.code",
            [{"coding": [{"system": "http://loinc.org", "code": "1"}, {"system": "http://loinc.org", "code": "2"}]}],
        ),
        "Consent.provision.code",
    ),
    "research scope": (
        _set(
            "scope", {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "research"}]}
        ),
        "Consent.scope",
    ),
    "patient by id": (_set("patient", {"reference": "Patient/example"}), "Consent.patient"),
    "another patient performing": (_set("performer", [{"reference": f"Patient/{GRANTEE}"}]), "Consent.performer[0]"),
    "two performers": (_set("performer", [{"reference": f"Patient/{PATIENT}"}] * 2), "Consent.performer"),
    "draft": (_set("status", "draft"), "Consent.status"),
    "modifier extension": (
        _set("provision.modifierExtension", [{"url": "https://example.org/m", "valueBoolean": True}]),
        "Consent.provision.modifierExtension",
    ),
    "implicit rules": (_set("implicitRules", "https://example.org/rules"), "Consent.implicitRules"),
}


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_unsupported_shapes_are_refused_by_name(case: str) -> None:
    change, expression = REFUSED[case]
    resource = consent()
    change(resource)
    with pytest.raises(UnsupportedFhirError) as refused:
        read_consent(resource)
    assert refused.value.details["expression"] == expression
    assert isinstance(refused.value, InputError)


def test_code_and_class_together_are_refused() -> None:
    resource = consent(code=[{"coding": [{"system": "http://loinc.org", "code": "8867-4"}]}])
    with pytest.raises(UnsupportedFhirError, match="data that is both"):
        read_consent(resource)


def test_an_invalid_consent_names_its_field() -> None:
    resource = consent()
    resource["dateTime"] = "yesterday"
    with pytest.raises(InvalidFhirError) as refused:
        read_consent(resource)
    assert refused.value.details["errors"][0]["field"] == "dateTime"


def test_too_many_keys_and_an_inverted_period_are_refused() -> None:
    many = pcf_consent(
        PATIENT,
        GRANTEE,
        ("TREAT", "HPAYMT", "HOPERAT"),
        classes=("Observation", "Condition", "Encounter", "Procedure", "Immunization", "MedicationRequest"),
    )
    with pytest.raises(InputError, match="at most 16"):
        read_consent(many)
    with pytest.raises(InputError, match="ends before it starts"):
        read_consent(consent(period={"start": "2026-02-01", "end": "2026-01-01"}))
