"""Organisations and apps: what an admin sends, and what comes back (API keys once, at creation);
an app's SMART client keys (a public JWKS)."""

from __future__ import annotations

import json
from typing import Annotated, Any

from pydantic import Field

from api.schemas.common import Flag, RowId, Schema
from ledger.oauth.client_keys import MAX_KEYS
from ledger.oauth.scopes import allowed_scopes
from ledger.store.apps import App, Organisation, Role
from ledger.store.oauth import StoredClient
from ledger.store.organisation_names import name_pattern
from ledger.store.postal_addresses import MAX_LINES, MAX_PART_LENGTH, PostalAddress, postal_address

NAME_PATTERN = r"^[^\x00-\x1f\x7f]+$"  # printable: no control characters in names shown to people


def _organisation_name_schema(schema: dict[str, Any]) -> None:
    schema["pattern"] = name_pattern()  # what the library accepts (400 invalid_name otherwise)


AddressPart = Annotated[
    str,
    Field(
        min_length=1,
        max_length=MAX_PART_LENGTH,
        pattern=NAME_PATTERN,
        json_schema_extra=_organisation_name_schema,  # what the library accepts (400 invalid_text otherwise)
    ),
]


class PostalAddressIn(Schema):
    """An organisation's postal address (the parts of a FHIR ``Address``), shown to patients in their
    accounting of disclosures; never on chain."""

    lines: list[AddressPart] = Field(
        min_length=1, max_length=MAX_LINES, examples=[["12 Harbour Street"]], description="street lines (at least one)"
    )
    city: AddressPart | None = Field(default=None, examples=["Portsmouth"])
    state: AddressPart | None = None
    postal_code: AddressPart | None = Field(default=None, examples=["PO1 2AB"])
    country: AddressPart | None = Field(default=None, examples=["GB"])

    def to_address(self) -> PostalAddress:
        """The address as the library keeps it (each part normalised; InvalidTextError if one hides text)."""
        return postal_address(
            self.lines, city=self.city, state=self.state, postal_code=self.postal_code, country=self.country
        )


class PostalAddressOut(Schema):
    lines: list[str]
    city: str | None = None
    state: str | None = None
    postal_code: str | None = None
    country: str | None = None


class OrganisationIn(Schema):
    name: str = Field(
        min_length=1,
        max_length=100,
        pattern=NAME_PATTERN,
        json_schema_extra=_organisation_name_schema,
        examples=["St Mary's Hospital"],
        description="shown to patients: no invisible or control characters; stored NFKC-normalised; "
        "a name that looks like another organisation's is refused (409 `confusable_name`)",
    )
    emergency: Flag = Field(default=False, description="may record break-glass access (EMERGENCY_ROLE on chain)")
    postal_address: PostalAddressIn | None = Field(
        default=None, description="shown to patients beside the name in their accounting of disclosures"
    )


class AppIn(Schema):
    organisation_id: RowId
    name: str = Field(min_length=1, max_length=100, pattern=NAME_PATTERN, examples=["ward-7-monitor"])
    roles: list[Role] = Field(min_length=1, examples=[["registrar", "reader"]])


class OrganisationOut(Schema):
    id: int
    name: str
    address: str = Field(description="the organisation's own chain account (anchors its records)")
    emergency: bool
    created_at: int
    postal_address: PostalAddressOut | None = Field(description="the address it registered, or null")


class AppOut(Schema):
    """An app, without its key (only the key's first characters, to tell keys apart)."""

    id: int
    organisation_id: int
    name: str
    key_prefix: str
    roles: list[Role]
    created_at: int
    revoked_at: int | None


class AppCreatedOut(AppOut):
    api_key: str = Field(description="`Authorization: Bearer <apiKey>`; shown in this answer only")


def organisation_out(organisation: Organisation) -> dict[str, Any]:
    return {
        "id": organisation.id,
        "name": organisation.name,
        "address": organisation.address,
        "emergency": organisation.emergency,
        "createdAt": organisation.created_at,
        "postalAddress": organisation.postal_address.to_json() if organisation.postal_address else None,
    }


def app_out(app: App) -> dict[str, Any]:
    return {
        "id": app.id,
        "organisationId": app.organisation_id,
        "name": app.name,
        "keyPrefix": app.key_prefix,
        "roles": sorted(r.value for r in app.roles),
        "createdAt": app.created_at,
        "revokedAt": app.revoked_at,
    }


class JwksIn(Schema):
    """A JWK Set of public keys (RSA of 2048 bits or more for RS384, EC P-384 for ES384), each with a ``kid``."""

    keys: list[dict[str, Any]] = Field(
        min_length=1,
        max_length=MAX_KEYS,
        examples=[[{"kty": "EC", "crv": "P-384", "kid": "backend-2026", "x": "...", "y": "..."}]],
    )


class ClientOut(Schema):
    """An app's SMART Backend Services client."""

    app_id: int
    client_id: str
    jwks: dict[str, Any] = Field(description="the registered public keys")
    scopes: list[str] = Field(description="the scopes the client may ask for (its app's roles)")
    updated_at: int


def client_out(client: StoredClient) -> dict[str, Any]:
    return {
        "appId": client.app.id,
        "clientId": client.client_id,
        "jwks": json.loads(client.jwks),
        "scopes": list(allowed_scopes(client.app.roles)),
        "updatedAt": client.updated_at,
    }
