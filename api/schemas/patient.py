"""The patient page's own endpoints: codes, organisations, signing domains, sign-in."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from api.schemas.common import Address, Schema, Signature, Timestamp


class CodeOut(Schema):
    code: str
    label: str


class CodesOut(Schema):
    codes: list[CodeOut]


class OrganisationOut(Schema):
    name: str
    address: str


class OrganisationsOut(Schema):
    organisations: list[OrganisationOut]


class SigningOut(Schema):
    """What the page signs: the consent registry's domain and types, and the sign-in domain and types."""

    consent: dict[str, Any]
    session: dict[str, Any]
    max_session_seconds: int


class SessionIn(Schema):
    """A signed ``PatientSession``: ``issuedAt`` within 5 minutes of now, lasting at most an hour."""

    patient: Address
    issued_at: Timestamp
    expires_at: Timestamp
    signature: Signature


class SessionOut(Schema):
    token: str = Field(description="send as `Authorization: Bearer <token>` to this patient's read endpoints")
    token_type: str = "Bearer"
    patient: str
    expires_at: int
