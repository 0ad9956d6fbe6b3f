"""Access to a patient's data: decided by the patient's consent on chain, or by break-glass; always audited.

Every attempt is written to the audit trail (and so anchored) BEFORE the answer is sent: a denied
app gets its 403 only once the denial is durable, and an allowed one its 200 once the access is.
Break-glass access (role ``emergency``, its organisation holding ``EMERGENCY_ROLE`` on chain, and an
emergency purpose of use) skips consent but is recorded on chain, with its purpose, by the
organisation's own account, then audited and flagged.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool

from api.declared_errors import raises
from api.deps import AnyCaller, Caller, Reader, ServiceDep
from api.limits import LedgerRoute
from api.schemas.access import DENIED, AccessIn, AccessOut, BreakGlassIn, access_json
from api.service import Service
from ledger.consent.access import (
    NOT_EMERGENCY,
    NOT_EMERGENCY_PURPOSE,
    ChainState,
    ConsentDecision,
    chain_state,
    decide,
    require_emergency_purpose,
)
from ledger.consent.access_trail import AccessAttempt, audit_statements
from ledger.consent.codes import encode_purpose
from ledger.exceptions import (
    ChainError,
    ChainUnavailableError,
    ConsentDeniedError,
    ContractRevertError,
    InvalidCodeError,
    NotEmergencyPurposeError,
    PermissionDeniedError,
    StorageFullError,
    StoreUnavailableError,
)
from ledger.fhir.consent_links import deciding_fhir_consent
from ledger.store.apps import Role
from ledger.store.chain_index import indexed_to
from ledger.values import encode_code

router = APIRouter(prefix="/v1/access", tags=["access"], route_class=LedgerRoute)
ACCESS_ERRORS = (InvalidCodeError, ChainUnavailableError, ChainError, StoreUnavailableError, StorageFullError)


async def _audit(service: Service, caller: Caller, attempt: AccessAttempt) -> str:
    """Write one attempt durably (group commit); returns its audit record id."""
    record_id, statements = audit_statements(service.record_ids, caller.organisation, caller.app.id, attempt)
    await service.intake.submit(statements)
    return record_id


@router.post(
    "",
    response_model=AccessOut,
    summary="Ask to access a patient's data (consent checked, audited)",
    responses=DENIED,
)
@raises(ConsentDeniedError, *ACCESS_ERRORS)
async def request_access(body: AccessIn, caller: Reader, service: ServiceDep) -> dict[str, Any]:
    """Permitted when the patient's consent for this scope, or for '*', is active for the caller's
    organisation and purpose (the contract's ``isPermitted``)."""
    decision, fhir_consent = await run_in_threadpool(_decide, service, caller, body)
    attempt = AccessAttempt(
        body.patient,
        body.scope,
        body.purpose,
        "allowed" if decision.permitted else "denied",
        decision.reason,
        decided_at=decision.chain,
        consent=decision.consent,
        fhir_consent=fhir_consent,
    )
    record_id = await _audit(service, caller, attempt)
    if not decision.permitted:
        raise ConsentDeniedError(
            f"the patient's consent does not permit this access ({decision.reason})",
            reason=decision.reason,
            states=decision.states,
            audit_record_id=record_id,
        )
    return access_json(caller.organisation, attempt, record_id)


def _decide(service: Service, caller: Caller, body: AccessIn) -> tuple[ConsentDecision, str | None]:
    """The consent decision at the newest block, and the FHIR Consent that granted the deciding
    consent as of that block (None if none did, or the index does not show it yet)."""
    ledger, grantee = service.ledger, caller.organisation.address
    decision = decide(ledger.consents, ledger.chain, body.patient, grantee, body.scope, body.purpose)
    if decision.deciding is None:
        return decision, None
    covered = indexed_to(service.db.conn)
    if (covered is None or covered < decision.chain.block) and service.settings.confirmations == 0:
        # the index names the Consent only once it has read the decision's block (with confirmations it
        # reads only blocks that deep: indexing now cannot reach the newest, and the link is None)
        service.index_now()
    return decision, deciding_fhir_consent(service.db.conn, decision.deciding, decision.chain.block)


def _record_on_chain(service: Service, caller: Caller, body: BreakGlassIn) -> tuple[bytes, ChainState]:
    """Send the break-glass event from the organisation's own account (it holds EMERGENCY_ROLE);
    the access was decided at the block that recorded it."""
    accessor = service.signer_for(caller.organisation.id)
    consents = service.ledger.consents
    receipt = consents.record_emergency_access(accessor, body.patient, body.scope, body.purpose, body.reason)
    service.index_now()
    block = chain_state(consents, int(receipt["blockNumber"]), bytes(receipt["blockHash"]))
    return bytes(receipt["transactionHash"]), block


@router.post(
    "/emergency",
    response_model=AccessOut,
    responses=DENIED,
    summary="Break-glass access without consent (role emergency; recorded on chain, flagged)",
)
@raises(PermissionDeniedError, NotEmergencyPurposeError, "AccessControlUnauthorizedAccount", *ACCESS_ERRORS)
async def break_glass(body: BreakGlassIn, caller: AnyCaller, service: ServiceDep) -> dict[str, Any]:
    """A refused break-glass attempt (no emergency role, no ``EMERGENCY_ROLE`` on chain, or a purpose
    that is no emergency: 403 ``not_an_emergency_purpose``, before any transaction) is audited too."""
    encode_code(body.scope)  # malformed codes and unknown purposes are a 400 before anything is logged
    encode_code(body.reason)
    encode_purpose(body.purpose)
    denied = AccessAttempt(body.patient, body.scope, body.purpose, "denied", NOT_EMERGENCY)
    if Role.EMERGENCY not in caller.roles or not caller.organisation.emergency:
        record_id = await _audit(service, caller, denied)
        raise PermissionDeniedError(
            "break-glass access needs the emergency role and an organisation holding it",
            needed=[Role.EMERGENCY.value],
            audit_record_id=record_id,
        )
    try:
        await run_in_threadpool(require_emergency_purpose, service.ledger.consents, body.purpose)
    except NotEmergencyPurposeError as err:
        err.details["audit_record_id"] = await _audit(service, caller, replace(denied, reason=NOT_EMERGENCY_PURPOSE))
        raise
    try:
        tx_hash, decided_at = await run_in_threadpool(_record_on_chain, service, caller, body)
    except ContractRevertError:  # the organisation lost EMERGENCY_ROLE on chain
        await _audit(service, caller, denied)
        raise
    attempt = AccessAttempt(
        body.patient, body.scope, body.purpose, "break_glass", body.reason, tx_hash, decided_at=decided_at
    )
    record_id = await _audit(service, caller, attempt)
    return access_json(caller.organisation, attempt, record_id, decided_at.block)
