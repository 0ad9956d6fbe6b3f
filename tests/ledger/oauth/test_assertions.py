"""Client assertions: each precondition of ``verify_assertion``, as a named case that must be refused,
and the clock skew it allows."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable

import pytest
from joserfc.jwk import KeySet

from ledger.exceptions import InvalidClientError
from ledger.oauth.assertions import (
    CLOCK_SKEW,
    MAX_ASSERTION_LIFETIME,
    MAX_JTI_LENGTH,
    VerifiedAssertion,
    claimed_client_id,
    verify_assertion,
)
from ledger.oauth.client_keys import parse_client_jwks
from tests.support.smart_clients import Algorithm, SmartClient

AUDIENCE = "https://ledger.example.org/oauth/token"
CLIENT_ID = "client-1"


def client_and_keys(alg: Algorithm) -> tuple[SmartClient, KeySet]:
    client = SmartClient(alg, client_id=CLIENT_ID)
    return client, parse_client_jwks(client.jwks())


@pytest.fixture(scope="module", params=["RS384", "ES384"])
def registered(request: pytest.FixtureRequest) -> tuple[SmartClient, KeySet]:
    return client_and_keys(request.param)


def verify(assertion: str, keys: KeySet, now: int | None = None) -> VerifiedAssertion:
    return verify_assertion(
        assertion, keys, client_id=CLIENT_ID, audience=AUDIENCE, now=int(time.time()) if now is None else now
    )


def test_a_right_assertion_passes(registered: tuple[SmartClient, KeySet]) -> None:
    client, keys = registered
    assertion = client.assertion(AUDIENCE, jti="once")
    assert claimed_client_id(assertion) == CLIENT_ID
    verified = verify(assertion, keys)
    assert verified.client_id == CLIENT_ID and verified.jti == "once" and verified.key_id == client.kid


def test_an_audience_list_naming_the_token_endpoint_passes(registered: tuple[SmartClient, KeySet]) -> None:
    client, keys = registered
    verify(client.assertion(AUDIENCE, aud=["https://other.example", AUDIENCE]), keys)


REFUSED: dict[str, tuple[Callable[[SmartClient], str], str]] = {
    "expired": (lambda c: c.assertion(AUDIENCE, lifetime=-(CLOCK_SKEW + 5)), "expired"),
    "exp too far ahead": (lambda c: c.assertion(AUDIENCE, lifetime=MAX_ASSERTION_LIFETIME + CLOCK_SKEW + 5), "ahead"),
    "exp not a number": (lambda c: c.assertion(AUDIENCE, exp="soon"), "exp"),
    "no exp": (lambda c: c.assertion(AUDIENCE, exp=None), "lacks the claims exp"),
    "wrong audience": (lambda c: c.assertion("https://ledger.example.org/fhir/r4"), "another audience"),
    "no audience": (lambda c: c.assertion(AUDIENCE, aud=None), "lacks the claims aud"),
    "iss another client": (lambda c: c.assertion(AUDIENCE, iss="client-2"), "iss and sub"),
    "sub another client": (lambda c: c.assertion(AUDIENCE, sub="client-2"), "iss and sub"),
    "no jti": (lambda c: c.assertion(AUDIENCE, jti=None), "lacks the claims jti"),
    "jti too long": (lambda c: c.assertion(AUDIENCE, jti="j" * (MAX_JTI_LENGTH + 1)), "jti"),
    "jti with a NUL": (lambda c: c.assertion(AUDIENCE, jti="a\x00b"), "jti"),
    "issued in the future": (lambda c: c.assertion(AUDIENCE, iat=int(time.time()) + CLOCK_SKEW + 30), "iat"),
    "not valid yet": (lambda c: c.assertion(AUDIENCE, nbf=int(time.time()) + CLOCK_SKEW + 30), "nbf"),
    "signed with another key": (
        lambda c: c.assertion(AUDIENCE, signing_key=SmartClient(c.alg, kid=c.kid).key),
        "does not verify",
    ),
    "kid not registered": (lambda c: c.assertion(AUDIENCE, header={"kid": "unknown"}), "no registered key"),
    "no kid": (lambda c: c.assertion(AUDIENCE, header={"kid": None}), "names no key"),
    "alg none": (lambda c: c.unsigned(AUDIENCE), "RS384 or ES384"),
    "HS256 keyed with the public key": (lambda c: c.hmac_with_public_key(AUDIENCE), "RS384 or ES384"),
    "jku": (lambda c: c.assertion(AUDIENCE, header={"jku": "https://evil.example/jwks.json"}), "jku"),
    "embedded jwk": (lambda c: c.assertion(AUDIENCE, header={"jwk": c.public_jwk()}), "jwk|not a compact JWT"),
    "crit": (lambda c: _with_header(c.assertion(AUDIENCE), crit=["x-policy"], **{"x-policy": 1}), "crit"),
    "typ not JWT": (lambda c: c.assertion(AUDIENCE, header={"typ": "dpop+jwt"}), "typ"),
    "header not an object": (lambda c: _with_header_text(c.assertion(AUDIENCE), '["alg"]'), "not a compact JWT"),
    "truncated": (lambda c: c.assertion(AUDIENCE).rsplit(".", 1)[0], "not a compact JWT"),
    "trailing garbage": (lambda c: c.assertion(AUDIENCE) + ".x", "not a compact JWT"),
    "signature bit flipped": (lambda c: _flip_last(c.assertion(AUDIENCE)), "does not verify"),
}


def _with_header(assertion: str, **members: object) -> str:
    """The assertion with members added to its header (its signature no longer matches)."""
    header, rest = assertion.split(".", 1)
    decoded = json.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)))
    encoded = base64.urlsafe_b64encode(json.dumps({**decoded, **members}).encode()).rstrip(b"=").decode()
    return f"{encoded}.{rest}"


def _with_header_text(assertion: str, text: str) -> str:
    encoded = base64.urlsafe_b64encode(text.encode()).rstrip(b"=").decode()
    return f"{encoded}.{assertion.split('.', 1)[1]}"


def _flip_last(assertion: str) -> str:
    head, _, signature = assertion.rpartition(".")
    return f"{head}.{signature[:-2]}{'A' if signature[-2] != 'A' else 'B'}{signature[-1]}"


@pytest.mark.parametrize("case", sorted(REFUSED), ids=str)
def test_refused(registered: tuple[SmartClient, KeySet], case: str) -> None:
    client, keys = registered
    make, describes = REFUSED[case]
    with pytest.raises(InvalidClientError, match=describes) as raised:
        verify(make(client), keys)
    assert raised.value.code == "invalid_client"


def test_a_key_of_the_other_type_under_the_named_kid_is_refused() -> None:
    rsa, _ = client_and_keys("RS384")
    ec, ec_keys = client_and_keys("ES384")
    confused = rsa.assertion(AUDIENCE, header={"kid": ec.kid})  # RS384 naming the EC key
    with pytest.raises(InvalidClientError):
        verify(confused, ec_keys)


def test_clocks_may_differ_by_the_skew(registered: tuple[SmartClient, KeySet]) -> None:
    client, keys = registered
    now = int(time.time())
    just_expired = client.assertion(AUDIENCE, exp=now - CLOCK_SKEW + 5)
    verify(just_expired, keys, now)
    ahead = client.assertion(AUDIENCE, iat=now + CLOCK_SKEW - 5, exp=now + MAX_ASSERTION_LIFETIME + CLOCK_SKEW - 5)
    verify(ahead, keys, now)


def test_an_assertion_without_an_issuer_names_no_client() -> None:
    client, _ = client_and_keys("ES384")
    for assertion in (client.assertion(AUDIENCE, iss=None), "a.b.c", "x" * 20_000):
        with pytest.raises(InvalidClientError):
            claimed_client_id(assertion)
