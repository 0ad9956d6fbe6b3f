"""SMART clients: an app becomes one by registering a public JWKS, and keeps its ``client_id``.

An app has at most one client, registered by an admin (``PUT /v1/admin/apps/{id}/jwks``). The
``client_id`` is random, made at the first registration and kept when the keys are replaced (the
client's configuration stays the same through a key rotation); replacing the keys revokes the
app's access tokens. The client acts for the app: its organisation, and at most the app's roles
(through the scopes of :mod:`ledger.oauth.scopes`). Revoking the app ends the client: no new
token, and the tokens it holds stop working.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ledger.exceptions import ConflictError, InputError, NotFoundError
from ledger.oauth.client_keys import jwks_json, parse_client_jwks
from ledger.oauth.scopes import allowed_scopes
from ledger.store.apps import get_app
from ledger.store.database import Connection
from ledger.store.oauth import StoredClient, client_of_app, put_client_keys


def register_client_keys(conn: Connection, app_id: int, jwks: Mapping[str, Any], now: int) -> StoredClient:
    """Register (or replace) the app's client keys; the app must be live and hold a role a scope stands for."""
    app = get_app(conn, app_id)
    if app.revoked_at is not None:
        raise ConflictError(f"app {app_id} is revoked: it can have no client", app=app_id)
    if not allowed_scopes(app.roles):
        raise InputError(
            "this app holds no role a SMART scope stands for (admin and emergency keep to API keys)",
            field="app",
            roles=sorted(r.value for r in app.roles),
        )
    return put_client_keys(conn, app_id, jwks_json(parse_client_jwks(jwks)), now)


def registered_client(conn: Connection, app_id: int) -> StoredClient:
    """The app's client; :class:`NotFoundError` if it registered no keys."""
    get_app(conn, app_id)
    client = client_of_app(conn, app_id)
    if client is None:
        raise NotFoundError(f"app {app_id} has registered no client keys", app=app_id)
    return client
