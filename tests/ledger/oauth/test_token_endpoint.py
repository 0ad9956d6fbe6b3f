"""The token request's pipeline on the store under test: form, client, assertion, scopes, one-time
``jti``; and the tokens it issues: shared by replicas, short-lived, revoked with their app or keys."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlencode

import pytest

from ledger.exceptions import (
    InvalidAccessTokenError,
    InvalidClientError,
    InvalidScopeError,
    TokenRequestError,
    UnsupportedGrantTypeError,
)
from ledger.oauth.access_tokens import AccessTokenCache
from ledger.oauth.assertions import CLOCK_SKEW
from ledger.oauth.clients import register_client_keys
from ledger.oauth.scopes import READ_SCOPE, REGISTRAR_SCOPE
from ledger.oauth.token_endpoint import FORM_TYPE, IssuedToken, issue_token, parse_token_request
from ledger.store.apps import Role, create_app, create_organisation, revoke_app
from ledger.store.database import Database, open_database
from tests.support.smart_clients import Algorithm, SmartClient

AUDIENCE = "https://ledger.example.org/oauth/token"
LIFETIME = 120


@pytest.fixture
def replicas(tmp_path: Path, store_overrides: dict[str, str]) -> Iterator[tuple[Database, Database]]:
    """The store under test, opened twice on PostgreSQL (two replicas); on SQLite the one process's store."""
    url = store_overrides.get("database_url")
    first = open_database(tmp_path / "a", url=url)
    second = open_database(tmp_path / "b", url=url) if url else first
    yield first, second
    first.close()
    second.close()


@pytest.fixture
def db(replicas: tuple[Database, Database]) -> Database:
    return replicas[0]


def new_client(db: Database, roles: set[Role], alg: Algorithm = "ES384") -> tuple[SmartClient, int]:
    org = create_organisation(db.conn, f"Org {time.monotonic_ns()}", "org", "0x" + "11" * 20)
    app, _ = create_app(db.conn, org.id, "backend", roles)
    smart = SmartClient(alg)
    smart.client_id = register_client_keys(db.conn, app.id, smart.jwks(), int(time.time())).client_id
    return smart, app.id


def form(smart: SmartClient, assertion: str, scope: str = READ_SCOPE, **extra: str) -> bytes:
    return urlencode(smart.token_form(assertion, scope, **extra)).encode()


def issue(db: Database, body: bytes, now: int | None = None) -> IssuedToken:
    request = parse_token_request(body, FORM_TYPE)
    return issue_token(
        db.conn, request, token_endpoint=AUDIENCE, lifetime=LIFETIME, now=int(time.time()) if now is None else now
    )


def test_the_form_is_checked_before_anything_else() -> None:
    smart = SmartClient("ES384", client_id="c")
    good = smart.token_form("a.b.c", READ_SCOPE)
    cases: list[tuple[bytes, str | None, type[TokenRequestError], str]] = [
        (urlencode(good).encode(), "application/json", TokenRequestError, "Content-Type"),
        (urlencode(good).encode(), None, TokenRequestError, "Content-Type"),
        (b"", FORM_TYPE, TokenRequestError, "grant_type is missing"),
        (b"\xff=1", FORM_TYPE, TokenRequestError, "not a form"),
        (b"&".join([b"a=1"] * 17), FORM_TYPE, TokenRequestError, "not a form"),
        (
            urlencode({**good, "grant_type": "authorization_code"}).encode(),
            FORM_TYPE,
            UnsupportedGrantTypeError,
            "client_credentials",
        ),
        (urlencode({**good, "client_assertion": ""}).encode(), FORM_TYPE, TokenRequestError, "required"),
        (urlencode({**good, "client_assertion_type": "x"}).encode(), FORM_TYPE, InvalidClientError, "signed JWT"),
        (urlencode({k: v for k, v in good.items() if k != "scope"}).encode(), FORM_TYPE, InvalidScopeError, "required"),
        (urlencode(good).encode() + b"&scope=x", FORM_TYPE, TokenRequestError, "more than once"),
    ]
    for body, content_type, error, describes in cases:
        with pytest.raises(error, match=describes):
            parse_token_request(body, content_type)
    parsed = parse_token_request(urlencode(good).encode() + b"&unknown=ignored", f"{FORM_TYPE}; charset=utf-8")
    assert parsed.client_assertion == "a.b.c" and parsed.scope == READ_SCOPE and parsed.client_id is None


def test_an_assertion_is_spent_once_across_replicas(replicas: tuple[Database, Database]) -> None:
    first, second = replicas
    smart, _ = new_client(first, {Role.READER})
    body = form(smart, smart.assertion(AUDIENCE))
    issued = issue(first, body)
    assert issued.scope == READ_SCOPE and issued.expires_in == LIFETIME and issued.token_type == "bearer"
    with pytest.raises(InvalidClientError, match="used already"):
        issue(second, body)
    token = AccessTokenCache().lookup(second.conn, issued.access_token)  # the other replica accepts the token
    assert token.scopes == (READ_SCOPE,) and token.roles == {Role.READER}


def test_a_refused_request_spends_nothing(db: Database) -> None:
    smart, _ = new_client(db, {Role.READER})
    assertion = smart.assertion(AUDIENCE)
    with pytest.raises(InvalidScopeError):
        issue(db, form(smart, assertion, REGISTRAR_SCOPE))
    assert issue(db, form(smart, assertion)).scope == READ_SCOPE  # the same jti, now with a grantable scope


def test_tokens_expire_and_die_with_their_app(db: Database) -> None:
    smart, app_id = new_client(db, {Role.REGISTRAR})
    issued = issue(db, form(smart, smart.assertion(AUDIENCE), f"{REGISTRAR_SCOPE} {READ_SCOPE}"))
    assert issued.scope == f"{READ_SCOPE} {REGISTRAR_SCOPE}"
    cache = AccessTokenCache()
    now = time.time()
    assert cache.lookup(db.conn, issued.access_token, now).roles == {Role.READER, Role.REGISTRAR}
    with pytest.raises(InvalidAccessTokenError):  # expired, even while cached
        cache.lookup(db.conn, issued.access_token, now + LIFETIME + 1)
    with pytest.raises(InvalidAccessTokenError):
        AccessTokenCache().lookup(db.conn, issued.access_token, now + LIFETIME + 1)
    revoke_app(db.conn, app_id)
    with pytest.raises(InvalidAccessTokenError):
        AccessTokenCache().lookup(db.conn, issued.access_token, now)
    with pytest.raises(InvalidClientError, match="unknown client"):
        issue(db, form(smart, smart.assertion(AUDIENCE)))
    with pytest.raises(InvalidAccessTokenError):
        AccessTokenCache().lookup(db.conn, "clt_" + "A" * 43, now)


def test_new_keys_revoke_the_tokens_of_the_old(db: Database) -> None:
    smart, app_id = new_client(db, {Role.READER})
    issued = issue(db, form(smart, smart.assertion(AUDIENCE)))
    replacement = SmartClient("RS384", client_id=smart.client_id)
    assert register_client_keys(db.conn, app_id, replacement.jwks(), int(time.time())).client_id == smart.client_id
    with pytest.raises(InvalidAccessTokenError):
        AccessTokenCache().lookup(db.conn, issued.access_token)
    with pytest.raises(InvalidClientError, match="no registered key"):
        issue(db, form(smart, smart.assertion(AUDIENCE)))
    issue(db, form(replacement, replacement.assertion(AUDIENCE)))


def test_spent_ids_and_expired_tokens_are_forgotten_once_they_cannot_matter(db: Database) -> None:
    smart, _ = new_client(db, {Role.READER})
    now = int(time.time())
    assertion = smart.assertion(AUDIENCE, lifetime=60)
    issue(db, form(smart, assertion), now)
    later = now + 60 + CLOCK_SKEW + 1 + LIFETIME
    issue(db, form(smart, smart.assertion(AUDIENCE, iat=later, exp=later + 60)), later)
    counts = [
        db.conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
        for t in ("oauth_assertion_ids", "oauth_access_tokens")
    ]
    assert counts == [1, 1]


def test_client_id_if_given_must_be_the_assertions_issuer(db: Database) -> None:
    smart, _ = new_client(db, {Role.READER})
    with pytest.raises(InvalidClientError, match="different clients"):
        issue(db, form(smart, smart.assertion(AUDIENCE), client_id="someone-else"))
    issue(db, form(smart, smart.assertion(AUDIENCE), client_id=smart.client_id))
