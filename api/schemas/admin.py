"""Organisations and apps: what an admin sends, and what comes back (API keys once, at creation)."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from api.schemas.common import RowId, Schema
from ledger.store.apps import App, Organisation, Role

NAME_PATTERN = r"^[^\x00-\x1f\x7f]+$"  # printable: no control characters in names shown to people


class OrganisationIn(Schema):
    name: str = Field(min_length=1, max_length=100, pattern=NAME_PATTERN, examples=["St Mary's Hospital"])
    emergency: bool = Field(default=False, description="may record break-glass access (EMERGENCY_ROLE on chain)")


class AppIn(Schema):
    organisation_id: RowId
    name: str = Field(min_length=1, max_length=100, pattern=NAME_PATTERN, examples=["ward-7-monitor"])
    roles: list[Role] = Field(min_length=1, examples=[["registrar", "reader"]])


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
