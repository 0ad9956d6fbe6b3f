"""Organisations and apps: what an admin sends, and what comes back (API keys once, at creation)."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from api.schemas.common import Flag, RowId, Schema
from ledger.store.apps import App, Organisation, Role
from ledger.store.organisation_names import name_pattern

NAME_PATTERN = r"^[^\x00-\x1f\x7f]+$"  # printable: no control characters in names shown to people


def _organisation_name_schema(schema: dict[str, Any]) -> None:
    schema["pattern"] = name_pattern()  # what the library accepts (400 invalid_name otherwise)


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
