"""A registered JWKS holds public RS384 or ES384 keys with a kid each, and nothing private."""

from __future__ import annotations

import json
from typing import Any

import pytest
from joserfc.jwk import ECKey, OctKey, OKPKey, RSAKey

from ledger.exceptions import InputError
from ledger.oauth.client_keys import MAX_KEYS, jwks_json, load_client_jwks, parse_client_jwks
from tests.support.smart_clients import SmartClient


def public(key: RSAKey | ECKey, **members: Any) -> dict[str, Any]:
    return {**key.as_dict(private=False), **members}


@pytest.fixture(scope="module")
def rsa() -> SmartClient:
    return SmartClient("RS384")


@pytest.fixture(scope="module")
def ec() -> SmartClient:
    return SmartClient("ES384")


def test_rsa_and_ec_public_keys_are_registered_as_their_public_parameters(rsa: SmartClient, ec: SmartClient) -> None:
    sent = {"keys": [public(rsa.key, x5c=["MIIB..."], key_ops=["verify"]), public(ec.key)]}
    stored = json.loads(jwks_json(parse_client_jwks(sent)))
    assert [set(k) for k in stored["keys"]] == [
        {"kty", "kid", "alg", "use", "n", "e"},
        {"kty", "kid", "alg", "use", "crv", "x", "y"},
    ]
    assert [k.kid for k in load_client_jwks(jwks_json(parse_client_jwks(sent)))] == [rsa.kid, ec.kid]


@pytest.mark.filterwarnings("ignore:Key size should be:joserfc.errors.SecurityWarning")  # the 1024-bit key made here
@pytest.mark.parametrize(
    ("make", "problem"),
    [
        (lambda c: c.key.as_dict(private=True), "private key material (d, dp, dq, p, q, qi)"),
        (lambda c: {**c.public_jwk(), "d": "AAAA"}, "private key material (d)"),
        (lambda c: OctKey.generate_key(256, parameters={"kid": "s"}).as_dict(private=True), "private key material (k)"),
        (lambda c: {**OKPKey.generate_key("Ed25519").as_dict(private=False), "kid": "o"}, "kty"),
        (lambda c: RSAKey.generate_key(1024, parameters={"kid": "small"}).as_dict(private=False), "2048 to 8192 bits"),
        (lambda c: ECKey.generate_key("P-256", parameters={"kid": "p256"}).as_dict(private=False), "P-384"),
        (lambda c: {k: v for k, v in c.public_jwk().items() if k != "kid"}, "kid"),
        (lambda c: {**c.public_jwk(), "alg": "RS256"}, "RS384 only"),
        (lambda c: {**c.public_jwk(), "n": "_" * 1400}, "2048 to 8192 bits"),
        (lambda c: {**c.public_jwk(), "n": "_" * 401}, "2048 to 8192 bits"),
        (lambda c: {**c.public_jwk(), "kty": ["RSA"]}, "kty"),
        (lambda c: {**c.public_jwk(), "use": "enc"}, "use must be sig"),
        (lambda c: {**c.public_jwk(), "key_ops": ["sign"]}, "key_ops"),
        (lambda c: {**c.public_jwk(), "n": "not-a-modulus!"}, "2048 to 8192 bits"),
        (lambda c: {**c.public_jwk(), "e": "!"}, "not a valid RSA public key"),
        (lambda c: {**SmartClient("ES384").public_jwk(), "x": "AAAA"}, "not a valid EC public key"),
        (lambda c: "a PEM, perhaps", "JSON object"),
    ],
)
def test_refused_keys_say_why(rsa: SmartClient, make: Any, problem: str) -> None:
    with pytest.raises(InputError) as raised:
        parse_client_jwks({"keys": [make(rsa)]})
    assert problem in raised.value.message and raised.value.details["field"].startswith("keys[0]")


def test_a_set_is_one_to_ten_keys_of_distinct_kids(rsa: SmartClient, ec: SmartClient) -> None:
    for keys in ([], [public(rsa.key)] * (MAX_KEYS + 1), None):
        with pytest.raises(InputError, match="1 to 10 keys"):
            parse_client_jwks({"keys": keys})
    with pytest.raises(InputError, match="kid of its own"):
        parse_client_jwks({"keys": [public(rsa.key), public(ec.key, kid=rsa.kid)]})
