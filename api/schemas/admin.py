"""Organisations and apps: what an admin sends, and what comes back (API keys once, at creation);
an app's SMART client keys (a public JWKS)."""

from __future__ import annotations

import json
from typing import Any

from pydantic import Field

from api.schemas.common import RowId, Schema
from ledger.oauth.client_keys import MAX_KEYS
from ledger.oauth.scopes import allowed_scopes
from ledger.store.apps import App, Organisation, Role
from ledger.store.oauth import StoredClient

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


class JwksIn(Schema):
    """A JWK Set of public keys (RSA of 2048 bits or more for RS384, EC P-384 for ES384), each with a ``kid``."""

    keys: list[dict[str, Any]] = Field(
        min_length=1,
        max_length=MAX_KEYS,
        examples=[[{"kty": "EC", "crv": "P-384", "kid": "backend-2026", "x": "...", "y": "..."}]],
    )


def client_out(client: StoredClient) -> dict[str, Any]:
    return {
        "appId": client.app.id,
        "clientId": client.client_id,
        "jwks": json.loads(client.jwks),
        "scopes": list(allowed_scopes(client.app.roles)),
        "updatedAt": client.updated_at,
    }
