"""The facade's ``CapabilityStatement``: exactly what ``/fhir/r4`` supports, nothing it does not.

JSON only; Consent read, search (``patient``, ``status``: what IHE ITI-108 requires; paged), create and
update (withdrawal only); AuditEvent read and search (``patient``, ``date``, ``agent``, ``outcome``,
paged); Provenance read and search (``target``, ``patient``, paged). No history, no delete, no
conditional interactions.
"""

from __future__ import annotations

from typing import Any, Final

from ledger.fhir import systems

_PATIENT_PARAMETER: Final = {
    "name": "patient",
    "definition": "http://hl7.org/fhir/SearchParameter/clinical-patient",
    "type": "reference",
    "documentation": "Patient/<address> or the address",
}


def capability_statement(*, base: str, version: str, date: str) -> dict[str, Any]:
    """The CapabilityStatement of the facade served at ``base``, by CareLedger ``version``."""
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": date,
        "publisher": "CareLedger",
        "kind": "instance",
        "software": {"name": "CareLedger", "version": version},
        "implementation": {
            "description": "CareLedger FHIR R4 facade: patient consents held on chain, provenance of anchored records",
            "url": base,
        },
        "fhirVersion": systems.FHIR_VERSION,
        "format": [systems.FHIR_JSON, "json"],
        "rest": [
            {
                "mode": "server",
                "documentation": (
                    "Consents are IHE PCF-shaped and granted on the patient's EIP-712 signature over their RFC 8785 "
                    f"digest (extension {systems.SIGNATURE_EXTENSION}); unsupported provision shapes are refused "
                    "with an OperationOutcome (not-supported), never narrowed or widened."
                ),
                "security": {
                    "service": [
                        {
                            "coding": [
                                {
                                    "system": "http://terminology.hl7.org/CodeSystem/restful-security-service",
                                    "code": "SMART-on-FHIR",
                                }
                            ]
                        }
                    ],
                    "description": (
                        "Authorization: Bearer with an organisation app's API key or a SMART Backend Services "
                        "access token (client credentials with a private_key_jwt assertion; see "
                        ".well-known/smart-configuration) for its organisation's Consents and records, or a "
                        "patient session token from POST /v1/patient/sessions for the patient's own."
                    ),
                },
                "resource": [_consent(), _audit_event(), _provenance()],
            }
        ],
    }


def _consent() -> dict[str, Any]:
    return {
        "type": "Consent",
        "documentation": "one Consent is one consent document: its provision's scope x purpose pairs, one grantee",
        "interaction": [
            {"code": "read"},
            {"code": "search-type", "documentation": "by patient and status (IHE ITI-108); paged with _count"},
            {"code": "create", "documentation": "status active, with the patient's ConsentGrantSet signature"},
            {
                "code": "update",
                "documentation": "withdrawal only: status inactive, same terms, with a ConsentRevocationSet signature",
            },
        ],
        "versioning": "versioned",
        "readHistory": False,
        "updateCreate": False,
        "conditionalCreate": False,
        "conditionalRead": "not-supported",
        "conditionalUpdate": False,
        "conditionalDelete": "not-supported",
        "searchParam": [
            _PATIENT_PARAMETER,
            {
                "name": "status",
                "definition": "http://hl7.org/fhir/SearchParameter/Consent-status",
                "type": "token",
                "documentation": "active or inactive, as the chain has it now",
            },
        ],
    }


def _audit_event() -> dict[str, Any]:
    return {
        "type": "AuditEvent",
        "documentation": (
            "IHE BALP: one AuthZconsent event per access decision (<trail id>-authz) and a PatientRead beside "
            "each that gave access (<trail id>-read); break-glass carries purposeOfEvent BTG; entity.detail "
            "carries the anchoring of the decision's audit record"
        ),
        "interaction": [
            {"code": "read"},
            {"code": "search-type", "documentation": "by patient, date, agent and outcome; paged with _count"},
        ],
        "versioning": "no-version",
        "readHistory": False,
        "updateCreate": False,
        "conditionalRead": "not-supported",
        "conditionalDelete": "not-supported",
        "searchParam": [
            _PATIENT_PARAMETER,
            {
                "name": "date",
                "definition": "http://hl7.org/fhir/SearchParameter/AuditEvent-date",
                "type": "date",
                "documentation": "a date or an instant, prefix eq, ge, gt, le or lt; twice for a range",
            },
            {
                "name": "agent",
                "definition": "http://hl7.org/fhir/SearchParameter/AuditEvent-agent",
                "type": "reference",
                "documentation": "Organization/<address>: the recipient organisation",
            },
            {
                "name": "outcome",
                "definition": "http://hl7.org/fhir/SearchParameter/AuditEvent-outcome",
                "type": "token",
                "documentation": "0 (access given) or 8 (denied)",
            },
        ],
    }


def _provenance() -> dict[str, Any]:
    return {
        "type": "Provenance",
        "documentation": (
            "Provenance/<record id>: an anchored record's anchoring, its receipt in signature.data; records "
            "not anchored for good yet have none"
        ),
        "interaction": [
            {"code": "read"},
            {"code": "search-type", "documentation": "by target and patient; paged with _count"},
        ],
        "versioning": "no-version",
        "readHistory": False,
        "updateCreate": False,
        "conditionalRead": "not-supported",
        "conditionalDelete": "not-supported",
        "searchParam": [
            {
                "name": "target",
                "definition": "http://hl7.org/fhir/SearchParameter/Provenance-target",
                "type": "reference",
                "documentation": f"the record: its id, or its identifier {systems.RECORD_SYSTEM}|<record id>",
            },
            {
                "name": "patient",
                "definition": "http://hl7.org/fhir/SearchParameter/Provenance-patient",
                "type": "reference",
                "documentation": "Patient/<address> or the address: the patient the records are about",
            },
        ],
    }
