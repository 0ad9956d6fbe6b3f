"""The patient page's own endpoints: codes, organisations, signing domains, sign-in."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from api.schemas.common import Address, Hex32, Schema, Signature, Timestamp
from ledger.consent.patient_session import PatientSession


class CodeOut(Schema):
    code: str
    label: str


class CodesOut(Schema):
    codes: list[CodeOut]


class PublicOrganisationOut(Schema):
    name: str
    address: str


class OrganisationsOut(Schema):
    organisations: list[PublicOrganisationOut]


class TypedDataOut(Schema):
    """An EIP-712 domain and the types signed in it."""

    domain: dict[str, Any]
    types: dict[str, list[dict[str, str]]]


class SigningOut(Schema):
    """What the page signs: the consent registry's domain and types, and the sign-in domain and types."""

    consent: TypedDataOut
    session: TypedDataOut
    max_session_seconds: int


class ChallengeIn(Schema):
    """Who is about to sign in."""

    patient: Address


class ChallengeOut(Schema):
    """What the next ``PatientSession`` must carry: this single-use challenge and this service's origin."""

    patient: str
    challenge: Hex32
    origin: str
    expires_at: int = Field(description="the challenge must be answered before this (unix seconds)")


class SessionIn(Schema):
    """A signed ``PatientSession``: this service's origin, an unused challenge issued to the patient,
    ``issuedAt`` within 5 minutes of now, lasting at most an hour."""

    patient: Address
    origin: str = Field(max_length=255)
    challenge: Hex32
    issued_at: Timestamp
    expires_at: Timestamp
    signature: Signature

    def session(self) -> PatientSession:
        """What the patient signed."""
        return PatientSession(
            self.patient, self.origin, bytes.fromhex(self.challenge[2:]), self.issued_at, self.expires_at
        )


class SessionOut(Schema):
    token: str = Field(description="send as `Authorization: Bearer <token>` to this patient's read endpoints")
    token_type: Literal["Bearer"]
    patient: str
    expires_at: int
