"""Patient sign-in: the EIP-712 ``PatientSession`` a patient signs to prove they hold their key.

A patient has no API key. To read their own consents and access trail, their page signs
``PatientSession(address patient,uint256 issuedAt,uint256 expiresAt)`` under a domain of its own
(no contract verifies it, so the domain has no ``verifyingContract``; the chain id keeps a
signature from one network out of another). The service checks it here and issues a short-lived
token (``api/patient_auth.py``). Only EOA keys can sign in: contract wallets (ERC-1271) would need a
chain call, which this check does not make.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ledger.consent.typed_data import recover_signer
from ledger.exceptions import InputError, InvalidSignatureError, SignatureExpiredError
from ledger.values import checksum

SESSION_DOMAIN_NAME = "CareLedger Patient Session"
SESSION_DOMAIN_VERSION = "1"
MAX_SESSION_SECONDS = 3600
MAX_CLOCK_SKEW_SECONDS = 300

SESSION_DOMAIN_TYPE = [
    {"name": "name", "type": "string"},
    {"name": "version", "type": "string"},
    {"name": "chainId", "type": "uint256"},
]
SESSION_TYPES: dict[str, list[dict[str, str]]] = {
    "PatientSession": [
        {"name": "patient", "type": "address"},
        {"name": "issuedAt", "type": "uint256"},
        {"name": "expiresAt", "type": "uint256"},
    ],
}


@dataclass(frozen=True)
class PatientSession:
    """What the patient signed: who, from when, until when (unix seconds)."""

    patient: str
    issued_at: int
    expires_at: int


def session_domain(chain_id: int) -> dict[str, Any]:
    """The sign-in domain for one chain."""
    return {"name": SESSION_DOMAIN_NAME, "version": SESSION_DOMAIN_VERSION, "chainId": chain_id}


def session_typed_data(chain_id: int, session: PatientSession) -> dict[str, Any]:
    """The typed data the patient signs (for ``eth_signTypedData_v4``)."""
    return {
        "types": {"EIP712Domain": SESSION_DOMAIN_TYPE, **SESSION_TYPES},
        "primaryType": "PatientSession",
        "domain": session_domain(chain_id),
        "message": {
            "patient": checksum(session.patient),
            "issuedAt": session.issued_at,
            "expiresAt": session.expires_at,
        },
    }


def verify_session(chain_id: int, session: PatientSession, signature: bytes, now: int) -> str:
    """Check the window and that the patient signed it; returns the patient's checksummed address.

    Requirements: ``issuedAt`` within 5 minutes of ``now``; ``issuedAt < expiresAt <= issuedAt + 1 h``;
    ``expiresAt`` not passed; the signature recovers to ``patient``.
    """
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
    if recover_signer(session_typed_data(chain_id, session), signature) != patient:
        raise InvalidSignatureError("the sign-in was not signed by the patient's key", patient=patient)
    return patient
