"""Scope and purpose-of-use codes (short ASCII codes, stored on chain as bytes32 by :func:`ledger.values.encode_code`).

Purposes follow HL7 v3 PurposeOfUse (``TREAT``, ``ETREAT``, ``HPAYMT``, ``HRESCH``, ``BTG``, ...). Scopes name
a kind of data (a FHIR resource type such as ``Observation``, or a category); ``*`` means all of a
patient's data. Codes are identifiers, never free text: nothing about a patient goes into them.
"""

from __future__ import annotations

from ledger.exceptions import InvalidCodeError
from ledger.values import encode_code

ALL_DATA = "*"

SCOPE_LABELS: dict[str, str] = {
    ALL_DATA: "health data of every kind",
    "Observation": "test results and measurements",
    "Condition": "diagnoses and health problems",
    "MedicationRequest": "prescriptions",
    "AllergyIntolerance": "allergies",
    "Immunization": "vaccinations",
    "Procedure": "operations and procedures",
    "DiagnosticReport": "reports of tests and scans",
    "ImagingStudy": "medical images",
    "Encounter": "visits and hospital stays",
    "DocumentReference": "letters and documents",
}
"""Kinds of data a patient can choose from (FHIR resource types, or everything), in plain words."""

PURPOSES_OF_USE: dict[str, str] = {
    "TREAT": "treatment",
    "ETREAT": "emergency treatment",
    "HPAYMT": "healthcare payment",
    "HOPERAT": "healthcare operations",
    "HRESCH": "healthcare research",
    "PATRQT": "patient requested",
    "PUBHLTH": "public health",
    "CAREMGT": "care management",
    "BTG": "break the glass",
}

EMERGENCY_PURPOSES: tuple[str, ...] = ("ETREAT", "BTG")
"""The purposes break-glass access may be recorded for: the ConsentRegistry is deployed with them
and holds them (``emergencyPurposes``); any other purpose needs the patient's consent."""


def encode_purpose(purpose: str) -> bytes:
    """Encode a purpose-of-use code; only the known HL7 PurposeOfUse codes are accepted."""
    if purpose not in PURPOSES_OF_USE:
        raise InvalidCodeError(
            f"unknown purpose of use {purpose!r}; known: {', '.join(PURPOSES_OF_USE)}",
            field="purpose",
        )
    return encode_code(purpose)
