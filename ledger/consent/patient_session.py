"""Patient sign-in: the EIP-712 ``PatientSession`` a patient signs to prove they hold their key.

A patient has no API key. To read their own consents and access trail, their page asks the service
for a challenge, then signs ``PatientSession(address patient,string origin,bytes32 challenge,
uint256 issuedAt,uint256 expiresAt)`` under a domain naming this deployment (its chain id and its
``ConsentRegistry`` as ``verifyingContract``), in the manner of EIP-4361: the signature is good for
this deployment only, at the service's own origin, and once (the challenge is consumed when the
service accepts it, and lives a few minutes). The service checks it here and issues a short-lived
token (``api/patient_auth.py``). Only EOA keys can sign in.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ledger.consent.typed_data import EIP712_DOMAIN_TYPE, recover_signer
from ledger.exceptions import InputError, InvalidSignatureError, SignatureExpiredError, WrongOriginError
from ledger.values import checksum

SESSION_DOMAIN_NAME = "CareLedger Patient Session"
SESSION_DOMAIN_VERSION = "2"
MAX_SESSION_SECONDS = 3600
MAX_CLOCK_SKEW_SECONDS = 300
CHALLENGE_SECONDS = 300
"""How long a sign-in challenge may wait for its signature."""

SESSION_DOMAIN_TYPE = EIP712_DOMAIN_TYPE
SESSION_TYPES: dict[str, list[dict[str, str]]] = {
    "PatientSession": [
        {"name": "patient", "type": "address"},
        {"name": "origin", "type": "string"},
        {"name": "challenge", "type": "bytes32"},
        {"name": "issuedAt", "type": "uint256"},
        {"name": "expiresAt", "type": "uint256"},
    ],
}


@dataclass(frozen=True)
class PatientSession:
    """What the patient signed: who, at which service, against which challenge, from when, until when."""

    patient: str
    origin: str
    challenge: bytes
    issued_at: int
    expires_at: int


def session_domain(chain_id: int, registry: str) -> dict[str, Any]:
    """The sign-in domain of one deployment (its chain and its ConsentRegistry)."""
    return {
        "name": SESSION_DOMAIN_NAME,
        "version": SESSION_DOMAIN_VERSION,
        "chainId": chain_id,
        "verifyingContract": checksum(registry),
    }


def session_typed_data(domain: dict[str, Any], session: PatientSession) -> dict[str, Any]:
    """The typed data the patient signs (for ``eth_signTypedData_v4``)."""
    return {
        "types": {"EIP712Domain": SESSION_DOMAIN_TYPE, **SESSION_TYPES},
        "primaryType": "PatientSession",
        "domain": domain,
        "message": {
            "patient": checksum(session.patient),
            "origin": session.origin,
            "challenge": "0x" + session.challenge.hex(),
            "issuedAt": session.issued_at,
            "expiresAt": session.expires_at,
        },
    }


def verify_session(domain: dict[str, Any], origin: str, session: PatientSession, signature: bytes, now: int) -> str:
    """Check the origin, the window and that the patient signed it; returns the patient's checksummed
    address. (The challenge's freshness and single use are the store's: the caller consumes it.)

    Requirements: ``origin`` is this service's; ``issuedAt`` within 5 minutes of ``now``;
    ``issuedAt < expiresAt <= issuedAt + 1 h``; ``expiresAt`` not passed; the signature recovers to
    ``patient`` over this deployment's domain.
    """
    if session.origin != origin:
        raise WrongOriginError(
            "the sign-in names another service; sign in on this service's own page", origin=session.origin
        )
    if abs(session.issued_at - now) > MAX_CLOCK_SKEW_SECONDS:
        raise SignatureExpiredError(
            "the sign-in was issued more than 5 minutes from the server's time; "
            "check the device clock and sign in again",
            issued_at=session.issued_at,
            now=now,
        )
    if not session.issued_at < session.expires_at <= session.issued_at + MAX_SESSION_SECONDS:
        raise InputError(
            "a session must end after it starts and last at most an hour",
            field="expiresAt",
            issued_at=session.issued_at,
            expires_at=session.expires_at,
        )
    if session.expires_at <= now:
        raise SignatureExpiredError("the sign-in has expired; sign in again", expires_at=session.expires_at, now=now)
    patient = checksum(session.patient)
    if recover_signer(session_typed_data(domain, session), signature) != patient:
        raise InvalidSignatureError("the sign-in was not signed by the patient's key", patient=patient)
    return patient
