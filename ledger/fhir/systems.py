"""The URIs the FHIR facade reads and writes: HL7 and IHE code systems, and CareLedger's own names.

CareLedger's own extension and identifier systems are URNs (``urn:careledger:fhir:...``): they name
things of this ledger, not pages to look up.
"""

from __future__ import annotations

from typing import Final

FHIR_VERSION: Final = "4.0.1"
FHIR_JSON: Final = "application/fhir+json"

# --- HL7 code systems --------------------------------------------------------------------------
CONSENT_SCOPE: Final = "http://terminology.hl7.org/CodeSystem/consentscope"
PATIENT_PRIVACY: Final = "patient-privacy"
PARTICIPATION_TYPE: Final = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"
INFORMATION_RECIPIENT: Final = "IRCP"
ACT_REASON: Final = "http://terminology.hl7.org/CodeSystem/v3-ActReason"
"""HL7 v3 ActReason: the purposes of use (``TREAT``, ``HPAYMT``, ...) a provision names."""
RESOURCE_TYPES: Final = "http://hl7.org/fhir/resource-types"
CONFIDENTIALITY: Final = "http://terminology.hl7.org/CodeSystem/v3-Confidentiality"
ACT_CODE: Final = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
LOINC: Final = "http://loinc.org"
SNOMED: Final = "http://snomed.info/sct"
SIGNATURE_TYPE: Final = "urn:iso-astm:E1762-95:2013"
"""ASTM E1762 signature types (``1.2.840.10065.1.12.1.5``: verification signature)."""

# --- IHE ---------------------------------------------------------------------------------------
PCF_CONSENT_PROFILE: Final = "https://profiles.ihe.net/ITI/PCF/StructureDefinition/IHE.PCF.consentFoundation"

# --- CareLedger --------------------------------------------------------------------------------
SIGNATURE_EXTENSION: Final = "urn:careledger:fhir:eip712-signature"
"""On a Consent sent to be created or withdrawn: the patient's (or guardian's) EIP-712 signature
(``signature``, base64) and its deadline (``deadline``, unix seconds). Not part of the signed terms."""
RECORD_SYSTEM: Final = "urn:careledger:record"
"""Identifier system of an anchored record (the value is its record id)."""
RECEIPT_SYSTEM: Final = "urn:careledger:receipt"
"""Identifier system of a record's receipt (the value is the record id it proves)."""
TRANSACTION_SYSTEM: Final = "urn:careledger:transaction"
"""Identifier system of a chain transaction (the value is ``eip155:<chain id>:<0x hash>``)."""
RECEIPT_MEDIA_TYPE: Final = "application/vnd.careledger.receipt+json"
