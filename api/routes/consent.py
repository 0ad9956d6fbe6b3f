"""Patient consent: the EIP-712 domain, relaying patient-signed changes, the consent list and check.

Patients sign with their own wallets; the API only relays (its relayer account pays the gas) after
checking locally what it can: addresses, codes, the deadline, and, for an EOA signer, that the
signature recovers to it. A bad signature is refused here without a transaction. Contract signers
(ERC-1271) can only be checked by the chain, whose revert is mapped like any other.

Chain calls block, so these routes are plain ``def`` routes (FastAPI runs them in its thread pool).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from pydantic import ConfigDict, Field
from pydantic.alias_generators import to_camel
from web3.types import TxReceipt

from api.deps import AnyCaller, Reader, ServiceDep
from api.limits import LedgerRoute
from api.schemas import ADDRESS, EXAMPLE_PATIENT, Address, Schema
from api.service import Service
from ledger.chain.indexer import IndexedEvent, indexed_to, patient_events
from ledger.consent.codes import ALL_DATA, encode_code
from ledger.consent.terms import UINT64_MAX, ConsentKey, ConsentState, GrantTerms, consent_state
from ledger.consent.typed_data import (
    CONSENT_TYPES,
    EIP712_DOMAIN_TYPE,
    grant_typed_data,
    guardian_typed_data,
    recover_signer,
    revocation_typed_data,
)
from ledger.exceptions import InputError, InvalidSignatureError, LedgerError, SignatureExpiredError
from ledger.store.apps import organisation_by_address
from ledger.values import checksum

log = logging.getLogger("careledger.api.consent")
router = APIRouter(prefix="/v1", tags=["consent"], route_class=LedgerRoute)

EXAMPLE_GRANTEE = "0x5B38Da6a701c568545dCfcB03FcB875f56beddC4"
EXAMPLE_GUARDIAN = "0xAb8483F64d9C6d1EcF9b849Ae677dD3315835cb2"
EXAMPLE_SIGNATURE = "0x" + "1b" * 65
EXAMPLE_TX = "0x" + "5e" * 32
MAX_SIGNATURE_BYTES = 2048  # EOA signatures are 65 bytes; contract wallets may need more

Code = Annotated[str, Field(min_length=1, max_length=66, description="a scope or purpose code (ledger.consent.codes)")]
Signature = Annotated[
    str,
    Field(
        pattern=r"^0x(?:[0-9a-fA-F]{2})+$",
        max_length=2 + 2 * MAX_SIGNATURE_BYTES,
        examples=[EXAMPLE_SIGNATURE],
        description="0x-hex; 65 bytes r||s||v for an EOA",
    ),
]
Uint64 = Annotated[int, Field(ge=0, le=UINT64_MAX)]
Deadline = Annotated[int, Field(ge=0, le=2**256 - 1, description="unix seconds; the signature is void after it")]
PatientPath = Annotated[str, Path(pattern=ADDRESS, description="the patient's address", examples=[EXAMPLE_PATIENT])]

Admit = Callable[[str], None]
"""Called with the patient once a relay passed its local checks, just before sending; may raise to refuse."""

_REASONS = {ConsentState.PENDING: "not_yet_valid", ConsentState.EXPIRED: "expired", ConsentState.REVOKED: "revoked"}


def _config(example: dict[str, Any]) -> ConfigDict:
    return ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", json_schema_extra={"examples": [example]}
    )


# --- schemas -------------------------------------------------------------------------------------


class DomainOut(Schema):
    """What a wallet needs to sign (``eth_signTypedData_v4``): the domain and the types."""

    domain: dict[str, Any]
    types: dict[str, list[dict[str, str]]]
    primary_types: list[str]

    model_config = _config(
        {
            "domain": {
                "name": "CareLedger ConsentRegistry",
                "version": "1",
                "chainId": 131277322940537,
                "verifyingContract": "0x19eC881f565F9d38cbA89AF68862F8A2f685aFb1",
            },
            "types": {"EIP712Domain": EIP712_DOMAIN_TYPE, "ConsentGrant": CONSENT_TYPES["ConsentGrant"]},
            "primaryTypes": ["ConsentGrant", "ConsentRevocation", "GuardianAppointment"],
        }
    )


class NonceOut(Schema):
    """The nonce the patient's next signature must carry."""

    patient: str
    nonce: int

    model_config = _config({"patient": EXAMPLE_PATIENT, "nonce": 3})


class SignedRevocationIn(Schema):
    """A ``ConsentRevocation`` signed by the patient or a guardian (``signer``, default the patient)."""

    patient: Address
    grantee: Address
    scope: Code
    purpose: Code
    signer: Address | None = None
    deadline: Deadline
    signature: Signature

    model_config = _config(
        {
            "patient": EXAMPLE_PATIENT,
            "grantee": EXAMPLE_GRANTEE,
            "scope": "Observation",
            "purpose": "TREAT",
            "deadline": 1767229200,
            "signature": EXAMPLE_SIGNATURE,
        }
    )


class SignedGrantIn(SignedRevocationIn):
    """A ``ConsentGrant`` signed by the patient or a guardian (``signer``, default the patient): the
    revocation's fields and the validity window."""

    valid_from: Uint64
    valid_until: Uint64

    model_config = _config(
        {
            "patient": EXAMPLE_PATIENT,
            "grantee": EXAMPLE_GRANTEE,
            "scope": "Observation",
            "purpose": "TREAT",
            "validFrom": 1767225600,
            "validUntil": 1798761600,
            "deadline": 1767229200,
            "signature": EXAMPLE_SIGNATURE,
        }
    )


class SignedGuardianIn(Schema):
    """A ``GuardianAppointment`` signed by the patient; ``validUntil`` 0 removes the guardian."""

    patient: Address
    guardian: Address
    valid_until: Uint64
    deadline: Deadline
    signature: Signature

    model_config = _config(
        {
            "patient": EXAMPLE_PATIENT,
            "guardian": EXAMPLE_GUARDIAN,
            "validUntil": 1798761600,
            "deadline": 1767229200,
            "signature": EXAMPLE_SIGNATURE,
        }
    )


class RelayOut(Schema):
    """A relayed change, mined."""

    action: str = Field(description="granted, revoked, guardian_appointed or guardian_removed")
    patient: str
    transaction_hash: str
    block_number: int
    nonce: int = Field(description="the patient's next nonce")

    model_config = _config(
        {"action": "granted", "patient": EXAMPLE_PATIENT, "transactionHash": EXAMPLE_TX, "blockNumber": 42, "nonce": 4}
    )


class ConsentOut(Schema):
    """One consent key of the patient and its current state on chain."""

    grantee: str
    grantee_organisation: str | None
    scope: str
    purpose: str
    state: str = Field(description="active, pending (not yet valid), expired or revoked")
    valid_from: int
    valid_until: int
    updated_at: int


class GuardianOut(Schema):
    guardian: str
    valid_until: int = Field(description="0 once removed")
    active: bool


class HistoryEntryOut(Schema):
    """One event about the patient, as the chain recorded it."""

    event: str
    block_number: int
    log_index: int
    transaction_hash: str
    time: int
    fields: dict[str, Any]


class ConsentListOut(Schema):
    """The patient's consents now, their guardians, and the history behind both."""

    patient: str
    consents: list[ConsentOut]
    guardians: list[GuardianOut]
    history: list[HistoryEntryOut]
    indexed_to_block: int | None

    model_config = _config(
        {
            "patient": EXAMPLE_PATIENT,
            "consents": [
                {
                    "grantee": EXAMPLE_GRANTEE,
                    "granteeOrganisation": "General Hospital",
                    "scope": "Observation",
                    "purpose": "TREAT",
                    "state": "active",
                    "validFrom": 1767225600,
                    "validUntil": 1798761600,
                    "updatedAt": 1767225700,
                }
            ],
            "guardians": [{"guardian": EXAMPLE_GUARDIAN, "validUntil": 1798761600, "active": True}],
            "history": [
                {
                    "event": "ConsentGranted",
                    "blockNumber": 42,
                    "logIndex": 0,
                    "transactionHash": EXAMPLE_TX,
                    "time": 1767225700,
                    "fields": {
                        "grantee": EXAMPLE_GRANTEE,
                        "scope": "Observation",
                        "purpose": "TREAT",
                        "validFrom": 1767225600,
                        "validUntil": 1798761600,
                        "actor": EXAMPLE_PATIENT,
                    },
                }
            ],
            "indexedToBlock": 42,
        }
    )


class ConsentCheckOut(Schema):
    """May ``grantee`` access the patient's ``scope`` data for ``purpose`` now (the contract's answer)?"""

    patient: str
    grantee: str
    scope: str
    purpose: str
    permitted: bool
    reason: str | None = Field(description="why not: no_consent, expired, not_yet_valid or revoked")
    states: dict[str, str] = Field(description="the state of the exact scope's consent and of the '*' consent")
    checked_at: int = Field(description="the chain time the answer holds for")

    model_config = _config(
        {
            "patient": EXAMPLE_PATIENT,
            "grantee": EXAMPLE_GRANTEE,
            "scope": "Observation",
            "purpose": "TREAT",
            "permitted": False,
            "reason": "revoked",
            "states": {"Observation": "revoked", "*": "none"},
            "checkedAt": 1767229200,
        }
    )


# --- the decision shared with /v1/access ---------------------------------------------------------


@dataclass(frozen=True)
class ConsentDecision:
    """The contract's verdict on one access and, if it refuses, why (from the stored consents)."""

    permitted: bool
    reason: str | None
    states: dict[str, str]
    checked_at: int


def consent_decision(service: Service, patient: str, grantee: str, scope: str, purpose: str) -> ConsentDecision:
    """Ask ``isPermitted``; when it refuses, derive the reason from the exact scope's consent, then '*'.

    Raises InvalidCodeError for a malformed scope or an unknown purpose, before any chain call.
    """
    consents = service.ledger.consents
    key = ConsentKey(patient, grantee, scope, purpose)
    on_chain = consents.is_permitted(key.patient, key.grantee, scope, purpose)
    # The contract judges by the newest block's time, which stands still while no block is mined
    # (an idle embedded chain): a consent that has since expired must not pass, so the window is
    # also checked against the wall clock and both must agree.
    now = max(service.ledger.chain.block_timestamp("latest"), int(time.time()))
    scopes = [scope] if scope == ALL_DATA else [scope, ALL_DATA]
    states = {s: consents.consent_of(replace(key, scope=s), as_of=now).state for s in scopes}
    permitted = on_chain and any(state is ConsentState.ACTIVE for state in states.values())
    reason = None
    if not permitted:
        refused = [state for state in states.values() if state in _REASONS]
        reason = _REASONS[refused[0]] if refused else "no_consent"
    return ConsentDecision(permitted, reason, {s: state.value for s, state in states.items()}, now)


# --- relaying ------------------------------------------------------------------------------------


def _signature_bytes(signature: str) -> bytes:
    return bytes.fromhex(signature[2:])


def _check_before_relay(
    service: Service, typed_data: dict[str, Any], signer: str, deadline: int, signature: bytes
) -> None:
    """Refuse locally what the chain would refuse: a passed deadline, an EOA signature by someone else."""
    now = service.ledger.chain.block_timestamp("latest")
    if deadline < now:
        raise SignatureExpiredError("the signature's deadline has passed; sign again", deadline=deadline, now=now)
    if service.ledger.chain.code_at(signer):
        return  # a contract wallet (ERC-1271): only the chain can check its signature
    recovered = recover_signer(typed_data, signature)
    if recovered != checksum(signer):
        raise InvalidSignatureError(
            "the signature was not made by the signer (or over other terms or nonce)", signer=checksum(signer)
        )


def index_now(service: Service) -> None:
    """Index up to the head after sending something, so the caller's next read shows it."""
    try:
        service.indexer.sync()
    except LedgerError as err:  # the change is on chain; the background indexer will catch up
        log.warning("indexing after a transaction failed: %s", err.message)


def _relayed(service: Service, action: str, patient: str, receipt: TxReceipt) -> dict[str, Any]:
    """The answer to a relay, once its block is indexed."""
    index_now(service)
    return {
        "action": action,
        "patient": patient,
        "transactionHash": receipt["transactionHash"].to_0x_hex(),
        "blockNumber": receipt["blockNumber"],
        "nonce": service.ledger.consents.nonce(patient),
    }


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
def nonce(patient: PatientPath, _: AnyCaller, service: ServiceDep) -> dict[str, Any]:
    address = checksum(patient)
    return {"patient": address, "nonce": service.ledger.consents.nonce(address)}


def relay_signed_grant(service: Service, body: SignedGrantIn, admit: Admit | None = None) -> dict[str, Any]:
    """Check a signed grant locally (codes, window, deadline, EOA signature), then send it as the relayer."""
    consents = service.ledger.consents
    terms = GrantTerms(
        ConsentKey(body.patient, body.grantee, body.scope, body.purpose), body.valid_from, body.valid_until
    )
    signer = checksum(body.signer or body.patient)
    signature = _signature_bytes(body.signature)
    typed = grant_typed_data(consents.domain, terms, signer, consents.nonce(terms.key.patient), body.deadline)
    _check_before_relay(service, typed, signer, body.deadline, signature)
    if admit is not None:
        admit(terms.key.patient)
    receipt = consents.grant_by_signature(terms, signer, body.deadline, signature, service.ledger.relayer)
    return _relayed(service, "granted", terms.key.patient, receipt)


def relay_signed_revocation(service: Service, body: SignedRevocationIn, admit: Admit | None = None) -> dict[str, Any]:
    """Check a signed revocation locally, then send it as the relayer."""
    consents = service.ledger.consents
    key = ConsentKey(body.patient, body.grantee, body.scope, body.purpose)
    signer = checksum(body.signer or body.patient)
    signature = _signature_bytes(body.signature)
    typed = revocation_typed_data(consents.domain, key, signer, consents.nonce(key.patient), body.deadline)
    _check_before_relay(service, typed, signer, body.deadline, signature)
    if admit is not None:
        admit(key.patient)
    receipt = consents.revoke_by_signature(key, signer, body.deadline, signature, service.ledger.relayer)
    return _relayed(service, "revoked", key.patient, receipt)


def relay_signed_guardian(service: Service, body: SignedGuardianIn, admit: Admit | None = None) -> dict[str, Any]:
    """Check a patient-signed guardian appointment locally, then send it as the relayer."""
    consents = service.ledger.consents
    patient, guardian = checksum(body.patient), checksum(body.guardian)
    signature = _signature_bytes(body.signature)
    typed = guardian_typed_data(
        consents.domain, patient, guardian, body.valid_until, consents.nonce(patient), body.deadline
    )
    _check_before_relay(service, typed, patient, body.deadline, signature)
    if admit is not None:
        admit(patient)
    receipt = consents.set_guardian_by_signature(
        patient, guardian, body.valid_until, body.deadline, signature, service.ledger.relayer
    )
    return _relayed(service, "guardian_removed" if body.valid_until == 0 else "guardian_appointed", patient, receipt)


@router.post("/consents/grants", response_model=RelayOut, summary="Relay a patient-signed consent grant")
def relay_grant(body: SignedGrantIn, _: AnyCaller, service: ServiceDep) -> dict[str, Any]:
    """Checked locally first (codes, window, deadline, EOA signature), then sent by the relayer."""
    return relay_signed_grant(service, body)


@router.post("/consents/revocations", response_model=RelayOut, summary="Relay a patient-signed revocation")
def relay_revocation(body: SignedRevocationIn, _: AnyCaller, service: ServiceDep) -> dict[str, Any]:
    return relay_signed_revocation(service, body)


@router.post(
    "/consents/guardians",
    response_model=RelayOut,
    summary="Relay a patient-signed guardian appointment (validUntil 0 removes)",
)
def relay_guardian(body: SignedGuardianIn, _: AnyCaller, service: ServiceDep) -> dict[str, Any]:
    """A guardian may then sign grants and revocations for the patient until ``validUntil``."""
    return relay_signed_guardian(service, body)


# --- reading -------------------------------------------------------------------------------------


def _code_bytes(code: str) -> bytes:
    """A code as stored on chain (codes outside the alphabet come back from the index as 0x-hex)."""
    return bytes.fromhex(code[2:]) if code.startswith("0x") and len(code) == 66 else encode_code(code)


def _consent_out(service: Service, patient: str, grantee: str, scope: str, purpose: str, now: int) -> dict[str, Any]:
    consents = service.ledger.consents
    try:
        record = consents.consent_of(ConsentKey(patient, grantee, scope, purpose), as_of=now)
        window = (record.valid_from, record.valid_until, record.updated_at)
        state = record.state
    except InputError:  # granted directly with a code the API does not accept: read it raw
        fn = consents.contract.functions.consentOf(patient, grantee, _code_bytes(scope), _code_bytes(purpose))
        valid_from, valid_until, updated_at, status = service.ledger.chain.call(fn)
        window, state = (valid_from, valid_until, updated_at), consent_state(status, valid_from, valid_until, now)
    organisation = organisation_by_address(service.db.conn, grantee)
    return {
        "grantee": grantee,
        "granteeOrganisation": organisation.name if organisation else None,
        "scope": scope,
        "purpose": purpose,
        "state": state.value,
        "validFrom": window[0],
        "validUntil": window[1],
        "updatedAt": window[2],
    }


def _history_out(event: IndexedEvent) -> dict[str, Any]:
    return {
        "event": event.event,
        "blockNumber": event.block_number,
        "logIndex": event.log_index,
        "transactionHash": event.tx_hash,
        "time": event.block_time,
        "fields": event.fields,
    }


@router.get(
    "/patients/{patient}/consents",
    response_model=ConsentListOut,
    summary="The patient's consents with their state, guardians and history",
)
def list_consents(patient: PatientPath, _: AnyCaller, service: ServiceDep) -> dict[str, Any]:
    """Keys come from the indexed history (never a chain scan); each key's state is read from the
    contract's ``consentOf`` now. The history is as recent as ``indexedToBlock``."""
    return consent_list(service, checksum(patient))


def consent_list(service: Service, address: str) -> dict[str, Any]:
    """The patient's consents now, their guardians and the indexed history (a ``ConsentListOut``)."""
    events = patient_events(service.db.conn, address)
    now = service.ledger.chain.block_timestamp("latest")
    keys = dict.fromkeys(
        (e.fields["grantee"], e.fields["scope"], e.fields["purpose"])
        for e in events
        if e.event in ("ConsentGranted", "ConsentRevoked")
    )
    guardians = dict.fromkeys(
        e.fields["guardian"] for e in events if e.event in ("GuardianAppointed", "GuardianRemoved")
    )
    guardian_out = []
    for guardian in guardians:
        until = service.ledger.consents.guardian_until(address, guardian)
        guardian_out.append({"guardian": guardian, "validUntil": until, "active": until > now})
    return {
        "patient": address,
        "consents": [_consent_out(service, address, *key, now) for key in keys],
        "guardians": guardian_out,
        "history": [_history_out(e) for e in events],
        "indexedToBlock": indexed_to(service.db.conn),
    }


@router.get(
    "/consents/check",
    response_model=ConsentCheckOut,
    summary="May an organisation access a patient's data of a scope for a purpose now?",
)
def check_consent(
    caller: Reader,
    service: ServiceDep,
    patient: Annotated[str, Query(pattern=ADDRESS, examples=[EXAMPLE_PATIENT])],
    scope: Annotated[str, Query(min_length=1, max_length=66, examples=["Observation"])],
    purpose: Annotated[str, Query(min_length=1, max_length=66, examples=["TREAT"])],
    grantee: Annotated[str | None, Query(pattern=ADDRESS, description="default: the caller's organisation")] = None,
) -> dict[str, Any]:
    """A consent for the '*' scope covers every scope. Nothing is logged: see ``POST /v1/access``."""
    patient_address = checksum(patient)
    grantee_address = checksum(grantee or caller.organisation.address)
    decision = consent_decision(service, patient_address, grantee_address, scope, purpose)
    return {
        "patient": patient_address,
        "grantee": grantee_address,
        "scope": scope,
        "purpose": purpose,
        "permitted": decision.permitted,
        "reason": decision.reason,
        "states": decision.states,
        "checkedAt": decision.checked_at,
    }
