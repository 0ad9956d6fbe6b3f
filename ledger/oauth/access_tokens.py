"""Access tokens: opaque, short-lived, kept in the store as their SHA-256.

Format: ``clt_`` and 256 random bits (base64url), the way API keys are ``clk_`` and 256 bits, so a
bearer credential says by its prefix which of the two it is. The token means nothing by itself;
the store row says whose it is, its scopes and its expiry.

Why opaque and stored rather than a signed JWT: replicas already share the store, so every replica
accepts a token another issued without any signing key to share, protect and rotate (a patient
session's HMAC secret is shared through the shared files; a JWT signing key would need the same,
plus rotation); revoking an app revokes its tokens at once because a token is found only with a
live app (a self-contained JWT would stay valid until it expired); and a copy of the database holds
no usable token. The cost is a store read per request, which :class:`AccessTokenCache` keeps to
one per token and process per ``ttl``, as :class:`~ledger.store.apps.AppKeyCache` does for keys.

Lifetime: ``access_token_lifetime`` seconds (five minutes at most, the default); there are no
refresh tokens: a backend client signs a new assertion for a new token (SMART Backend Services).
"""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass

from ledger.exceptions import InvalidAccessTokenError
from ledger.oauth.scopes import roles_of
from ledger.store.apps import App, Role
from ledger.store.database import Connection
from ledger.store.oauth import live_token

ACCESS_TOKEN_PREFIX = "clt_"
TOKEN_BYTES = 32
DEFAULT_TOKEN_LIFETIME = 300
MIN_TOKEN_LIFETIME, MAX_TOKEN_LIFETIME = 10, 300
"""SMART recommends access tokens of Backend Services live no longer than five minutes."""


@dataclass(frozen=True)
class AccessToken:
    """A live token: its app, the scopes it was granted, the roles those stand for, its expiry."""

    app: App
    scopes: tuple[str, ...]
    expires_at: int

    @property
    def roles(self) -> frozenset[Role]:
        return roles_of(self.scopes)


def new_access_token() -> str:
    return ACCESS_TOKEN_PREFIX + secrets.token_urlsafe(TOKEN_BYTES)


def is_access_token(credential: str) -> bool:
    """Whether a bearer credential is an access token (else it is taken for an API key)."""
    return credential.startswith(ACCESS_TOKEN_PREFIX)


def hash_access_token(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8")).digest()


class AccessTokenCache:
    """Recently seen access tokens -> their rows, for at most ``ttl`` seconds.

    A token's expiry is checked at every use, cached or not. A revocation (of the app, or of its
    tokens by replacing its keys) in this process clears the cache at once; in another replica it
    takes effect within ``ttl``: one second by default.
    """

    def __init__(self, ttl: float = 1.0, size: int = 10_000) -> None:
        self.ttl = ttl
        self.size = size
        self._entries: dict[bytes, tuple[AccessToken | None, float]] = {}

    def lookup(self, conn: Connection, token: str, now: float | None = None) -> AccessToken:
        """The live token; :class:`InvalidAccessTokenError` for an unknown, expired or revoked one."""
        now = time.time() if now is None else now
        token_hash = hash_access_token(token)
        deadline = time.monotonic()
        cached = self._entries.get(token_hash)
        if cached is not None and cached[1] > deadline:
            found = cached[0]
        else:
            stored = live_token(conn, token_hash, now)
            found = AccessToken(stored.app, stored.scopes, stored.expires_at) if stored else None
            if len(self._entries) >= self.size:
                self._entries.clear()
            self._entries[token_hash] = (found, deadline + self.ttl)
        if found is None or found.expires_at <= now:
            raise InvalidAccessTokenError("unknown, expired or revoked access token: get a new one")
        return found

    def clear(self) -> None:
        self._entries.clear()
