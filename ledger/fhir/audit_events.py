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
* entities: the patient (Person / Patient, by account); the consent that decided (none for
  break-glass): ``what.identifier`` its on-chain key ``patient:grantee:scope:purpose`` (the key
  asked for when no consent was ever granted), ``what.reference`` ``Consent/<id>`` when a FHIR
  Consent of the facade granted it (:mod:`ledger.fhir.consent_links`), ``detail`` the decision
  (``permitted`` or the reason) and the chain state it was read at (``decision-chain``,
  ``decision-registry``, ``decision-block``, ``decision-block-hash``); the data asked for (its
  scope); and the anchored audit record: ``detail`` carries the anchored document (base64 of its
  RFC 8785 form), its stage and, once final, its receipt (base64 JSON), transaction, root, block and
  chain id. A break-glass access, decided by the emergency role in the block that recorded it, has
  that block's ``decision-*`` details on the record beside its ``break-glass-transaction``.

The decision's chain state and consent are read back from the anchored document (version 2 of
:mod:`ledger.consent.access_trail`); an attempt recorded in a version 1 document shows its consent by
the key asked for and no chain state.

Beside it, an attempt that gave access (allowed, or break-glass) has a BALP ``PatientRead`` event:
``type`` rest, ``subtype`` read, ``action`` R, the same agents (CareLedger as the server read from)
and purposes, the patient as a ``Patient/<address>`` entity, the consent that allowed it (its key
and ``Consent/<id>`` reference, when the document names one), the data read and the anchored record.
Each event has a stable id: ``<trail id>-authz`` and ``<trail id>-read`` (:func:`audit_event_id`).

Accounts are identified by CAIP-10 (``eip155:<chain id>:<address>``). BALP's required agent
``network`` and ``user`` are left out (the trail keeps neither a network address nor a person), so
the events do not claim the profile in ``meta.profile``.
"""

from __future__ import annotations

import base64
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final, Literal

import orjson
from fhir.resources.R4B.auditevent import AuditEvent
from fhir.resources.R4B.bundle import Bundle

from ledger.consent.access import ChainState
from ledger.consent.access_trail import RecordedDecision, recorded_decision
from ledger.consent.codes import PURPOSES_OF_USE, SCOPE_LABELS
from ledger.consent.terms import ConsentKey
from ledger.records.receipts import Receipt
from ledger.store.access_trail import AccessEvent
from ledger.store.apps import Organisation
from ledger.values import checksum

DCM: Final = "http://dicom.nema.org/resources/ontology/DCM"
AUDIT_EVENT_TYPE: Final = "http://terminology.hl7.org/CodeSystem/audit-event-type"
RESTFUL_INTERACTION: Final = "http://hl7.org/fhir/restful-interaction"
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
GAVE_ACCESS: Final = frozenset({"allowed", "break_glass"})
"""The trail's decisions that gave access: outcome 0, and a ``PatientRead`` event beside the decision."""
OUTCOME_DECISIONS: Final[dict[str, frozenset[str]]] = {SUCCESS: GAVE_ACCESS, SERIOUS_FAILURE: frozenset({"denied"})}
"""The trail's decisions behind each ``outcome`` an event may have."""

EventKind = Literal["authz", "read"]
_EVENT_ID: Final = re.compile(r"([1-9][0-9]{0,17})-(authz|read)")
_BUNDLE_NAMESPACE: Final = uuid.UUID("5d0c3f0e-8d43-4f0e-9a51-6c1b7a0f2e11")
"""Names the entries' ``urn:uuid`` full URLs (a uuid5 of the audit record's id: the same every time)."""


def audit_event_id(event: AccessEvent, kind: EventKind) -> str:
    """The stable id of the ``kind`` event of an attempt: ``<trail id>-authz`` or ``<trail id>-read``."""
    return f"{event.id}-{kind}"


def parse_audit_event_id(text: str) -> tuple[int, EventKind] | None:
    """The trail id and kind an event id names, or None if it names none."""
    match = _EVENT_ID.fullmatch(text)
    if match is None:
        return None
    kind: EventKind = "authz" if match[2] == "authz" else "read"
    return int(match[1]), kind


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


_AUTHORISATION_SERVER: Final = _coding(SECURITY_ROLE_TYPE, "authserver", "authorization server")
_DESTINATION: Final = _coding(DCM, "110152", "Destination Role ID")


def _agents(
    event: AccessEvent, organisation: Organisation, source: AuditSource, service: dict[str, str]
) -> list[dict[str, Any]]:
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
            "type": {"coding": [service]},
            "who": source.observer,
            "requestor": False,
        },
    ]


def _chain_details(state: ChainState | None) -> list[dict[str, str]]:
    """The ``decision-*`` details of the chain state a decision was read at (none if unknown)."""
    if state is None:
        return []
    return [
        {"type": "decision-chain", "valueString": str(state.chain_id)},
        {"type": "decision-registry", "valueString": state.registry},
        {"type": "decision-block", "valueString": str(state.block)},
        {"type": "decision-block-hash", "valueString": "0x" + state.block_hash.hex()},
    ]


def _record_entity(event: AccessEvent, anchoring: Anchoring, recorded: RecordedDecision) -> dict[str, Any]:
    receipt = anchoring.receipt
    details: list[dict[str, str]] = [
        {"type": "document", "valueBase64Binary": _b64(event.document.encode("utf-8"))},
        {"type": "status", "valueString": anchoring.stage},
    ]
    if event.chain_tx is not None:
        details.append({"type": "break-glass-transaction", "valueString": "0x" + event.chain_tx.hex()})
    if event.decision == "break_glass":
        details += _chain_details(recorded.decided_at)
    if receipt is not None:
        details += [
            {"type": "receipt", "valueBase64Binary": _b64(receipt.to_json().encode("utf-8"))},
            {"type": "transaction", "valueString": "0x" + receipt.transaction_hash.hex()},
            {"type": "root", "valueString": "0x" + receipt.root.hex()},
            {"type": "block", "valueString": str(receipt.block_number)},
            {"type": "chain", "valueString": str(receipt.chain_id)},
        ]
    for kind, url in anchoring.links.items():
        details.append({"type": kind, "valueString": url})
    return {
        "what": {"identifier": {"system": RECORD_SYSTEM, "value": event.record_id}, "display": "anchored audit record"},
        "type": _coding(ENTITY_TYPE, "2", "System Object"),
        "role": _coding(OBJECT_ROLE, "13", "Security Resource"),
        "detail": details,
    }


def _consent_what(event: AccessEvent, organisation: Organisation, recorded: RecordedDecision) -> dict[str, Any]:
    """The deciding consent: its key (the key asked for if the document names none) and its FHIR
    Consent when one granted it."""
    key = recorded.consent_key
    if key is None:
        key = ConsentKey(event.patient, organisation.address, event.scope, event.purpose).text()
    what: dict[str, Any] = {"identifier": {"system": CONSENT_SYSTEM, "value": key}}
    if recorded.fhir_consent is not None:
        what["reference"] = recorded.fhir_consent
    return what


def _consent_entity(event: AccessEvent, organisation: Organisation, recorded: RecordedDecision) -> dict[str, Any]:
    decision = [{"type": "decision", "valueString": event.reason or "permitted"}]
    return {
        "what": _consent_what(event, organisation, recorded),
        "type": _coding(RESOURCE_TYPES, "Consent", "Consent"),
        "detail": decision + _chain_details(recorded.decided_at),
    }


def _patient_entity(event: AccessEvent, source: AuditSource) -> dict[str, Any]:
    return {
        "what": {"identifier": source.account(checksum(event.patient))},
        "type": _coding(ENTITY_TYPE, "1", "Person"),
        "role": _coding(OBJECT_ROLE, "1", "Patient"),
    }


def _entities(
    event: AccessEvent,
    organisation: Organisation,
    source: AuditSource,
    anchoring: Anchoring,
    recorded: RecordedDecision,
) -> list[dict[str, Any]]:
    entities = [_patient_entity(event, source)]
    if event.decision != "break_glass":
        entities.append(_consent_entity(event, organisation, recorded))
    entities.append(_data_entity(event))
    entities.append(_record_entity(event, anchoring, recorded))
    return entities


def _data_entity(event: AccessEvent) -> dict[str, Any]:
    return {
        "type": _coding(ENTITY_TYPE, "2", "System Object"),
        "role": _coding(OBJECT_ROLE, "4", "Domain Resource"),
        "name": event.scope,
        "description": SCOPE_LABELS.get(event.scope, f"data of type {event.scope}"),
    }


def _purposes(event: AccessEvent) -> list[dict[str, Any]]:
    purposes = [_purpose(event.purpose)]
    if event.decision == "break_glass" and event.purpose != BREAK_GLASS_PURPOSE:
        purposes.append(_purpose(BREAK_GLASS_PURPOSE))
    return purposes


@dataclass(frozen=True)
class Anchoring:
    """Where an attempt's audit record stands (pending, sealed, confirming, anchored), its receipt once
    final, and where a caller may fetch that receipt (``entity.detail`` type to URL)."""

    stage: str
    receipt: Receipt | None = None
    links: Mapping[str, str] = field(default_factory=dict)


def _audit_event(
    event: AccessEvent,
    kind: EventKind,
    organisation: Organisation,
    source: AuditSource,
    facts: dict[str, Any],
    service: dict[str, str],
    source_type: dict[str, str],
) -> dict[str, Any]:
    """The event of ``kind`` of an attempt: ``facts`` (type, subtype, action, outcome, entity) and
    what every event has, validated by the R4B model."""
    recorded = str(orjson.loads(event.document)["time"])
    resource = {
        "resourceType": "AuditEvent",
        "id": audit_event_id(event, kind),
        "period": {"start": recorded, "end": recorded},
        "recorded": recorded,
        "purposeOfEvent": _purposes(event),
        "agent": _agents(event, organisation, source, service),
        "source": {"site": source.origin, "observer": source.observer, "type": [source_type]},
        **facts,
    }
    dumped: dict[str, Any] = AuditEvent.model_validate(resource).model_dump(
        mode="json", by_alias=True, exclude_none=True
    )
    return dumped


def access_audit_event(
    event: AccessEvent, organisation: Organisation, source: AuditSource, anchoring: Anchoring
) -> dict[str, Any]:
    """The ``AuthZconsent`` ``AuditEvent`` (as JSON, validated by the R4B model) of one attempt of the trail.

    Args:
        event: The attempt as stored.
        organisation: The organisation whose app asked.
        source: This service, on its chain.
        anchoring: Where the attempt's audit record stands.
    """
    outcome, description = _outcome(event)
    recorded = recorded_decision(orjson.loads(event.document))
    subtype = ("AuthZ-Role", "Authorization Decision using only Roles")
    if event.decision != "break_glass":
        subtype = ("AuthZ-Consent", "Authorization Decision using Roles and Consent")
    facts = {
        "type": _coding(DCM, "110113", "Security Alert"),
        "subtype": [_coding(AUTHZ_SUBTYPE, *subtype)],
        "action": "E",
        "outcome": outcome,
        "outcomeDesc": description,
        "entity": _entities(event, organisation, source, anchoring, recorded),
    }
    security_server = _coding(SECURITY_SOURCE_TYPE, "6", "Security Server")
    return _audit_event(event, "authz", organisation, source, facts, _AUTHORISATION_SERVER, security_server)


def patient_read_event(
    event: AccessEvent, organisation: Organisation, source: AuditSource, anchoring: Anchoring
) -> dict[str, Any]:
    """The BALP ``PatientRead`` ``AuditEvent`` of an attempt that gave access (arguments as
    :func:`access_audit_event`'s).

    Raises:
        ValueError: The attempt was denied: nothing was read.
    """
    if event.decision not in GAVE_ACCESS:
        raise ValueError(f"access event {event.id} was denied: nothing was read")
    patient = checksum(event.patient)
    recorded = recorded_decision(orjson.loads(event.document))
    entities: list[dict[str, Any]] = [
        {
            "what": {"reference": f"Patient/{patient}", "identifier": source.account(patient)},
            "type": _coding(ENTITY_TYPE, "1", "Person"),
            "role": _coding(OBJECT_ROLE, "1", "Patient"),
        }
    ]
    if recorded.consent_key is not None:  # the consent that allowed the read
        what = _consent_what(event, organisation, recorded)
        entities.append({"what": what, "type": _coding(RESOURCE_TYPES, "Consent", "Consent")})
    entities += [_data_entity(event), _record_entity(event, anchoring, recorded)]
    facts = {
        "type": _coding(AUDIT_EVENT_TYPE, "rest", "Restful Operation"),
        "subtype": [_coding(RESTFUL_INTERACTION, "read", "read")],
        "action": "R",
        "outcome": SUCCESS,
        "outcomeDesc": _outcome(event)[1],
        "entity": entities,
    }
    application_server = _coding(SECURITY_SOURCE_TYPE, "4", "Application Server")
    return _audit_event(event, "read", organisation, source, facts, _DESTINATION, application_server)


def audit_events_of(
    event: AccessEvent, organisation: Organisation, source: AuditSource, anchoring: Anchoring
) -> list[dict[str, Any]]:
    """Every ``AuditEvent`` of one attempt, in order: its ``AuthZconsent`` decision, then (when it
    gave access) its ``PatientRead``."""
    events = [access_audit_event(event, organisation, source, anchoring)]
    if event.decision in GAVE_ACCESS:
        events.append(patient_read_event(event, organisation, source, anchoring))
    return events


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
