"""Access decisions as FHIR R4 ``AuditEvent``s, shaped after IHE BALP's ``AuthZconsent``, and a ``Bundle`` of them.

One event per attempt of the access trail (:mod:`ledger.store.access_trail`), built and validated
with the ``fhir.resources.R4B`` models (R4B's AuditEvent is R4's):

* ``type`` Security Alert (DCM 110113), ``subtype`` BALP ``AuthZ-Consent`` for a decision by the
  patient's consent, ``AuthZ-Role`` for break-glass (decided by the emergency role alone);
  ``action`` E; ``outcome`` 0 when access was given, 8 when refused (as BALP's deny example), with
  ``outcomeDesc`` saying why.
* ``purposeOfEvent``: the purpose asked for (HL7 v3 PurposeOfUse, ``v3-ActReason``); a break-glass
  access also carries ``BTG``.
* agents: the app (DCM 110150 Application), the organisation as information recipient (IRCP, the
  requestor), and CareLedger as authorisation server (also ``source.observer``).
* entities: the patient (Person / Patient, by account), the consent that decided (by its on-chain
  key ``patient:grantee:scope:purpose``; none for break-glass), the data asked for (its scope), and
  the anchored audit record: ``detail`` carries the anchored document (base64 of its RFC 8785 form),
  its stage and, once final, its receipt (base64 JSON), transaction, root, block and chain id.

Accounts are identified by CAIP-10 (``eip155:<chain id>:<address>``). BALP's required agent
``network`` and ``user`` are left out (the trail keeps neither a network address nor a person), so
the events do not claim the profile in ``meta.profile``.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

import orjson
from fhir.resources.R4B.auditevent import AuditEvent
from fhir.resources.R4B.bundle import Bundle

from ledger.consent.codes import PURPOSES_OF_USE, SCOPE_LABELS
from ledger.records.receipts import Receipt
from ledger.store.access_trail import AccessEvent
from ledger.store.apps import Organisation
from ledger.values import checksum

DCM: Final = "http://dicom.nema.org/resources/ontology/DCM"
AUTHZ_SUBTYPE: Final = "https://profiles.ihe.net/ITI/BALP/CodeSystem/AuthZsubType"
ACT_REASON: Final = "http://terminology.hl7.org/CodeSystem/v3-ActReason"
PARTICIPATION_TYPE: Final = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"
SECURITY_ROLE_TYPE: Final = "http://terminology.hl7.org/CodeSystem/extra-security-role-type"
SECURITY_SOURCE_TYPE: Final = "http://terminology.hl7.org/CodeSystem/security-source-type"
ENTITY_TYPE: Final = "http://terminology.hl7.org/CodeSystem/audit-entity-type"
OBJECT_ROLE: Final = "http://terminology.hl7.org/CodeSystem/object-role"
RESOURCE_TYPES: Final = "http://hl7.org/fhir/resource-types"
CAIP10: Final = "https://chainagnostic.org/CAIPs/caip-10"
APP_SYSTEM: Final = "urn:careledger:app"
RECORD_SYSTEM: Final = "urn:careledger:record"
CONSENT_SYSTEM: Final = "urn:careledger:consent"
RFC3986: Final = "urn:ietf:rfc:3986"

SUCCESS: Final = "0"
SERIOUS_FAILURE: Final = "8"
BREAK_GLASS_PURPOSE: Final = "BTG"
_BUNDLE_NAMESPACE: Final = uuid.UUID("5d0c3f0e-8d43-4f0e-9a51-6c1b7a0f2e11")
"""Names the entries' ``urn:uuid`` full URLs (a uuid5 of the audit record's id: the same every time)."""


def _coding(system: str, code: str, display: str | None = None) -> dict[str, str]:
    return {"system": system, "code": code, **({"display": display} if display else {})}


def _purpose(code: str) -> dict[str, Any]:
    return {"coding": [_coding(ACT_REASON, code, PURPOSES_OF_USE.get(code))]}


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


@dataclass(frozen=True)
class AuditSource:
    """Who records the events: this service (its public origin) on its chain."""

    origin: str
    chain_id: int

    def account(self, address: str) -> dict[str, str]:
        """An account's CAIP-10 identifier on this chain."""
        return {"system": CAIP10, "value": f"eip155:{self.chain_id}:{checksum(address)}"}

    @property
    def observer(self) -> dict[str, Any]:
        return {"identifier": {"system": RFC3986, "value": self.origin}, "display": "CareLedger"}


def _outcome(event: AccessEvent) -> tuple[str, str]:
    if event.decision == "allowed":
        return SUCCESS, "access allowed by the patient's consent"
    if event.decision == "break_glass":
        return SUCCESS, f"break-glass access without consent, reason {event.reason}"
    return SERIOUS_FAILURE, f"access denied: {event.reason or 'not permitted'}"


def _agents(event: AccessEvent, organisation: Organisation, source: AuditSource) -> list[dict[str, Any]]:
    return [
        {
            "type": {"coding": [_coding(DCM, "110150", "Application")]},
            "who": {
                "identifier": {"system": APP_SYSTEM, "value": str(event.app_id)},
                "display": f"app {event.app_id} of {organisation.name}",
            },
            "requestor": False,
        },
        {
            "type": {"coding": [_coding(PARTICIPATION_TYPE, "IRCP", "information recipient")]},
            "who": {"identifier": source.account(organisation.address), "display": organisation.name},
            "name": organisation.name,
            "requestor": True,
            "purposeOfUse": [_purpose(event.purpose)],
        },
        {
            "type": {"coding": [_coding(SECURITY_ROLE_TYPE, "authserver", "authorization server")]},
            "who": source.observer,
            "requestor": False,
        },
    ]


def _record_entity(event: AccessEvent, stage: str, receipt: Receipt | None, receipt_url: str | None) -> dict[str, Any]:
    details: list[dict[str, str]] = [
        {"type": "document", "valueBase64Binary": _b64(event.document.encode("utf-8"))},
        {"type": "status", "valueString": stage},
    ]
    if event.chain_tx is not None:
        details.append({"type": "break-glass-transaction", "valueString": "0x" + event.chain_tx.hex()})
    if receipt is not None:
        details += [
            {"type": "receipt", "valueBase64Binary": _b64(receipt.to_json().encode("utf-8"))},
            {"type": "transaction", "valueString": "0x" + receipt.transaction_hash.hex()},
            {"type": "root", "valueString": "0x" + receipt.root.hex()},
            {"type": "block", "valueString": str(receipt.block_number)},
            {"type": "chain", "valueString": str(receipt.chain_id)},
        ]
    if receipt_url is not None:
        details.append({"type": "receipt-url", "valueString": receipt_url})
    return {
        "what": {"identifier": {"system": RECORD_SYSTEM, "value": event.record_id}, "display": "anchored audit record"},
        "type": _coding(ENTITY_TYPE, "2", "System Object"),
        "role": _coding(OBJECT_ROLE, "13", "Security Resource"),
        "detail": details,
    }


def _entities(
    event: AccessEvent,
    organisation: Organisation,
    source: AuditSource,
    stage: str,
    receipt: Receipt | None,
    receipt_url: str | None,
) -> list[dict[str, Any]]:
    patient = checksum(event.patient)
    entities: list[dict[str, Any]] = [
        {
            "what": {"identifier": source.account(patient)},
            "type": _coding(ENTITY_TYPE, "1", "Person"),
            "role": _coding(OBJECT_ROLE, "1", "Patient"),
        }
    ]
    if event.decision != "break_glass":
        key = f"{patient}:{organisation.address}:{event.scope}:{event.purpose}"
        entities.append(
            {
                "what": {"identifier": {"system": CONSENT_SYSTEM, "value": key}},
                "type": _coding(RESOURCE_TYPES, "Consent", "Consent"),
                "detail": [{"type": "decision", "valueString": event.reason or "permitted"}],
            }
        )
    entities.append(
        {
            "type": _coding(ENTITY_TYPE, "2", "System Object"),
            "role": _coding(OBJECT_ROLE, "4", "Domain Resource"),
            "name": event.scope,
            "description": SCOPE_LABELS.get(event.scope, f"data of type {event.scope}"),
        }
    )
    entities.append(_record_entity(event, stage, receipt, receipt_url))
    return entities


def access_audit_event(
    event: AccessEvent,
    organisation: Organisation,
    source: AuditSource,
    *,
    stage: str,
    receipt: Receipt | None,
    receipt_url: str | None = None,
) -> dict[str, Any]:
    """The ``AuditEvent`` (as JSON, validated by the R4B model) of one attempt of the trail.

    Args:
        event: The attempt as stored.
        organisation: The organisation whose app asked.
        source: This service, on its chain.
        stage: Where the attempt's audit record stands (pending, sealed, confirming, anchored).
        receipt: The audit record's receipt, once final.
        receipt_url: Where a caller may fetch that receipt, if anywhere.
    """
    recorded = str(orjson.loads(event.document)["time"])
    outcome, description = _outcome(event)
    purposes = [_purpose(event.purpose)]
    if event.decision == "break_glass" and event.purpose != BREAK_GLASS_PURPOSE:
        purposes.append(_purpose(BREAK_GLASS_PURPOSE))
    subtype = ("AuthZ-Role", "Authorization Decision using only Roles")
    if event.decision != "break_glass":
        subtype = ("AuthZ-Consent", "Authorization Decision using Roles and Consent")
    resource = {
        "resourceType": "AuditEvent",
        "id": event.record_id,
        "type": _coding(DCM, "110113", "Security Alert"),
        "subtype": [_coding(AUTHZ_SUBTYPE, *subtype)],
        "action": "E",
        "period": {"start": recorded, "end": recorded},
        "recorded": recorded,
        "outcome": outcome,
        "outcomeDesc": description,
        "purposeOfEvent": purposes,
        "agent": _agents(event, organisation, source),
        "source": {
            "site": source.origin,
            "observer": source.observer,
            "type": [_coding(SECURITY_SOURCE_TYPE, "6", "Security Server")],
        },
        "entity": _entities(event, organisation, source, stage, receipt, receipt_url),
    }
    dumped: dict[str, Any] = AuditEvent.model_validate(resource).model_dump(
        mode="json", by_alias=True, exclude_none=True
    )
    return dumped


def audit_event_bundle(events: Sequence[dict[str, Any]], *, timestamp: float) -> dict[str, Any]:
    """A ``collection`` Bundle of ``AuditEvent``s (as JSON, validated by the R4B model)."""
    bundle = {
        "resourceType": "Bundle",
        "type": "collection",
        "timestamp": datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="milliseconds"),
        "entry": [{"fullUrl": f"urn:uuid:{uuid.uuid5(_BUNDLE_NAMESPACE, e['id'])}", "resource": e} for e in events],
    }
    dumped: dict[str, Any] = Bundle.model_validate(bundle).model_dump(mode="json", by_alias=True, exclude_none=True)
    return dumped
