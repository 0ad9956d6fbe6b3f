"""The token endpoint's one grant: ``client_credentials`` with a ``private_key_jwt`` client assertion.

Every token request runs the same pipeline, each step refusing with the RFC 6749 error it names:

1. Parse the form (:func:`parse_token_request`): ``application/x-www-form-urlencoded``, each
   parameter at most once (``invalid_request``); ``grant_type`` ``client_credentials``
   (``unsupported_grant_type``); ``client_assertion_type`` the JWT-bearer URN and a
   ``client_assertion`` (``invalid_request`` if missing, ``invalid_client`` if another type); a
   ``scope`` (``invalid_scope`` if missing). Parameters it does not know are ignored, as RFC 6749
   section 3.2 asks.
2. Find the client by the assertion's ``iss`` (and the optional ``client_id``, which must be the
   same): a registered client whose app is not revoked (``invalid_client``).
3. Verify the assertion against that client's keys (:mod:`ledger.oauth.assertions`; ``invalid_client``).
4. Grant the scopes (:mod:`ledger.oauth.scopes`; ``invalid_scope``).
5. Spend the assertion's ``jti`` and store the token in one transaction (a replay is
   ``invalid_client`` and stores nothing), then answer ``access_token``, ``token_type`` (``bearer``),
   ``expires_in`` and the granted ``scope``.
"""

from __future__ import annotations

from dataclasses import dataclass
from email.message import Message
from typing import Literal
from urllib.parse import parse_qsl

from ledger.exceptions import InvalidClientError, InvalidScopeError, TokenRequestError, UnsupportedGrantTypeError
from ledger.oauth.access_tokens import hash_access_token, new_access_token
from ledger.oauth.assertions import ASSERTION_TYPE, CLOCK_SKEW, claimed_client_id, verify_assertion
from ledger.oauth.client_keys import load_client_jwks
from ledger.oauth.scopes import grant, parse_scope
from ledger.store.database import Connection
from ledger.store.oauth import NewToken, live_client, spend_assertion_and_store_token

GRANT_TYPE = "client_credentials"
FORM_TYPE = "application/x-www-form-urlencoded"
MAX_FORM_FIELDS = 16
TOKEN_TYPE: Literal["bearer"] = "bearer"


@dataclass(frozen=True)
class TokenRequest:
    """A token request's parameters, once the form is understood."""

    client_assertion: str
    scope: str
    client_id: str | None = None


@dataclass(frozen=True)
class IssuedToken:
    """What the token endpoint answers (RFC 6749 section 5.1)."""

    access_token: str
    expires_in: int
    scope: str
    token_type: Literal["bearer"] = TOKEN_TYPE


def parse_token_request(body: bytes, content_type: str | None) -> TokenRequest:
    """Step 1 of the pipeline: the form's parameters, checked."""
    if _media_type(content_type) != FORM_TYPE:
        raise TokenRequestError(f"a token request is a form: send Content-Type {FORM_TYPE}")
    try:
        fields = parse_qsl(
            body.decode("utf-8"), keep_blank_values=True, strict_parsing=bool(body), max_num_fields=MAX_FORM_FIELDS
        )
    except (UnicodeDecodeError, ValueError) as err:
        raise TokenRequestError("the request body is not a form of at most 16 UTF-8 parameters") from err
    form: dict[str, str] = {}
    for name, value in fields:
        if name in form:
            raise TokenRequestError(f"the parameter {name} is given more than once")
        form[name] = value
    grant_type = form.get("grant_type")
    if not grant_type:
        raise TokenRequestError("grant_type is missing (client_credentials)")
    if grant_type != GRANT_TYPE:
        raise UnsupportedGrantTypeError(f"the only grant offered is {GRANT_TYPE}")
    assertion_type, assertion = form.get("client_assertion_type"), form.get("client_assertion")
    if not assertion_type or not assertion:
        raise TokenRequestError("client_assertion_type and client_assertion are required (private_key_jwt)")
    if assertion_type != ASSERTION_TYPE:
        raise InvalidClientError(f"clients authenticate with a signed JWT only: client_assertion_type {ASSERTION_TYPE}")
    scope = form.get("scope")
    if scope is None:
        raise InvalidScopeError("a scope is required")
    return TokenRequest(assertion, scope, form.get("client_id") or None)


def _media_type(content_type: str | None) -> str:
    message = Message()
    message["content-type"] = content_type or ""
    return message.get_content_type() if content_type else ""


def issue_token(
    conn: Connection, request: TokenRequest, *, token_endpoint: str, lifetime: int, now: int
) -> IssuedToken:
    """Steps 2 to 5 of the pipeline: an access token for a verified client, or the refusal."""
    client_id = claimed_client_id(request.client_assertion)
    if request.client_id is not None and request.client_id != client_id:
        raise InvalidClientError("client_id and the assertion's iss name different clients")
    client = live_client(conn, client_id)
    if client is None:
        raise InvalidClientError("unknown client: no live app has registered keys under this client_id")
    verified = verify_assertion(
        request.client_assertion,
        load_client_jwks(client.jwks),
        client_id=client_id,
        audience=token_endpoint,
        now=now,
    )
    scopes = grant(parse_scope(request.scope), client.app.roles)
    token = new_access_token()
    spend_assertion_and_store_token(
        conn,
        NewToken(
            client_id=client_id,
            jti=verified.jti,
            jti_kept_until=verified.expires_at + CLOCK_SKEW,
            app_id=client.app.id,
            token_hash=hash_access_token(token),
            scopes=scopes,
            issued_at=now,
            expires_at=now + lifetime,
        ),
    )
    return IssuedToken(token, lifetime, " ".join(scopes))
