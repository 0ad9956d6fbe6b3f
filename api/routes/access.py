"""Access to a patient's data: decided by the patient's consent on chain, or by break-glass; always audited.

Every attempt is written to the audit trail (and so anchored) BEFORE the answer is sent: a denied
app gets its 403 only once the denial is durable, and an allowed one its 200 once the access is.
Break-glass access (role ``emergency``, its organisation holding ``EMERGENCY_ROLE`` on chain) skips
consent but is recorded on chain by the organisation's own account, then audited and flagged.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import ConfigDict, Field
from pydantic.alias_generators import to_camel
from starlette.concurrency import run_in_threadpool

from api.deps import AnyCaller, Caller, Reader, ServiceDep
from api.limits import LedgerRoute
from api.routes.audit import AccessAttempt, log_access
from api.routes.consent import EXAMPLE_TX, Code, consent_decision, index_now
from api.schemas import EXAMPLE_PATIENT, Address, Schema
from api.service import Service
from ledger.consent.codes import encode_code, encode_purpose
from ledger.exceptions import ConsentDeniedError, ContractRevertError, PermissionDeniedError
from ledger.store.apps import Role
from ledger.values import checksum

router = APIRouter(prefix="/v1/access", tags=["access"], route_class=LedgerRoute)

EMERGENCY_PURPOSE = "ETREAT"
NOT_EMERGENCY = "not_authorised_for_break_glass"


def _config(example: dict[str, Any]) -> ConfigDict:
    return ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", json_schema_extra={"examples": [example]}
    )


class AccessIn(Schema):
    """The caller's organisation asks to access ``scope`` data of ``patient`` for ``purpose``."""

    patient: Address
    scope: Code
    purpose: Code

    model_config = _config({"patient": EXAMPLE_PATIENT, "scope": "Observation", "purpose": "TREAT"})


class BreakGlassIn(Schema):
    """Emergency access without consent; ``reason`` is a code (never free text about the patient)."""

    patient: Address
    scope: Code
    reason: Code
    purpose: Code = Field(default=EMERGENCY_PURPOSE)

    model_config = _config(
        {"patient": EXAMPLE_PATIENT, "scope": "*", "reason": "UNCONSCIOUS", "purpose": EMERGENCY_PURPOSE}
    )


class AccessOut(Schema):
    """Access granted, and the audit record that proves it was asked for."""

    decision: str = Field(description="allowed or break_glass")
    patient: str
    organisation: str
    scope: str
    purpose: str
    reason: str | None = Field(description="the break-glass reason code")
    break_glass: bool
    break_glass_tx: str | None
    block_number: int | None = Field(description="the block recording a break-glass access")
    audit_record_id: str

    model_config = _config(
        {
            "decision": "break_glass",
            "patient": EXAMPLE_PATIENT,
            "organisation": "General Hospital",
            "scope": "*",
            "purpose": EMERGENCY_PURPOSE,
            "reason": "UNCONSCIOUS",
            "breakGlass": True,
            "breakGlassTx": EXAMPLE_TX,
            "blockNumber": 58,
            "auditRecordId": "4f1c2b9e0d7a4e53b8a61f0c9d2e7a31",
        }
    )


_DENIED: dict[int | str, dict[str, Any]] = {
    403: {
        "description": (
            "consent_required (details.reason: no_consent, expired, not_yet_valid, revoked) or forbidden; "
            "the attempt is in the audit trail"
        ),
        "content": {
            "application/json": {
                "example": {
                    "code": "consent_required",
                    "message": "the patient's consent does not permit this access (revoked)",
                    "details": {
                        "reason": "revoked",
                        "states": {"Observation": "revoked", "*": "none"},
                        "audit_record_id": "4f1c2b9e0d7a4e53b8a61f0c9d2e7a31",
                    },
                }
            }
        },
    }
}


def _answer(caller: Caller, attempt: AccessAttempt, record_id: str, block: int | None = None) -> dict[str, Any]:
    return {
        "decision": attempt.decision,
        "patient": attempt.patient,
        "organisation": caller.organisation.name,
        "scope": attempt.scope,
        "purpose": attempt.purpose,
        "reason": attempt.reason if attempt.decision == "break_glass" else None,
        "breakGlass": attempt.decision == "break_glass",
        "breakGlassTx": attempt.break_glass_tx,
        "blockNumber": block,
        "auditRecordId": record_id,
    }


@router.post(
    "", response_model=AccessOut, summary="Ask to access a patient's data (consent checked, audited)", responses=_DENIED
)
async def request_access(body: AccessIn, caller: Reader, service: ServiceDep) -> dict[str, Any]:
    """Permitted when the patient's consent for this scope, or for '*', is active for the caller's
    organisation and purpose (the contract's ``isPermitted``)."""
    patient = checksum(body.patient)
    decision = await run_in_threadpool(
        consent_decision, service, patient, caller.organisation.address, body.scope, body.purpose
    )
    attempt = AccessAttempt(
        patient, body.scope, body.purpose, "allowed" if decision.permitted else "denied", decision.reason
    )
    record_id = await log_access(service, caller, attempt)
    if not decision.permitted:
        raise ConsentDeniedError(
            f"the patient's consent does not permit this access ({decision.reason})",
            reason=decision.reason,
            states=decision.states,
            audit_record_id=record_id,
        )
    return _answer(caller, attempt, record_id)


def _record_on_chain(service: Service, caller: Caller, body: BreakGlassIn) -> tuple[str, int]:
    """Send the break-glass event from the organisation's own account (it holds EMERGENCY_ROLE)."""
    accessor = service.signer_for(caller.organisation.id)
    receipt = service.ledger.consents.record_emergency_access(accessor, body.patient, body.scope, body.reason)
    index_now(service)
    return receipt["transactionHash"].to_0x_hex(), int(receipt["blockNumber"])


@router.post(
    "/emergency",
    response_model=AccessOut,
    responses=_DENIED,
    summary="Break-glass access without consent (role emergency; recorded on chain, flagged)",
)
async def break_glass(body: BreakGlassIn, caller: AnyCaller, service: ServiceDep) -> dict[str, Any]:
    """A refused break-glass attempt (no emergency role, or no ``EMERGENCY_ROLE`` on chain) is audited too."""
    patient = checksum(body.patient)
    encode_code(body.scope)  # malformed codes and unknown purposes are a 400 before anything is logged
    encode_code(body.reason)
    encode_purpose(body.purpose)
    denied = AccessAttempt(patient, body.scope, body.purpose, "denied", NOT_EMERGENCY)
    if Role.EMERGENCY not in caller.app.roles or not caller.organisation.emergency:
        record_id = await log_access(service, caller, denied)
        raise PermissionDeniedError(
            "break-glass access needs the emergency role and an organisation holding it",
            needed=[Role.EMERGENCY.value],
            audit_record_id=record_id,
        )
    try:
        tx_hash, block = await run_in_threadpool(_record_on_chain, service, caller, body)
    except ContractRevertError:  # the organisation lost EMERGENCY_ROLE on chain
        await log_access(service, caller, denied)
        raise
    attempt = AccessAttempt(patient, body.scope, body.purpose, "break_glass", body.reason, tx_hash)
    record_id = await log_access(service, caller, attempt)
    return _answer(caller, attempt, record_id, block)
