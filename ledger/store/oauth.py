"""SMART Backend Services in the store: registered clients, spent assertion ids, access tokens.

Everything lives in the database so that every replica sees the same: a token issued by one is
accepted by all, and an assertion used at one is refused at every other (the id's primary key
decides a race). An access token is kept as its SHA-256 only, as an API key is; a row is found
only while its app is not revoked, so revoking the app revokes its tokens. Expired assertion ids
and tokens are deleted whenever a token is issued. The rules (what a JWKS may hold, how long
things live) are :mod:`ledger.oauth`'s; this module only stores.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

from ledger.exceptions import InvalidClientError
from ledger.store.apps import App, app_columns, app_from_row
from ledger.store.database import Connection, with_tx

CLIENT_ID_BYTES = 16


@dataclass(frozen=True)
class StoredClient:
    """An app's SMART client: its ``client_id`` and public JWKS (JSON text)."""

    app: App
    client_id: str
    jwks: str
    updated_at: int


@dataclass(frozen=True)
class StoredToken:
    """A live access token: whose it is, what it may do and until when (unix seconds)."""

    app: App
    scopes: tuple[str, ...]
    expires_at: int


_CLIENT_COLUMNS = f"{app_columns('a')}, c.client_id, c.jwks, c.updated_at"


def _client(row: Any) -> StoredClient:
    client_id, jwks, updated_at = row[-3:]
    return StoredClient(app_from_row(row), str(client_id), str(jwks), int(updated_at))


def put_client_keys(conn: Connection, app_id: int, jwks: str, now: int) -> StoredClient:
    """Register ``jwks`` as the app's client keys, or replace the ones it had (its ``client_id`` is
    kept). Replacing keys deletes the app's access tokens: keys are replaced when one may have leaked."""

    def write() -> None:
        updated = conn.execute(
            "UPDATE oauth_clients SET jwks = ?, updated_at = ? WHERE app_id = ?", (jwks, now, app_id)
        ).rowcount
        if updated:
            conn.execute("DELETE FROM oauth_access_tokens WHERE app_id = ?", (app_id,))
            return
        conn.execute(
            "INSERT INTO oauth_clients (app_id, client_id, jwks, updated_at) VALUES (?, ?, ?, ?)",
            (app_id, secrets.token_urlsafe(CLIENT_ID_BYTES), jwks, now),
        )

    with_tx(conn, write)
    client = client_of_app(conn, app_id)
    assert client is not None
    return client


def client_of_app(conn: Connection, app_id: int) -> StoredClient | None:
    """The app's client, revoked or not (None: it has registered no keys)."""
    row = conn.execute(
        f"SELECT {_CLIENT_COLUMNS} FROM oauth_clients c JOIN apps a ON a.id = c.app_id WHERE c.app_id = ?", (app_id,)
    ).fetchone()
    return _client(row) if row else None


def live_client(conn: Connection, client_id: str) -> StoredClient | None:
    """The client of that ``client_id`` if its app is not revoked."""
    row = conn.execute(
        f"SELECT {_CLIENT_COLUMNS} FROM oauth_clients c JOIN apps a ON a.id = c.app_id "
        "WHERE c.client_id = ? AND a.revoked_at IS NULL",
        (client_id,),
    ).fetchone()
    return _client(row) if row else None


@dataclass(frozen=True)
class NewToken:
    """What issuing one access token writes: the assertion it spends and the token it stores."""

    client_id: str
    jti: str
    jti_kept_until: float
    app_id: int
    token_hash: bytes
    scopes: tuple[str, ...]
    issued_at: int
    expires_at: int


def spend_assertion_and_store_token(conn: Connection, token: NewToken) -> None:
    """In one transaction: record the assertion's ``jti`` as spent and store the token; a ``jti`` the
    client used already is :class:`InvalidClientError` and stores nothing. Expired ids and tokens go."""

    def write() -> None:
        now = token.issued_at
        conn.execute("DELETE FROM oauth_assertion_ids WHERE expires_at < ?", (now,))
        conn.execute("DELETE FROM oauth_access_tokens WHERE expires_at <= ?", (now,))
        spent = conn.execute(
            "INSERT OR IGNORE INTO oauth_assertion_ids (client_id, jti, expires_at) VALUES (?, ?, ?)",
            (token.client_id, token.jti, token.jti_kept_until),
        ).rowcount
        if not spent:
            raise InvalidClientError("this client assertion was used already (its jti is spent): sign a new one")
        conn.execute(
            "INSERT INTO oauth_access_tokens (token_hash, app_id, scopes, issued_at, expires_at) "
            "VALUES (?, ?, ?, ?, ?)",
            (token.token_hash, token.app_id, " ".join(token.scopes), token.issued_at, token.expires_at),
        )

    with_tx(conn, write)


def live_token(conn: Connection, token_hash: bytes, now: float) -> StoredToken | None:
    """The token of that hash if it has not expired and its app is not revoked."""
    row = conn.execute(
        f"SELECT {app_columns('a')}, t.scopes, t.expires_at FROM oauth_access_tokens t JOIN apps a ON a.id = t.app_id "
        "WHERE t.token_hash = ? AND t.expires_at > ? AND a.revoked_at IS NULL",
        (token_hash, now),
    ).fetchone()
    if row is None:
        return None
    scopes, expires_at = row[-2:]
    return StoredToken(app_from_row(row), tuple(str(scopes).split()), int(expires_at))
