"""Patient consent: the EIP-712 domain, relaying patient-signed changes, the consent list and check.

Patients sign with their own wallets; the API only relays (its relayer account pays the gas) after
the library checked locally what it can (:mod:`ledger.consent.relay`). Chain calls block, so these
routes are plain ``def`` routes (FastAPI runs them in its thread pool).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from api.declared_errors import raises
from api.deps import AnyCaller, Caller, Reader, ServiceDep
from api.limits import LedgerRoute
from api.relay_budgets import Budgeted
from api.schemas.common import EXAMPLE_PATIENT, Address, Code, PatientPath, Purpose
from api.schemas.consent import (
    RELAY_ERRORS,
    ConsentCheckOut,
    DomainOut,
    GranteeConsentsOut,
    NonceOut,
    RelayOut,
    SignedGrantIn,
    SignedGuardianIn,
    SignedRevocationIn,
    check_json,
    consent_json,
    relay_json,
)
from ledger.consent.access import decide
from ledger.consent.overview import consents_granted_to
from ledger.consent.typed_data import CONSENT_TYPES, EIP712_DOMAIN_TYPE
from ledger.exceptions import (
    ChainError,
    ChainUnavailableError,
    InvalidCodeError,
    PermissionDeniedError,
    StoreUnavailableError,
)
from ledger.store.apps import Role
from ledger.values import ADDRESS_PATTERN

router = APIRouter(prefix="/v1", tags=["consent"], route_class=LedgerRoute)


@router.get("/consents/domain", response_model=DomainOut, summary="The EIP-712 domain and types patients sign")
def domain(_: AnyCaller, service: ServiceDep) -> dict[str, Any]:
    """Build ``{domain, types, primaryType, message}`` from these for ``eth_signTypedData_v4``; the
    message carries the patient's current nonce (``GET /v1/patients/{patient}/nonce``)."""
    return {
        "domain": service.ledger.consents.domain,
        "types": {"EIP712Domain": EIP712_DOMAIN_TYPE, **CONSENT_TYPES},
        "primaryTypes": list(CONSENT_TYPES),
    }


@router.get("/patients/{patient}/nonce", response_model=NonceOut, summary="The patient's next signature nonce")
@raises(ChainUnavailableError, ChainError)
def nonce(patient: PatientPath, _: AnyCaller, service: ServiceDep) -> dict[str, Any]:
    return {"patient": patient, "nonce": service.ledger.consents.nonce(patient)}


_RELAY_LIMITED: dict[int | str, dict[str, Any]] = {
    429: {"description": "rate_limited: this app's (or every app's) relays are spent for now; see Retry-After"},
}


@router.post(
    "/consents/grants",
    response_model=RelayOut,
    responses=_RELAY_LIMITED,
    summary="Relay a patient-signed consent grant (role relayer)",
)
@raises(*RELAY_ERRORS)
def relay_grant(body: SignedGrantIn, _: Budgeted, service: ServiceDep) -> dict[str, Any]:
    """Checked locally first (codes, window, deadline, EOA signature), then sent by the relayer."""
    return relay_json(service.relayer.grant(body.terms(), body.signed()))


@router.post(
    "/consents/revocations",
    response_model=RelayOut,
    responses=_RELAY_LIMITED,
    summary="Relay a patient-signed revocation (role relayer)",
)
@raises(*RELAY_ERRORS)
def relay_revocation(body: SignedRevocationIn, _: Budgeted, service: ServiceDep) -> dict[str, Any]:
    return relay_json(service.relayer.revoke(body.key(), body.signed()))


@router.post(
    "/consents/guardians",
    response_model=RelayOut,
    responses=_RELAY_LIMITED,
    summary="Relay a patient-signed guardian appointment; validUntil 0 removes (role relayer)",
)
@raises(*RELAY_ERRORS)
def relay_guardian(body: SignedGuardianIn, _: Budgeted, service: ServiceDep) -> dict[str, Any]:
    """A guardian may then sign grants and revocations for the patient until ``validUntil``."""
    return relay_json(service.relayer.set_guardian(body.patient, body.guardian, body.valid_until, body.signed()))


READ_ERRORS = (PermissionDeniedError, ChainUnavailableError, ChainError, StoreUnavailableError)


def _grantee(caller: Caller, grantee: str | None) -> str:
    """The organisation asked about: the caller's own; another only for an app with the admin role."""
    if grantee is None or grantee == caller.organisation.address:
        return caller.organisation.address
    if Role.ADMIN not in caller.roles:
        raise PermissionDeniedError(
            "an organisation sees only consents given to itself", grantee=grantee, needed=[Role.ADMIN.value]
        )
    return grantee


GranteeQuery = Annotated[
    Address | None, Query(pattern=ADDRESS_PATTERN, description="default: the caller's organisation (others: admins)")
]


@router.get(
    "/patients/{patient}/consents",
    response_model=GranteeConsentsOut,
    summary="The patient's consents to my organisation, with their state",
)
@raises(*READ_ERRORS)
def list_consents(
    patient: PatientPath, caller: Reader, service: ServiceDep, grantee: GranteeQuery = None
) -> dict[str, Any]:
    """Keys come from the indexed history (never a chain scan); each key's state is read from the
    contract's ``consentOf`` now. Consents to other organisations, guardians and the history are
    the patient's own (the patient page reads them with a patient session)."""
    grantee = _grantee(caller, grantee)
    found = consents_granted_to(service.ledger.consents, service.ledger.chain, service.db.conn, patient, grantee)
    return {"patient": patient, "grantee": grantee, "consents": [consent_json(c) for c in found]}


@router.get(
    "/consents/check",
    response_model=ConsentCheckOut,
    summary="May an organisation access a patient's data of a scope for a purpose now?",
)
@raises(InvalidCodeError, *READ_ERRORS)
def check_consent(
    caller: Reader,
    service: ServiceDep,
    patient: Annotated[Address, Query(pattern=ADDRESS_PATTERN, examples=[EXAMPLE_PATIENT])],
    scope: Annotated[Code, Query(examples=["Observation"])],
    purpose: Annotated[Purpose, Query(examples=["TREAT"])],
    grantee: GranteeQuery = None,
) -> dict[str, Any]:
    """A consent for the '*' scope covers every scope. Nothing is logged: see ``POST /v1/access``."""
    grantee = _grantee(caller, grantee)
    decision = decide(service.ledger.consents, service.ledger.chain, patient, grantee, scope, purpose)
    return check_json(patient, grantee, scope, purpose, decision)
