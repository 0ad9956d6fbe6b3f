"""The patient's own endpoints, used by the patient page (``/patient``); no API key anywhere.

- Writes (grant, revoke, guardian) are authorised by the patient's EIP-712 signature alone and
  relayed exactly as ``/v1/consents/...`` does (the same functions). They cost the relayer gas, so
  they are rate-limited per client IP (every attempt) and per patient (attempts whose signature
  passed the local checks: nobody else can spend a patient's budget).
- Reads of the patient's consents and access trail need a session token
  (``POST /v1/patient/sessions`` with a signed ``PatientSession``), valid for that patient only.
- Organisations, purposes, scopes, the signing domains and nonces are public.
"""

from __future__ import annotations

import time
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request

from api.declared_errors import raises
from api.deps import ServiceDep
from api.limits import LedgerRoute
from api.patient_auth import SignedInPatient, TokensDep
from api.rate_limit import client_address
from api.relay_budgets import RELAYS_PER_PATIENT, ClientLimited, RelayLimits, relay_limits
from api.schemas.audit import DEFAULT_PAGE, After, AuditPageOut, Limit, page_json
from api.schemas.common import PatientPath
from api.schemas.consent import (
    RELAY_ERRORS,
    ConsentListOut,
    NonceOut,
    RelayOut,
    SignedGrantIn,
    SignedGuardianIn,
    SignedRevocationIn,
    overview_json,
    relay_json,
)
from api.schemas.patient import ChallengeIn, ChallengeOut, CodesOut, OrganisationsOut, SessionIn, SessionOut, SigningOut
from api.service import Service
from ledger.consent.access_trail import trail_page
from ledger.consent.codes import PURPOSES_OF_USE, SCOPE_LABELS
from ledger.consent.overview import consent_overview
from ledger.consent.patient_session import (
    CHALLENGE_SECONDS,
    MAX_SESSION_SECONDS,
    SESSION_DOMAIN_TYPE,
    SESSION_TYPES,
    session_domain,
    verify_session,
)
from ledger.consent.typed_data import CONSENT_TYPES, EIP712_DOMAIN_TYPE
from ledger.exceptions import (
    ChainError,
    ChainUnavailableError,
    ChallengeError,
    InputError,
    InvalidSignatureError,
    RateLimitedError,
    SignatureExpiredError,
    StorageFullError,
    StoreUnavailableError,
    WrongOriginError,
)
from ledger.store.apps import list_organisations
from ledger.store.patient_challenges import consume_challenge, issue_challenge

router = APIRouter(prefix="/v1/patient", tags=["patient"], route_class=LedgerRoute)


_RATE_LIMITED: dict[int | str, dict[str, Any]] = {
    429: {
        "description": "rate_limited: too many relays from this client or for this patient; see Retry-After",
        "content": {
            "application/json": {
                "example": {
                    "code": "rate_limited",
                    "message": "too many requests for this patient; retry in 50 s",
                    "details": {"retry_after": 50, "limit": RELAYS_PER_PATIENT},
                }
            }
        },
    }
}


# --- public --------------------------------------------------------------------------------------


@router.get("/signing", response_model=SigningOut, summary="The EIP-712 domains and types the patient signs")
def signing(service: ServiceDep) -> dict[str, Any]:
    return {
        "consent": {
            "domain": service.ledger.consents.domain,
            "types": {"EIP712Domain": EIP712_DOMAIN_TYPE, **CONSENT_TYPES},
        },
        "session": {
            "domain": _session_domain(service),
            "types": {"EIP712Domain": SESSION_DOMAIN_TYPE, **SESSION_TYPES},
        },
        "maxSessionSeconds": MAX_SESSION_SECONDS,
    }


@router.get("/organisations", response_model=OrganisationsOut, summary="Organisations a patient can consent to")
@raises(StoreUnavailableError)
def patient_organisations(service: ServiceDep) -> dict[str, Any]:
    return {"organisations": [{"name": o.name, "address": o.address} for o in list_organisations(service.db.conn)]}


@router.get("/purposes", response_model=CodesOut, summary="Purposes of use (HL7 PurposeOfUse), in plain words")
def purposes() -> dict[str, Any]:
    return {"codes": [{"code": code, "label": label} for code, label in PURPOSES_OF_USE.items()]}


@router.get("/scopes", response_model=CodesOut, summary="Kinds of data a consent can cover, in plain words")
def scopes() -> dict[str, Any]:
    return {"codes": [{"code": code, "label": label} for code, label in SCOPE_LABELS.items()]}


@router.get("/{patient}/nonce", response_model=NonceOut, summary="The patient's next signature nonce")
@raises(ChainUnavailableError, ChainError)
def patient_nonce(patient: PatientPath, service: ServiceDep) -> dict[str, Any]:
    return {"patient": patient, "nonce": service.ledger.consents.nonce(patient)}


# --- sign-in and reads ---------------------------------------------------------------------------


def _session_domain(service: Service) -> dict[str, Any]:
    return session_domain(service.ledger.chain.chain_id, service.ledger.consents.address)


@raises(RateLimitedError)
def _challenge_limited(request: Request, limits: Annotated[RelayLimits, Depends(relay_limits)]) -> None:
    """Spend one of the client's challenges (each is a row in the store until it is used or expires)."""
    limits.challenges_per_ip.take(client_address(request))


@router.post(
    "/challenges",
    response_model=ChallengeOut,
    dependencies=[Depends(_challenge_limited)],
    responses=_RATE_LIMITED,
    summary="A single-use challenge to sign in with",
)
@raises(StoreUnavailableError, StorageFullError)
def challenge(body: ChallengeIn, service: ServiceDep) -> dict[str, Any]:
    """Sign ``PatientSession`` with it (and this ``origin``) within ``expiresAt``; it works once."""
    now = time.time()
    issued = issue_challenge(service.db.conn, body.patient, now, CHALLENGE_SECONDS)
    return {
        "patient": body.patient,
        "challenge": "0x" + issued.hex(),
        "origin": service.settings.origin,
        "expiresAt": int(now + CHALLENGE_SECONDS),
    }


@router.post("/sessions", response_model=SessionOut, summary="Sign in with a signed PatientSession")
@raises(
    WrongOriginError,
    SignatureExpiredError,
    InputError,
    InvalidSignatureError,
    ChallengeError,
    StoreUnavailableError,
    StorageFullError,
)
def sign_in(body: SessionIn, service: ServiceDep, tokens: TokensDep) -> dict[str, Any]:
    """The token reads only this patient's data and ends at ``expiresAt``. The challenge is used up
    by this call, whatever its outcome after the signature check: a sign-in cannot be replayed."""
    session = body.session()
    now = int(time.time())
    patient = verify_session(
        _session_domain(service), service.settings.origin, session, bytes.fromhex(body.signature[2:]), now
    )
    if not consume_challenge(service.db.conn, session.challenge, patient, now):
        raise ChallengeError("the challenge is unknown, used or expired; ask for a new one", patient=patient)
    return {
        "token": tokens.issue(patient, body.issued_at, body.expires_at),
        "tokenType": "Bearer",
        "patient": patient,
        "expiresAt": body.expires_at,
    }


@router.get("/{patient}/consents", response_model=ConsentListOut, summary="My consents, guardians and history")
@raises(ChainUnavailableError, ChainError, StoreUnavailableError)
def my_consents(patient: SignedInPatient, service: ServiceDep) -> dict[str, Any]:
    return overview_json(consent_overview(service.ledger.consents, service.ledger.chain, service.db.conn, patient))


@router.get(
    "/{patient}/accesses",
    response_model=AuditPageOut,
    summary="Every access attempt to my data, by any organisation (oldest first)",
)
@raises(StoreUnavailableError)
def my_accesses(
    patient: SignedInPatient, service: ServiceDep, after: After = 0, limit: Limit = DEFAULT_PAGE
) -> dict[str, Any]:
    return page_json(trail_page(service.db.conn, patient=patient, after=after, limit=limit), service.organisation)


# --- relayed writes ------------------------------------------------------------------------------


@router.post(
    "/grants", response_model=RelayOut, responses=_RATE_LIMITED, summary="Relay my signed consent grant (no API key)"
)
@raises(*RELAY_ERRORS)
def grant(body: SignedGrantIn, service: ServiceDep, limits: ClientLimited) -> dict[str, Any]:
    return relay_json(service.relayer.grant(body.terms(), body.signed(), admit=limits.per_patient.take))


@router.post(
    "/revocations", response_model=RelayOut, responses=_RATE_LIMITED, summary="Relay my signed revocation (no API key)"
)
@raises(*RELAY_ERRORS)
def revoke(body: SignedRevocationIn, service: ServiceDep, limits: ClientLimited) -> dict[str, Any]:
    return relay_json(service.relayer.revoke(body.key(), body.signed(), admit=limits.revocations_per_patient.take))


@router.post(
    "/guardians",
    response_model=RelayOut,
    responses=_RATE_LIMITED,
    summary="Relay my signed guardian appointment; validUntil 0 removes (no API key)",
)
@raises(*RELAY_ERRORS)
def guardian(body: SignedGuardianIn, service: ServiceDep, limits: ClientLimited) -> dict[str, Any]:
    relayed = service.relayer.set_guardian(
        body.patient, body.guardian, body.valid_until, body.signed(), admit=limits.per_patient.take
    )
    return relay_json(relayed)
