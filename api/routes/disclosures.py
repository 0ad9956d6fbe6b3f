"""The patient's accounting of disclosures (HIPAA 45 CFR 164.528): as JSON, as a printable page, as FHIR.

Only the patient's own session reads it (``POST /v1/patient/sessions``): never an organisation's API
key, never another patient's session. (Guardians sign consent changes for a patient, but sign in to
no session of theirs for the patient's reads.) ``/v1/patient/anchoring`` is public: it tells the
patient page which chain and contract receipts must name, and which node to ask about their roots.
"""

from __future__ import annotations

import time
from datetime import UTC, date, datetime
from typing import Any

from fastapi import APIRouter, Response
from fastapi.responses import HTMLResponse, JSONResponse

from api.declared_errors import raises
from api.deps import ServiceDep
from api.limits import LedgerRoute
from api.patient_auth import SignedInPatient
from api.schemas.disclosures import (
    AccountingOut,
    AnchoringOut,
    AuditEventBundleOut,
    From,
    To,
    accounting_json,
)
from api.service import Service
from ledger.disclosures.accounting import Accounting, accounting_of
from ledger.disclosures.period import MAX_YEARS, requested_period
from ledger.disclosures.printable import CONTENT_SECURITY_POLICY, render_accounting
from ledger.exceptions import (
    AccountingTooLargeError,
    InvalidPeriodError,
    PeriodTooLongError,
    StoreUnavailableError,
)
from ledger.fhir.audit_events import Anchoring, AuditSource, access_audit_event, audit_event_bundle

router = APIRouter(prefix="/v1/patient", tags=["patient"], route_class=LedgerRoute)

PRIVATE = {"Cache-Control": "no-store"}
"""An accounting names who saw a patient's data: no cache keeps a copy."""
_REFUSED: dict[int | str, dict[str, Any]] = {
    400: {
        "description": (
            f"invalid_period (it starts after it ends), period_too_long (over {MAX_YEARS} years) or "
            "accounting_too_large (ask for shorter periods)"
        ),
        "content": {
            "application/json": {
                "example": {
                    "code": "period_too_long",
                    "message": "an accounting covers at most 6 years: a period ending 2026-12-02 starts on "
                    "2020-12-03 or later",
                    "details": {"field": "from", "start": "2019-01-01", "end": "2026-12-02"},
                }
            }
        },
    }
}


ACCOUNTING_ERRORS = (InvalidPeriodError, PeriodTooLongError, AccountingTooLargeError, StoreUnavailableError)


class FhirJsonResponse(JSONResponse):
    media_type = "application/fhir+json"


def _accounting(service: Service, patient: str, start: date | None, end: date | None) -> Accounting:
    period = requested_period(start, end, datetime.now(UTC).date())
    return accounting_of(
        service.db.conn,
        patient,
        period,
        organisation_of=service.organisation,
        receipt_of=service.receipt_of,
        generated_at=time.time(),
    )


def _file_name(accounting: Accounting, suffix: str) -> str:
    period = accounting.period
    return f"accounting-of-disclosures-{accounting.patient}-{period.start}-{period.end}.{suffix}"


@router.get("/anchoring", response_model=AnchoringOut, summary="Where the patient page checks receipts")
def anchoring(service: ServiceDep) -> dict[str, Any]:
    deployment = service.ledger.deployment
    return {
        "chainId": deployment.chain_id,
        "recordAnchor": deployment.record_anchor,
        "publicRpcUrl": service.settings.public_rpc_url,
        "service": service.settings.origin,
    }


@router.get(
    "/{patient}/disclosures",
    response_model=AccountingOut,
    responses=_REFUSED,
    summary="My accounting of disclosures (HIPAA 164.528), every entry with its receipt",
)
@raises(*ACCOUNTING_ERRORS)
def my_disclosures(
    patient: SignedInPatient, service: ServiceDep, response: Response, start: From = None, end: To = None
) -> dict[str, Any]:
    """Disclosures, break-glass accesses and denied attempts over the period (at most six years;
    by default the six years up to today), each with its anchored audit document and receipt."""
    accounting = _accounting(service, patient, start, end)
    response.headers.update(PRIVATE)
    deployment = service.ledger.deployment
    return accounting_json(accounting, chain_id=deployment.chain_id, record_anchor=deployment.record_anchor)


@router.get(
    "/{patient}/disclosures/html",
    response_class=HTMLResponse,
    responses=_REFUSED,
    summary="My accounting of disclosures as a printable page",
)
@raises(*ACCOUNTING_ERRORS)
def my_disclosures_page(patient: SignedInPatient, service: ServiceDep, start: From = None, end: To = None) -> Response:
    accounting = _accounting(service, patient, start, end)
    headers = {
        **PRIVATE,
        "Content-Security-Policy": CONTENT_SECURITY_POLICY,
        "X-Content-Type-Options": "nosniff",
        "Content-Disposition": f'inline; filename="{_file_name(accounting, "html")}"',
    }
    return HTMLResponse(render_accounting(accounting), headers=headers)


@router.get(
    "/{patient}/disclosures/fhir",
    response_class=FhirJsonResponse,
    response_model=AuditEventBundleOut,
    responses=_REFUSED,
    summary="My accounting of disclosures as a FHIR R4 Bundle of AuditEvents",
)
@raises(*ACCOUNTING_ERRORS)
def my_disclosures_bundle(
    patient: SignedInPatient, service: ServiceDep, response: Response, start: From = None, end: To = None
) -> dict[str, Any]:
    """One BALP-shaped ``AuditEvent`` per entry (all three sections, oldest first); each carries its
    anchored document and, once final, its receipt in ``entity.detail``."""
    accounting = _accounting(service, patient, start, end)
    source = AuditSource(service.settings.origin, service.ledger.deployment.chain_id)
    events = [
        access_audit_event(entry.event, entry.recipient, source, Anchoring(entry.stage, entry.receipt))
        for entry in accounting.entries
    ]
    response.headers.update(PRIVATE)
    return audit_event_bundle(events, timestamp=accounting.generated_at)
