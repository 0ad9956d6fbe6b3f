"""A SMART Backend Services client as a test plays one: a key pair made in the test, its public JWKS,
and client assertions signed with joserfc, right or wrong on purpose.

The forgeries a verifier must refuse are made here too: an unsigned assertion (``alg: none``) and
one MACed with HS256 using the public key as the secret (the classic algorithm confusion). Those two
are put together by hand, since no JOSE library signs them willingly.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Literal

from joserfc import jwt
from joserfc.jwk import ECKey, RSAKey

from ledger.oauth.assertions import ASSERTION_TYPE

Algorithm = Literal["RS384", "ES384"]


def _new_key(alg: Algorithm, kid: str) -> RSAKey | ECKey:
    if alg == "RS384":
        return RSAKey.generate_key(2048, parameters={"kid": kid, "alg": alg, "use": "sig"})
    return ECKey.generate_key("P-384", parameters={"kid": kid, "alg": alg, "use": "sig"})


@dataclass
class SmartClient:
    """A backend client's private key; ``client_id`` is set once its JWKS is registered."""

    alg: Algorithm
    kid: str = field(default_factory=lambda: f"key-{uuid.uuid4().hex[:8]}")
    client_id: str = ""
    key: RSAKey | ECKey = field(init=False)

    def __post_init__(self) -> None:
        self.key = _new_key(self.alg, self.kid)

    def public_jwk(self) -> dict[str, Any]:
        return dict(self.key.as_dict(private=False))

    def jwks(self) -> dict[str, Any]:
        """The public JWKS to register (what the client publishes)."""
        return {"keys": [self.public_jwk()]}

    def claims(self, audience: str, *, lifetime: int = 240, **overrides: Any) -> dict[str, Any]:
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.client_id,
            "sub": self.client_id,
            "aud": audience,
            "exp": now + lifetime,
            "iat": now,
            "jti": uuid.uuid4().hex,
        }
        claims.update(overrides)
        return {k: v for k, v in claims.items() if v is not None}

    def assertion(
        self,
        audience: str,
        *,
        lifetime: int = 240,
        header: dict[str, Any] | None = None,
        signing_key: RSAKey | ECKey | None = None,
        **claims: Any,
    ) -> str:
        """A client assertion for ``audience``, signed with this client's key (or ``signing_key``);
        ``header`` and ``claims`` override the right ones (None drops a member)."""
        protected = {"alg": self.alg, "kid": self.kid, "typ": "JWT", **(header or {})}
        protected = {k: v for k, v in protected.items() if v is not None}
        key = signing_key if signing_key is not None else self.key
        return jwt.encode(protected, self.claims(audience, lifetime=lifetime, **claims), key, algorithms=[self.alg])

    def unsigned(self, audience: str) -> str:
        """An assertion with ``alg: none`` and no signature."""
        return f"{_b64json({'alg': 'none', 'kid': self.kid, 'typ': 'JWT'})}.{_b64json(self.claims(audience))}."

    def hmac_with_public_key(self, audience: str) -> str:
        """An assertion MACed with HS256 whose secret is the client's public key (as its JWK JSON)."""
        signing_input = f"{_b64json({'alg': 'HS256', 'kid': self.kid, 'typ': 'JWT'})}.{_b64json(self.claims(audience))}"
        secret = json.dumps(self.public_jwk()).encode()
        mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
        return f"{signing_input}.{_b64(mac)}"

    def token_form(self, assertion: str, scope: str, **extra: str) -> dict[str, str]:
        """A token request's form fields."""
        return {
            "grant_type": "client_credentials",
            "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": assertion,
            "scope": scope,
            **extra,
        }


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64json(value: dict[str, Any]) -> str:
    return _b64(json.dumps(value, separators=(",", ":")).encode())
