"""SMART Backend Services end to end: a client key made in the test, its JWKS registered by an admin,
a token from the token endpoint, and REST calls with it; and every way a token request or a token
must be refused (RFC 6749 error bodies at the token endpoint, RFC 6750 challenges at the API)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.rate_limit import RateLimiter
from api.service import Service
from ledger.config import Settings
from ledger.oauth.scopes import READ_SCOPE, REGISTRAR_SCOPE, SUPPORTED_SCOPES
from ledger.records.receipts import Receipt, verify_receipt
from ledger.store.apps import Role
from ledger.store.apps import create_app as create_api_app
from tests.api.conftest import PATIENT, MakeApp
from tests.support.chain_under_test import ChainUnderTest
from tests.support.registrations import new_digest
from tests.support.smart_clients import Algorithm, SmartClient

ORIGIN = "https://ledger.example.org"
TOKEN_URL = f"{ORIGIN}/oauth/token"
RequestToken = Callable[..., Any]


@pytest.fixture
def api_settings(tmp_path: Any, chain_under_test: ChainUnderTest, store_overrides: dict[str, str]) -> Settings:
    """The service as deployed behind its public origin (the test client's Host is another)."""
    return chain_under_test.settings(tmp_path / "data", max_batch_age=0.2, public_origin=ORIGIN, **store_overrides)


@pytest.fixture
def admin(make_app: MakeApp) -> dict[str, str]:
    headers, _ = make_app({Role.ADMIN}, organisation="Ledger Operators")
    return headers


def register(
    client: TestClient, service: Service, admin: dict[str, str], roles: set[Role], alg: Algorithm = "ES384"
) -> tuple[SmartClient, int]:
    """A new app with ``roles`` and a SMART client (key made here) registered for it; its app id."""
    org = service.create_organisation("General Hospital")
    app, _ = create_api_app(service.db.conn, org.id, f"backend-{alg}-{sorted(roles)}", roles)
    smart = SmartClient(alg)
    response = client.put(f"/v1/admin/apps/{app.id}/jwks", json=smart.jwks(), headers=admin)
    assert response.status_code == 200, response.text
    smart.client_id = response.json()["clientId"]
    return smart, app.id


def request_token(client: TestClient, form: dict[str, str]) -> Any:
    return client.post("/oauth/token", data=form)


def token_for(client: TestClient, smart: SmartClient, scope: str) -> str:
    response = request_token(client, smart.token_form(smart.assertion(TOKEN_URL), scope))
    assert response.status_code == 200, response.text
    token: str = response.json()["access_token"]
    return token


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def assert_oauth_error(response: Any, status: int, error: str, describes: str = "") -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error", "error_description"} and body["error"] == error, body
    assert describes in body["error_description"], body
    assert response.headers["cache-control"] == "no-store"


def test_the_smart_configuration_names_the_configured_token_endpoint(client: TestClient) -> None:
    for path in ("/.well-known/smart-configuration", "/fhir/r4/.well-known/smart-configuration"):
        response = client.get(path, headers={"Host": "attacker.example"})
        assert response.status_code == 200
        assert response.json() == {
            "token_endpoint": TOKEN_URL,
            "token_endpoint_auth_methods_supported": ["private_key_jwt"],
            "token_endpoint_auth_signing_alg_values_supported": ["RS384", "ES384"],
            "grant_types_supported": ["client_credentials"],
            "scopes_supported": list(SUPPORTED_SCOPES),
            "capabilities": ["client-confidential-asymmetric"],
        }


@pytest.mark.parametrize("alg", ["RS384", "ES384"])
def test_a_client_gets_a_token_and_registers_a_record_with_it(
    client: TestClient, service: Service, admin: dict[str, str], alg: Algorithm
) -> None:
    configuration = client.get("/.well-known/smart-configuration").json()
    smart, _ = register(client, service, admin, {Role.REGISTRAR}, alg)
    assertion = smart.assertion(configuration["token_endpoint"])
    response = request_token(client, smart.token_form(assertion, f"{REGISTRAR_SCOPE} patient/*.rs launch"))
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store" and response.headers["pragma"] == "no-cache"
    issued = response.json()
    assert issued["token_type"] == "bearer" and issued["scope"] == REGISTRAR_SCOPE  # the rest is not granted
    assert issued["expires_in"] == service.settings.access_token_lifetime <= 300
    assert issued["access_token"].startswith("clt_")

    headers = bearer(issued["access_token"])
    digest = new_digest()
    ack = client.post("/v1/records", json={"patient": PATIENT, "digest": digest}, headers=headers)
    assert ack.status_code == 202, ack.text
    record_id = ack.json()["recordId"]
    fetched = client.get(f"/v1/records/{record_id}/receipt", params={"wait": "true", "timeout": 20}, headers=headers)
    assert fetched.status_code == 200, fetched.text
    receipt = Receipt.parse(fetched.json())
    assert receipt.digest.hex() == digest[2:]
    assert verify_receipt(receipt, anchors=service.ledger.anchors).valid


def test_refused_assertions(client: TestClient, service: Service, admin: dict[str, str]) -> None:
    smart, _ = register(client, service, admin, {Role.REGISTRAR, Role.READER}, "RS384")
    other = SmartClient("RS384", kid=smart.kid)  # same kid, another key
    cases = {
        "expired": (smart.assertion(TOKEN_URL, lifetime=-120), "expired"),
        "too long": (smart.assertion(TOKEN_URL, lifetime=3600), "more than 300 s ahead"),
        "wrong audience": (smart.assertion("http://testserver/oauth/token"), "another audience"),
        "wrong key": (smart.assertion(TOKEN_URL, signing_key=other.key), "does not verify"),
        "unknown kid": (smart.assertion(TOKEN_URL, header={"kid": "nope"}), "no registered key"),
        "alg none": (smart.unsigned(TOKEN_URL), "RS384 or ES384"),
        "HS256 with the public key": (smart.hmac_with_public_key(TOKEN_URL), "RS384 or ES384"),
        "sub not the client": (smart.assertion(TOKEN_URL, sub="someone-else"), "iss and sub"),
        "no jti": (smart.assertion(TOKEN_URL, jti=None), "lacks the claims jti"),
        "key from the token": (smart.assertion(TOKEN_URL, header={"jku": "https://evil.example/jwks"}), "jku"),
        "not a JWT": ("not-a-jwt", "not a compact JWT"),
    }
    for assertion, describes in cases.values():
        response = request_token(client, smart.token_form(assertion, READ_SCOPE))
        assert_oauth_error(response, 401, "invalid_client", describes)


def test_a_replayed_assertion_is_refused(client: TestClient, service: Service, admin: dict[str, str]) -> None:
    smart, _ = register(client, service, admin, {Role.READER})
    form = smart.token_form(smart.assertion(TOKEN_URL), READ_SCOPE)
    assert request_token(client, form).status_code == 200
    assert_oauth_error(request_token(client, form), 401, "invalid_client", "used already")
    fresh = smart.token_form(smart.assertion(TOKEN_URL), READ_SCOPE)
    assert request_token(client, fresh).status_code == 200


def test_unknown_clients_and_revoked_apps_get_nothing(
    client: TestClient, service: Service, admin: dict[str, str]
) -> None:
    stranger = SmartClient("ES384", client_id="never-registered")
    response = request_token(client, stranger.token_form(stranger.assertion(TOKEN_URL), READ_SCOPE))
    assert_oauth_error(response, 401, "invalid_client", "unknown client")

    smart, app_id = register(client, service, admin, {Role.READER})
    token = token_for(client, smart, READ_SCOPE)
    assert client.get("/v1/records", params={"digest": new_digest()}, headers=bearer(token)).status_code == 200
    assert client.delete(f"/v1/admin/apps/{app_id}", headers=admin).status_code == 200
    refused = client.get("/v1/records", params={"digest": new_digest()}, headers=bearer(token))
    assert refused.status_code == 401 and refused.json()["code"] == "invalid_token"
    assert refused.headers["www-authenticate"] == 'Bearer error="invalid_token"'
    response = request_token(client, smart.token_form(smart.assertion(TOKEN_URL), READ_SCOPE))
    assert_oauth_error(response, 401, "invalid_client", "unknown client")


def test_a_scope_too_narrow_is_refused(client: TestClient, service: Service, admin: dict[str, str]) -> None:
    smart, _ = register(client, service, admin, {Role.REGISTRAR})
    read_only = bearer(token_for(client, smart, READ_SCOPE))  # a registrar may ask for less
    assert client.get("/v1/records", params={"digest": new_digest()}, headers=read_only).status_code == 200
    refused = client.post("/v1/records", json={"patient": PATIENT, "digest": new_digest()}, headers=read_only)
    assert refused.status_code == 403, refused.text
    body = refused.json()
    assert body["code"] == "insufficient_scope" and body["details"]["scope"] == REGISTRAR_SCOPE
    assert refused.headers["www-authenticate"] == f'Bearer error="insufficient_scope", scope="{REGISTRAR_SCOPE}"'
    admin_only = client.get("/v1/admin/apps", headers=read_only)
    assert admin_only.status_code == 403 and "use an API key" in admin_only.json()["message"]
    assert admin_only.headers["www-authenticate"] == 'Bearer error="insufficient_scope"'
    break_glass = {"patient": PATIENT, "scope": "*", "purpose": "ETREAT", "reason": "BTG"}
    assert client.post("/v1/access/emergency", json=break_glass, headers=read_only).status_code == 403


def test_scopes_the_app_may_not_have_are_not_granted(
    client: TestClient, service: Service, admin: dict[str, str]
) -> None:
    smart, _ = register(client, service, admin, {Role.READER})
    response = request_token(client, smart.token_form(smart.assertion(TOKEN_URL), f"{REGISTRAR_SCOPE} {READ_SCOPE}"))
    assert response.status_code == 200 and response.json()["scope"] == READ_SCOPE
    response = request_token(client, smart.token_form(smart.assertion(TOKEN_URL), REGISTRAR_SCOPE))
    assert_oauth_error(response, 400, "invalid_scope", READ_SCOPE)


def test_malformed_token_requests(client: TestClient, service: Service, admin: dict[str, str]) -> None:
    smart, _ = register(client, service, admin, {Role.READER})
    good = smart.token_form(smart.assertion(TOKEN_URL), READ_SCOPE)
    assert_oauth_error(request_token(client, {**good, "grant_type": "password"}), 400, "unsupported_grant_type")
    assert_oauth_error(
        request_token(client, {k: v for k, v in good.items() if k != "client_assertion"}), 400, "invalid_request"
    )
    assert_oauth_error(request_token(client, {**good, "client_assertion_type": "secret"}), 401, "invalid_client")
    assert_oauth_error(request_token(client, {**good, "client_id": "another"}), 401, "invalid_client")
    no_scope = {k: v for k, v in good.items() if k != "scope"}
    assert_oauth_error(request_token(client, no_scope), 400, "invalid_scope", "required")
    as_json = client.post("/oauth/token", json=good)
    assert_oauth_error(as_json, 400, "invalid_request", "application/x-www-form-urlencoded")
    twice = client.post(
        "/oauth/token",
        content="grant_type=client_credentials&grant_type=client_credentials",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert_oauth_error(twice, 400, "invalid_request", "more than once")


def test_client_keys_are_public_rs384_or_es384_keys(
    client: TestClient, service: Service, admin: dict[str, str]
) -> None:
    org = service.create_organisation("General Hospital")
    app, _ = create_api_app(service.db.conn, org.id, "backend", {Role.READER})
    smart = SmartClient("RS384")
    private = {"keys": [smart.key.as_dict(private=True)]}
    refused = client.put(f"/v1/admin/apps/{app.id}/jwks", json=private, headers=admin)
    assert refused.status_code == 400 and "private key material" in refused.json()["message"]
    assert client.get(f"/v1/admin/apps/{app.id}/jwks", headers=admin).status_code == 404

    first = client.put(f"/v1/admin/apps/{app.id}/jwks", json=smart.jwks(), headers=admin).json()
    assert first["jwks"]["keys"][0]["kid"] == smart.kid and "d" not in first["jwks"]["keys"][0]
    assert first["scopes"] == [READ_SCOPE]
    smart.client_id = first["clientId"]
    token = bearer(token_for(client, smart, READ_SCOPE))

    rotated = SmartClient("ES384")
    second = client.put(f"/v1/admin/apps/{app.id}/jwks", json=rotated.jwks(), headers=admin).json()
    assert second["clientId"] == first["clientId"]  # the client keeps its id through a rotation
    assert client.get("/v1/records", params={"digest": new_digest()}, headers=token).status_code == 401
    response = request_token(client, smart.token_form(smart.assertion(TOKEN_URL), READ_SCOPE))
    assert_oauth_error(response, 401, "invalid_client", "no registered key")
    rotated.client_id = first["clientId"]
    assert token_for(client, rotated, READ_SCOPE).startswith("clt_")
    assert client.get(f"/v1/admin/apps/{app.id}/jwks", headers=admin).json() == second


def test_apps_without_a_scoped_role_cannot_become_clients(
    client: TestClient, service: Service, admin: dict[str, str]
) -> None:
    org = service.create_organisation("General Hospital")
    app, _ = create_api_app(service.db.conn, org.id, "operator", {Role.ADMIN})
    response = client.put(f"/v1/admin/apps/{app.id}/jwks", json=SmartClient("ES384").jwks(), headers=admin)
    assert response.status_code == 400 and "no role a SMART scope stands for" in response.json()["message"]


def test_token_requests_are_rate_limited_per_client(
    client: TestClient, service: Service, admin: dict[str, str]
) -> None:
    smart, _ = register(client, service, admin, {Role.READER})
    client.app.state.token_limit = RateLimiter(1, 60.0, "client")  # type: ignore[attr-defined]
    assert request_token(client, smart.token_form(smart.assertion(TOKEN_URL), READ_SCOPE)).status_code == 200
    limited = request_token(client, smart.token_form(smart.assertion(TOKEN_URL), READ_SCOPE))
    assert limited.status_code == 429 and limited.json()["code"] == "rate_limited" and limited.headers["retry-after"]


def test_a_token_reads_the_fhir_facade_and_a_missing_one_gets_an_operation_outcome(
    client: TestClient, service: Service, admin: dict[str, str]
) -> None:
    """Bearer tokens work on ``/fhir/r4`` as on ``/v1`` (the facade authenticates through the same
    dependency): a registrar's token registers a record, then reads its Provenance and searches Consents."""
    smart, _ = register(client, service, admin, {Role.REGISTRAR})
    headers = bearer(token_for(client, smart, REGISTRAR_SCOPE))
    ack = client.post("/v1/records", json={"patient": PATIENT, "digest": new_digest()}, headers=headers)
    assert ack.status_code == 202, ack.text
    record_id = ack.json()["recordId"]
    anchored = client.get(f"/v1/records/{record_id}/receipt", params={"wait": "true", "timeout": 20}, headers=headers)
    assert anchored.status_code == 200, anchored.text
    provenance = client.get(f"/fhir/r4/Provenance/{record_id}", headers=headers)
    assert provenance.status_code == 200, provenance.text
    assert provenance.json()["resourceType"] == "Provenance"
    search = client.get("/fhir/r4/Consent", params={"patient": f"Patient/{PATIENT}"}, headers=headers)
    assert search.status_code == 200, search.text
    assert (search.json()["resourceType"], search.json()["type"]) == ("Bundle", "searchset")
    refused = client.get(f"/fhir/r4/Provenance/{record_id}", headers=bearer("clt_" + "A" * 43))
    assert refused.status_code == 401 and refused.json()["resourceType"] == "OperationOutcome", refused.text
    assert refused.headers["WWW-Authenticate"].startswith('Bearer error="invalid_token"')
