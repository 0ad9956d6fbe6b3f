"""The FHIR R4 facade at ``/fhir/r4``: the CapabilityStatement, Consent, AuditEvent and Provenance.

Everything is ``application/fhir+json``; every error is an ``OperationOutcome`` (:mod:`api.errors`,
with the status the ``/v1`` API gives the same error). Callers authenticate as on ``/v1``: an
organisation's app (its API key: its organisation's Consents, records and access trail) or a
patient's session token (the patient's own). Creating and withdrawing a Consent relays the patient's
signature and draws on the same gas budgets as ``/v1/consents`` and ``/v1/patient``. The mapping
itself lives in :mod:`ledger.fhir`. Chain calls block, so routes that make them are plain ``def``
routes.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import Response

from api.declared_errors import raises
from api.deps import ServiceDep
from api.limits import LedgerRoute
from api.patient_auth import PatientOrApp, PatientOrAppDep
from api.relay_budgets import OrganisationLimits, PatientLimits, admission
from api.schemas.common import RECORD_ID_PATTERN, ConsentIdPath, RecordIdPath
from api.schemas.consent import RELAY_ERRORS
from api.schemas.fhir import (
    FHIR_BASE_PATH,
    FhirResponse,
    fhir_resource_body,
    fhir_response,
    resource_request_body,
    resource_responses,
)
from api.service import Service
from ledger.exceptions import (
    ConflictError,
    InputError,
    InsufficientScopeError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitedError,
    StorageFullError,
    StoreUnavailableError,
    UnsupportedFhirError,
)
from ledger.fhir.audit_event_search import (
    OUTCOMES,
    AuditTrail,
    audit_event_query,
    read_audit_event,
    search_audit_events,
)
from ledger.fhir.audit_events import AuditSource
from ledger.fhir.capability import capability_statement
from ledger.fhir.consent_resources import (
    ConsentResource,
    Viewer,
    consent_query,
    create_consent,
    read_consent_resource,
    search_consents,
    withdraw_consent,
)
from ledger.fhir.outcome import searchset
from ledger.fhir.provenance import readable_provenance
from ledger.fhir.provenance_search import provenance_query, search_provenance
from ledger.fhir.search_parameters import DEFAULT_COUNT, MAX_COUNT
from ledger.fhir.systems import RECORD_SYSTEM
from ledger.store.apps import Role
from ledger.store.records import RECORD_ID_REGEX

router = APIRouter(prefix=FHIR_BASE_PATH, tags=["fhir"], route_class=LedgerRoute, default_response_class=FhirResponse)
CHANGE_ERRORS = (
    *RELAY_ERRORS,
    RateLimitedError,  # the relay budgets, charged by admission()
    UnsupportedFhirError,
    NotFoundError,
    ConflictError,
    StoreUnavailableError,
    StorageFullError,
)
"""What creating or withdrawing a Consent can refuse with: the relay's refusals and the resource's own."""
VIEW_ERRORS = (PermissionDeniedError, InsufficientScopeError, StoreUnavailableError)


def _reference_parameter(name: str, resource: str, what: str) -> dict[str, Any]:
    """A search parameter naming an account: ``<resource>/<address>`` or the address alone."""
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": f"{what}: `{resource}/<address>` or the address (EIP-55 checksummed in mixed case)",
        "schema": {
            "anyOf": [
                {"type": "string", "pattern": r"^0x[0-9a-fA-F]{40}$", "format": "eip55-address"},
                {"type": "string", "pattern": rf"^{resource}/0x([0-9a-f]{{40}}|[0-9A-F]{{40}})$"},
            ]
        },
    }


PATIENT_PARAMETER = _reference_parameter("patient", "Patient", "the patient")
STATUS_PARAMETER = {
    "name": "status",
    "in": "query",
    "required": False,
    "description": "`active` or `inactive` (any other status matches no Consent)",
    "schema": {"type": "string", "examples": ["active"]},
}
COUNT_PARAMETER = {
    "name": "_count",
    "in": "query",
    "required": False,
    "description": f"entries per page, 1 to {MAX_COUNT}",
    "schema": {"type": "string", "pattern": r"^([1-9]|[1-9][0-9]|1[0-9][0-9]|200)$"},
}
CURSOR_PARAMETER = {"name": "_cursor", "in": "query", "required": False, "schema": {"type": "string"}}
CONSENT_SEARCH_PARAMETERS = [
    PATIENT_PARAMETER,
    STATUS_PARAMETER,
    COUNT_PARAMETER,
    {**CURSOR_PARAMETER, "description": "from the `next` link: the id of the last Consent of the page before"},
]

IGNORED_PARAMETERS = ("_format",)
VERSION = "0.1.0"
EXAMPLE_CONSENT: dict[str, Any] = {
    "resourceType": "Consent",
    "status": "active",
    "scope": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "patient-privacy"}]},
    "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
    "patient": {"reference": "Patient/0x70997970C51812dc3A010C7d01b50e0d17dc79C8"},
    "dateTime": "2026-01-01",
    "performer": [{"reference": "Patient/0x70997970C51812dc3A010C7d01b50e0d17dc79C8"}],
    "provision": {
        "type": "permit",
        "period": {"start": "2026-01-01", "end": "2026-12-31"},
        "actor": [
            {
                "role": {
                    "coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType", "code": "IRCP"}]
                },
                "reference": {"reference": "Organization/0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC"},
            }
        ],
        "purpose": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActReason", "code": "TREAT"}],
        "class": [{"system": "http://hl7.org/fhir/resource-types", "code": "Observation"}],
    },
    "extension": [
        {
            "url": "urn:careledger:fhir:eip712-signature",
            "extension": [
                {"url": "deadline", "valueUnsignedInt": 1767229200},
                {"url": "signature", "valueBase64Binary": "<65 bytes of the ConsentGrantSet signature, base64>"},
            ],
        }
    ],
}
ResourceBody = Annotated[dict[str, Any], Depends(fhir_resource_body)]


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/") + FHIR_BASE_PATH


def _viewer(who: PatientOrApp) -> Viewer:
    """Who reads: the patient's session, or an organisation's app with a reading role."""
    if who.caller is None:
        return Viewer(patient=who.patient)
    who.caller.require(Role.READER, Role.REGISTRAR)
    return Viewer(organisation=who.caller.organisation.address)


def _consent_answer(request: Request, served: ConsentResource, status_code: int = 200) -> Response:
    version = str(served.stored.version)
    headers = {"ETag": f'W/"{version}"', "Last-Modified": _http_date(served.stored.updated_at)}
    if status_code == 201:
        headers["Location"] = f"{_base(request)}/Consent/{served.stored.id}/_history/{version}"
    return fhir_response(served.to_fhir(), status_code, headers)


def _http_date(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%a, %d %b %Y %H:%M:%S GMT")


@router.get(
    "/metadata",
    summary="The CapabilityStatement: exactly what this FHIR R4 facade supports",
    responses=resource_responses("CapabilityStatement", "the CapabilityStatement"),
)
def metadata(request: Request) -> Response:
    """Public, as FHIR servers' capability statements are."""
    date = datetime.now(UTC).date().isoformat()
    return fhir_response(capability_statement(base=_base(request), version=VERSION, date=date))


@router.post(
    "/Consent",
    status_code=201,
    summary="Create a Consent: granted on chain whole, on the patient's signature over its terms",
    openapi_extra=resource_request_body(EXAMPLE_CONSENT),
    responses={
        **resource_responses("Consent", "the Consent created", 201),
        **resource_responses("Consent", "the same signed Consent, created before (a retry)"),
    },
)
@raises(*CHANGE_ERRORS)
def create(
    request: Request,
    body: ResourceBody,
    who: PatientOrAppDep,
    service: ServiceDep,
    organisations: OrganisationLimits,
    patients: PatientLimits,
) -> Response:
    """An IHE PCF-shaped Consent, status ``active``, carrying the ``ConsentGrantSet`` signature (see the
    README's FHIR quick start). Relayed by an app with the relayer role, or by the patient's own session.
    The same signed Consent sent again (a retry) answers the same Consent: 201 if this request granted
    it (the first died before answering), 200 if it was granted already."""
    admit = admission(request, who, organisations, patients, revocation=False)
    served, created = create_consent(service.relayer, service.db, body, admit)
    return _consent_answer(request, served, 201 if created else 200)


@router.get(
    "/Consent/{consent_id:consent_id}",
    summary="Read a Consent (status from the chain now)",
    responses=resource_responses("Consent", "the Consent"),
)
@raises(NotFoundError, *VIEW_ERRORS)
def read(request: Request, consent_id: ConsentIdPath, who: PatientOrAppDep, service: ServiceDep) -> Response:
    found = read_consent_resource(service.ledger.consents, service.db.conn, _viewer(who), consent_id)
    return _consent_answer(request, found)


@router.put(
    "/Consent/{consent_id:consent_id}",
    summary="Withdraw a Consent: status inactive, on the patient's signed revocation",
    openapi_extra=resource_request_body({**EXAMPLE_CONSENT, "id": "<the id>", "status": "inactive"}),
    responses=resource_responses("Consent", "the Consent withdrawn"),
)
@raises(*CHANGE_ERRORS)
def update(
    request: Request,
    consent_id: ConsentIdPath,
    body: ResourceBody,
    who: PatientOrAppDep,
    service: ServiceDep,
    organisations: OrganisationLimits,
    patients: PatientLimits,
) -> Response:
    """The only update is a withdrawal: the same Consent with ``status`` ``inactive`` and a
    ``ConsentRevocationSet`` signature over the same terms."""
    viewer = Viewer(patient=who.patient) if who.caller is None else Viewer(organisation=who.caller.organisation.address)
    admit = admission(request, who, organisations, patients, revocation=True)
    served = withdraw_consent(service.relayer, service.db.conn, viewer, consent_id, body, admit)
    return _consent_answer(request, served)


@router.get(
    "/Consent",
    summary="Search Consents by patient and status (IHE ITI-108), paged",
    responses=resource_responses("Bundle", "a searchset Bundle of the Consents found, a page of them"),
    openapi_extra={"parameters": CONSENT_SEARCH_PARAMETERS},
)
@raises(InputError, *VIEW_ERRORS)
def search(request: Request, who: PatientOrAppDep, service: ServiceDep) -> Response:
    """``patient`` (``Patient/<address>`` or the address), ``status`` (``active`` or ``inactive``),
    ``_count`` (at most 200, oldest first); the ``next`` link carries the cursor of the following page."""
    params = {k: request.query_params.getlist(k) for k in request.query_params if k not in IGNORED_PARAMETERS}
    page = search_consents(service.ledger.consents, service.db.conn, _viewer(who), consent_query(params))
    next_url = str(request.url.include_query_params(_cursor=page.next_cursor)) if page.next_cursor else None
    bundle = searchset(
        [c.to_fhir() for c in page.consents],
        base=_base(request),
        self_url=str(request.url),
        next_url=next_url,
        paged=not page.whole,
    )
    return fhir_response(bundle)


def _search_params(request: Request) -> dict[str, list[str]]:
    """A paged search's parameters, each name's values in order (``_format`` left out)."""
    return {k: request.query_params.getlist(k) for k in request.query_params if k not in IGNORED_PARAMETERS}


def _page_answer(request: Request, resources: list[dict[str, Any]], next_cursor: str | None) -> Response:
    """One page of a paged search as a searchset Bundle, its ``next`` link carrying the cursor."""
    next_url = str(request.url.include_query_params(_cursor=next_cursor)) if next_cursor else None
    bundle = searchset(resources, base=_base(request), self_url=str(request.url), next_url=next_url, paged=True)
    return fhir_response(bundle)


def _trail(request: Request, service: Service) -> AuditTrail:
    source = AuditSource(service.settings.origin, service.ledger.deployment.chain_id)
    return AuditTrail(service.db.conn, source, _base(request), service.organisation, service.receipt_of)


AuditEventIdPath = Annotated[
    str,
    Path(json_schema_extra={"pattern": r"^[1-9][0-9]{0,17}-(authz|read)$"}, description="`<trail id>-authz` or -read"),
]
AUDIT_SEARCH_PARAMETERS = [
    PATIENT_PARAMETER,
    {
        "name": "date",
        "in": "query",
        "required": False,
        "description": "`ge`, `gt`, `le`, `lt` or `eq` and a date or instant; twice for a range",
        "style": "form",
        "explode": True,
        "schema": {"type": "array", "maxItems": 2, "items": {"type": "string", "examples": ["ge2026-01-01"]}},
    },
    _reference_parameter("agent", "Organization", "the organisation that asked"),
    {
        "name": "outcome",
        "in": "query",
        "required": False,
        "description": "0 allowed, 8 denied (http://hl7.org/fhir/audit-event-outcome)",
        "schema": {"type": "string", "enum": list(OUTCOMES)},
    },
    COUNT_PARAMETER,
    CURSOR_PARAMETER,
]


@router.get(
    "/AuditEvent/{event_id}",
    summary="Read an AuditEvent (IHE BALP) of the access trail",
    responses=resource_responses("AuditEvent", "the AuditEvent"),
)
@raises(NotFoundError, *VIEW_ERRORS)
def read_audit(request: Request, event_id: AuditEventIdPath, who: PatientOrAppDep, service: ServiceDep) -> Response:
    """``<trail id>-authz`` (the access decision) or ``<trail id>-read`` (the read it allowed)."""
    return fhir_response(read_audit_event(_trail(request, service), _viewer(who), event_id))


@router.get(
    "/AuditEvent",
    summary="Search AuditEvents by patient, date, agent and outcome, paged",
    responses=resource_responses("Bundle", "a searchset Bundle of the AuditEvents, a page of them"),
    openapi_extra={"parameters": AUDIT_SEARCH_PARAMETERS},
)
@raises(InputError, *VIEW_ERRORS)
def search_audit(request: Request, who: PatientOrAppDep, service: ServiceDep) -> Response:
    """``patient`` (``Patient/<address>``), ``date`` (``ge``/``gt``/``le``/``lt``/``eq`` a date or instant;
    twice for a range), ``agent`` (``Organization/<address>``), ``outcome`` (``0`` given, ``8`` denied),
    ``_count`` (at most 200); the ``next`` link carries the cursor of the following page."""
    page = search_audit_events(_trail(request, service), _viewer(who), audit_event_query(_search_params(request)))
    return _page_answer(request, page.events, page.next_cursor)


@router.get(
    "/Provenance/{record_id:record_id}",
    summary="The Provenance of an anchored record, with its receipt",
    responses=resource_responses("Provenance", "the Provenance"),
)
@raises(NotFoundError, *VIEW_ERRORS)
def provenance(record_id: RecordIdPath, who: PatientOrAppDep, service: ServiceDep) -> Response:
    """The record's organisation or its patient's session; a record not anchored (and final) yet has none."""
    found = readable_provenance(
        service.db.conn, _viewer(who), record_id, receipt_of=service.receipt_of, organisation_of=service.organisation
    )
    return fhir_response(found)


PROVENANCE_SEARCH_PARAMETERS = [
    {
        "name": "target",
        "in": "query",
        "required": False,
        "description": f"the record: its id, or its identifier `{RECORD_SYSTEM}|<record id>`",
        "schema": {"type": "string", "pattern": rf"^({re.escape(RECORD_SYSTEM)}\|)?{RECORD_ID_REGEX}$"},
    },
    _reference_parameter("patient", "Patient", "the patient the records are about"),
    {**COUNT_PARAMETER, "description": f"Provenances per page, 1 to {MAX_COUNT} (default {DEFAULT_COUNT})"},
    {
        **CURSOR_PARAMETER,
        "description": "from the `next` link: the id of the first record of the page",
        "schema": {"type": "string", "pattern": RECORD_ID_PATTERN},
    },
]


@router.get(
    "/Provenance",
    summary="Search the Provenances of anchored records by target and patient, paged",
    responses=resource_responses("Bundle", "a searchset Bundle of the Provenances, a page of them"),
    openapi_extra={"parameters": PROVENANCE_SEARCH_PARAMETERS},
)
@raises(InputError, *VIEW_ERRORS)
def search_provenances(request: Request, who: PatientOrAppDep, service: ServiceDep) -> Response:
    """``target`` (the record id, or ``urn:careledger:record|<id>``), ``patient`` (``Patient/<address>``),
    ``_count`` (at most 200); only records anchored for good, of the caller's organisation or, for a
    patient's session, about the patient; the ``next`` link carries the cursor of the following page."""
    page = search_provenance(
        service.db.conn,
        _viewer(who),
        provenance_query(_search_params(request)),
        receipt_of=service.receipt_of,
        organisation_of=service.organisation,
    )
    return _page_answer(request, page.provenances, page.next_cursor)
