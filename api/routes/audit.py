"""The audit trail of access attempts (written by ``/v1/access``), read per patient and per organisation.

Each attempt is anchored as a record of kind ``audit`` (:mod:`ledger.consent.access_trail`), so
each entry here names its audit record, whose receipt proves the entry existed, unaltered.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends

from api.declared_errors import raises
from api.deps import Caller, ServiceDep, requires
from api.limits import LedgerRoute
from api.schemas.audit import DEFAULT_PAGE, After, AuditPageOut, Limit, page_json
from api.schemas.common import IdPath, PatientPath
from ledger.consent.access_trail import trail_page
from ledger.exceptions import NotFoundError, PermissionDeniedError, StoreUnavailableError
from ledger.store.apps import Role

router = APIRouter(prefix="/v1/audit", tags=["audit"], route_class=LedgerRoute)

Auditor = Annotated[Caller, Depends(requires(Role.READER, Role.REGISTRAR, Role.ADMIN))]


@router.get("/patients/{patient}", response_model=AuditPageOut, summary="Access attempts about a patient")
@raises(StoreUnavailableError)
def patient_trail(
    patient: PatientPath, caller: Auditor, service: ServiceDep, after: After = 0, limit: Limit = DEFAULT_PAGE
) -> dict[str, Any]:
    """An app sees its own organisation's entries; an app with the admin role sees every organisation's."""
    organisation_id = None if Role.ADMIN in caller.roles else caller.organisation.id
    page = trail_page(service.db.conn, patient=patient, organisation_id=organisation_id, after=after, limit=limit)
    return page_json(page, service.organisation)


@router.get(
    "/organisations/{organisation_id}",
    response_model=AuditPageOut,
    summary="Access attempts made by an organisation's apps",
)
@raises(PermissionDeniedError, NotFoundError, StoreUnavailableError)
def organisation_trail(
    organisation_id: IdPath,
    caller: Auditor,
    service: ServiceDep,
    after: After = 0,
    limit: Limit = DEFAULT_PAGE,
) -> dict[str, Any]:
    """An organisation sees its own trail; an app with the admin role sees any organisation's."""
    if organisation_id != caller.organisation.id and Role.ADMIN not in caller.roles:
        raise PermissionDeniedError("an organisation sees only its own audit trail", organisation_id=organisation_id)
    service.organisation(organisation_id)  # 404 for an unknown organisation
    page = trail_page(service.db.conn, organisation_id=organisation_id, after=after, limit=limit)
    return page_json(page, service.organisation)
