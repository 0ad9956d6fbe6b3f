"""Client assertions (``private_key_jwt``): how a SMART backend client proves who it is.

The client signs a short-lived JWT with one of its registered private keys (SMART App Launch 2,
"client-confidential-asymmetric"; RFC 7523 section 3). Preconditions checked, in this order, each
refusal an :class:`~ledger.exceptions.InvalidClientError` saying which:

1. A compact JWS of at most :data:`MAX_ASSERTION_BYTES`, its header naming ``alg`` RS384 or ES384
   (never ``none``, never an HMAC, whose "secret" would be the public key) and a ``kid``; no
   ``jku``, ``x5u``, ``jwk`` or ``x5c`` (keys come from the registration, never from the token) and
   no ``crit``; a ``typ``, if any, of ``JWT``.
2. Signed by the registered key of that ``kid`` (joserfc checks the signature and that the key's
   type fits the algorithm).
3. Claims: ``iss`` and ``sub`` both the client's ``client_id``; ``aud`` the token endpoint's URL (as
   configured: ``public_origin``, never the request's Host); ``exp`` not passed, and at most
   :data:`MAX_ASSERTION_LIFETIME` ahead; a ``jti`` of at most :data:`MAX_JTI_LENGTH` characters;
   ``nbf`` and ``iat``, if given, not in the future.

Clocks differ: ``exp``, ``nbf`` and ``iat`` are compared with :data:`CLOCK_SKEW` seconds of leeway.
The ``jti`` is spent when a token is issued (:mod:`ledger.store.oauth`) and kept until
``exp + CLOCK_SKEW``, after which the assertion would be refused as expired anyway: so no
assertion is ever accepted twice, by any replica.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from joserfc import jws, jwt
from joserfc.errors import (
    BadSignatureError,
    ExpiredTokenError,
    InvalidClaimError,
    InvalidKeyIdError,
    JoseError,
    MissingClaimError,
)
from joserfc.jwk import KeySet

from ledger.exceptions import InvalidClientError

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
SIGNING_ALGORITHMS = ("RS384", "ES384")
MAX_ASSERTION_LIFETIME = 300
"""SMART: an assertion's ``exp`` is no more than five minutes in the future."""
CLOCK_SKEW = 60
"""Seconds by which the client's clock and ours may differ."""
MAX_JTI_LENGTH = 255
MAX_ASSERTION_BYTES = 16_384
REFUSED_HEADERS = ("jku", "x5u", "jwk", "x5c", "crit", "b64")


@dataclass(frozen=True)
class VerifiedAssertion:
    """A client assertion that passed every check: who signed it, with which key, its id and expiry."""

    client_id: str
    key_id: str
    jti: str
    expires_at: int


def _compact(assertion: str) -> jws.CompactSignature:
    if len(assertion) > MAX_ASSERTION_BYTES or not assertion.isascii() or assertion.count(".") != 2:
        raise InvalidClientError("the client assertion is not a compact JWT")
    try:
        compact = jws.extract_compact(assertion.encode("ascii"))
    except (JoseError, ValueError) as err:
        raise InvalidClientError("the client assertion is not a compact JWT") from err
    if not isinstance(compact.headers(), dict):
        raise InvalidClientError("the client assertion is not a compact JWT (its header is no JSON object)")
    return compact


def claimed_client_id(assertion: str) -> str:
    """The ``iss`` the assertion claims, read before verifying it (to find the keys to verify it with)."""
    payload = _compact(assertion).payload
    try:
        claims = json.loads(payload)
    except ValueError as err:  # UnicodeDecodeError too
        raise InvalidClientError("the client assertion's claims are not JSON") from err
    issuer = claims.get("iss") if isinstance(claims, dict) else None
    if not isinstance(issuer, str) or not _is_identifier(issuer):
        raise InvalidClientError("the client assertion names no issuer (iss: the client_id)")
    return issuer


def _is_identifier(text: str) -> bool:
    """Whether a claimed ``iss`` or ``jti`` is a printable string of a sensible length (before it
    reaches the store, which refuses NUL characters on PostgreSQL)."""
    return 1 <= len(text) <= MAX_JTI_LENGTH and text.isprintable()


def _check_header(header: dict[str, Any]) -> str:
    """The header's ``kid``, once the header passes precondition 1."""
    if header.get("alg") not in SIGNING_ALGORITHMS:
        raise InvalidClientError(f"the client assertion must be signed with {' or '.join(SIGNING_ALGORITHMS)}")
    refused = [name for name in REFUSED_HEADERS if name in header]
    if refused:
        raise InvalidClientError(f"the client assertion's header may not carry {', '.join(refused)}")
    if str(header.get("typ", "JWT")).upper() != "JWT":
        raise InvalidClientError("the client assertion's typ must be JWT")
    kid = header.get("kid")
    if not isinstance(kid, str) or not kid:
        raise InvalidClientError("the client assertion's header names no key (kid)")
    return kid


def verify_assertion(assertion: str, keys: KeySet, *, client_id: str, audience: str, now: int) -> VerifiedAssertion:
    """Check ``assertion`` as the module says, for the client ``client_id`` whose keys are ``keys``
    at the token endpoint ``audience``; :class:`InvalidClientError` for the first check that fails."""
    kid = _check_header(_compact(assertion).headers())
    try:
        token = jwt.decode(assertion, keys, algorithms=SIGNING_ALGORITHMS)
    except InvalidKeyIdError as err:
        raise InvalidClientError(f"the client has no registered key {kid!r} for this algorithm") from err
    except (BadSignatureError, JoseError, ValueError) as err:
        raise InvalidClientError(f"the client assertion's signature does not verify with its key {kid!r}") from err
    _check_claims(token.claims, client_id=client_id, audience=audience, now=now)
    return VerifiedAssertion(client_id, kid, str(token.claims["jti"]), int(token.claims["exp"]))


def _check_claims(claims: dict[str, Any], *, client_id: str, audience: str, now: int) -> None:
    registry = jwt.JWTClaimsRegistry(
        now=now,
        leeway=CLOCK_SKEW,
        iss={"essential": True, "value": client_id},
        sub={"essential": True, "value": client_id},
        aud={"essential": True, "value": audience},
        exp={"essential": True},
        jti={"essential": True},
    )
    try:
        registry.validate(claims)
    except ExpiredTokenError as err:
        raise InvalidClientError("the client assertion has expired: sign a new one") from err
    except MissingClaimError as err:
        raise InvalidClientError(f"the client assertion lacks the claims {err.claim}") from err
    except InvalidClaimError as err:
        raise InvalidClientError(_claim_problem(err.claim, audience)) from err
    if claims["exp"] > now + MAX_ASSERTION_LIFETIME + CLOCK_SKEW:
        raise InvalidClientError(f"the client assertion expires more than {MAX_ASSERTION_LIFETIME} s ahead")
    if not _is_identifier(claims["jti"]):
        raise InvalidClientError(f"the client assertion's jti must be 1 to {MAX_JTI_LENGTH} printable characters")


def _claim_problem(claim: str, audience: str) -> str:
    if claim == "aud":
        return f"the client assertion is meant for another audience: its aud must be this token endpoint, {audience}"
    if claim in ("iss", "sub"):
        return "the client assertion's iss and sub must both be the client_id"
    if claim in ("nbf", "iat"):
        return f"the client assertion is not valid yet ({claim} is in the future)"
    return f"the client assertion's {claim} claim is invalid"
