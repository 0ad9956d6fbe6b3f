"""Patient endpoints: public choices, sign-in with a signed PatientSession, reads scoped to the
signed-in patient, relays without an API key, and the relayer's rate limits."""

from __future__ import annotations

import time
from types import SimpleNamespace
from typing import Any, cast

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from fastapi.testclient import TestClient

from api.patient_auth import SessionTokens
from api.rate_limit import RateLimiter
from api.relay_budgets import RelayLimits
from api.service import Service
from ledger.consent.patient_session import PatientSession, session_domain, session_typed_data
from ledger.consent.typed_data import sign_typed_data
from ledger.exceptions import ChainUnavailableError, RateLimitedError
from ledger.store.apps import Role
from tests.api.conftest import MakeApp
from tests.api.test_consent_api import (
    PURPOSE,
    SCOPE,
    assert_error,
    contract_wallet,
    signed_grant,
    signed_guardian,
    signed_revocation,
)
from tests.support.patient_sessions import session_body, sign_in


def relay(client: TestClient, path: str, body: dict[str, Any]) -> dict[str, Any]:
    response = client.post(f"/v1/patient/{path}", json=body)  # no API key
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


# --- public --------------------------------------------------------------------------------------


def test_choices_domains_and_nonce_are_public(
    client: TestClient, service: Service, make_app: MakeApp, patient: LocalAccount
) -> None:
    _, org = make_app({Role.READER})
    organisations = client.get("/v1/patient/organisations").json()["organisations"]
    assert {"name": org.name, "address": org.address} in organisations
    assert {"code": "TREAT", "label": "treatment"} in client.get("/v1/patient/purposes").json()["codes"]
    assert client.get("/v1/patient/scopes").json()["codes"][0]["code"] == "*"
    signing = client.get("/v1/patient/signing").json()
    assert signing["consent"]["domain"] == service.ledger.consents.domain
    assert signing["session"]["domain"] == {
        "name": "CareLedger Patient Session",
        "version": "2",
        "chainId": service.ledger.chain.chain_id,
        "verifyingContract": service.ledger.consents.address,  # this deployment, not just this chain
    }
    assert set(signing["session"]["types"]) == {"EIP712Domain", "PatientSession"}
    assert client.get(f"/v1/patient/{patient.address}/nonce").json() == {"patient": patient.address, "nonce": 0}


# --- sign-in -------------------------------------------------------------------------------------


def test_a_session_reads_only_its_own_patient(
    client: TestClient, service: Service, make_app: MakeApp, patient: LocalAccount
) -> None:
    headers, org = make_app({Role.READER})
    relay(client, "grants", signed_grant(service, patient, org.address))
    token = sign_in(client, service, patient)

    listed = client.get(f"/v1/patient/{patient.address}/consents", headers=token).json()
    assert [(c["granteeOrganisation"], c["state"]) for c in listed["consents"]] == [(org.name, "active")]
    assert client.get(f"/v1/patient/{patient.address.lower()}/accesses", headers=token).json() == {
        "entries": [],
        "nextAfter": None,
    }

    other: LocalAccount = Account.create()
    assert_error(client.get(f"/v1/patient/{other.address}/consents", headers=token), 403, "forbidden")
    assert_error(client.get(f"/v1/patient/{other.address}/accesses", headers=token), 403, "forbidden")
    assert_error(client.get(f"/v1/patient/{patient.address}/consents"), 401, "unauthenticated")
    assert_error(client.get(f"/v1/patient/{patient.address}/consents", headers=headers), 401, "unauthenticated")
    forged = token["Authorization"][:-2] + ("AA" if not token["Authorization"].endswith("AA") else "BB")
    assert_error(
        client.get(f"/v1/patient/{patient.address}/consents", headers={"Authorization": forged}), 401, "unauthenticated"
    )


def test_an_expired_token_is_refused(client: TestClient, service: Service, patient: LocalAccount) -> None:
    sign_in(client, service, patient)  # makes the issuer
    tokens: SessionTokens = client.app.state.patient_tokens  # type: ignore[attr-defined]
    now = int(time.time())
    stale = tokens.issue(patient.address, now - 120, now - 60)
    response = client.get(f"/v1/patient/{patient.address}/consents", headers={"Authorization": f"Bearer {stale}"})
    assert "expired" in assert_error(response, 401, "unauthenticated")["message"]


def test_sign_in_is_refused_for_bad_sessions(client: TestClient, service: Service, patient: LocalAccount) -> None:
    stranger: LocalAccount = Account.create()
    now = int(time.time())
    cases = [
        (session_body(client, service, stranger, patient.address), 400, "invalid_signature"),
        (session_body(client, service, patient, issued_at=now - 600), 400, "signature_expired"),
        (session_body(client, service, patient, issued_at=now + 600), 400, "signature_expired"),
        (session_body(client, service, patient, lasts=3601), 400, "invalid_input"),
        (session_body(client, service, patient, lasts=0), 400, "invalid_input"),
        (session_body(client, service, patient, issued_at=now - 290, lasts=280), 400, "signature_expired"),
        (session_body(client, service, patient) | {"expiresAt": now + 900}, 400, "invalid_signature"),
        (session_body(client, service, patient) | {"signature": "0x1234"}, 400, "invalid_signature"),
        (session_body(client, service, patient) | {"patient": "0x12"}, 422, "invalid_request"),
    ]
    for body, status, code in cases:
        assert_error(client.post("/v1/patient/sessions", json=body), status, code)


def test_a_sign_in_cannot_be_replayed_here_or_elsewhere(
    client: TestClient, service: Service, patient: LocalAccount
) -> None:
    """A signed sign-in is good once, at this service, for this deployment: replaying it (by a
    phishing page or another instance on the same chain) gets nothing."""
    body = session_body(client, service, patient)
    assert client.post("/v1/patient/sessions", json=body).status_code == 200
    assert_error(client.post("/v1/patient/sessions", json=body), 400, "invalid_challenge")  # used up

    elsewhere = session_body(client, service, patient, origin="https://phishing.example")
    assert_error(client.post("/v1/patient/sessions", json=elsewhere), 400, "wrong_origin")

    other_deployment = session_body(client, service, patient)
    challenge = PatientSession(
        patient.address,
        other_deployment["origin"],
        bytes.fromhex(other_deployment["challenge"][2:]),
        other_deployment["issuedAt"],
        other_deployment["expiresAt"],
    )
    foreign_domain = session_domain(service.ledger.chain.chain_id, Account.create().address)
    signed_elsewhere = "0x" + sign_typed_data(patient, session_typed_data(foreign_domain, challenge)).hex()
    assert_error(
        client.post("/v1/patient/sessions", json=other_deployment | {"signature": signed_elsewhere}),
        400,
        "invalid_signature",
    )

    stranger: LocalAccount = Account.create()
    theirs = session_body(client, service, stranger)  # a challenge issued to someone else
    mine = session_body(client, service, patient)
    swapped = PatientSession(
        patient.address, mine["origin"], bytes.fromhex(theirs["challenge"][2:]), mine["issuedAt"], mine["expiresAt"]
    )
    domain = session_domain(service.ledger.chain.chain_id, service.ledger.consents.address)
    body = mine | {
        "challenge": theirs["challenge"],
        "signature": "0x" + sign_typed_data(patient, session_typed_data(domain, swapped)).hex(),
    }
    assert_error(client.post("/v1/patient/sessions", json=body), 400, "invalid_challenge")


# --- relays --------------------------------------------------------------------------------------


def test_relays_need_no_api_key_and_the_patient_sees_every_organisations_accesses(
    client: TestClient,
    service: Service,
    make_app: MakeApp,
    patient: LocalAccount,
) -> None:
    hospital, org = make_app({Role.READER})
    clinic, _ = make_app({Role.READER}, organisation="Clinic")
    granted = relay(client, "grants", signed_grant(service, patient, org.address))
    assert (granted["action"], granted["nonce"]) == ("granted", 1)
    access = {"patient": patient.address, "scope": SCOPE, "purpose": PURPOSE}
    assert client.post("/v1/access", json=access, headers=hospital).status_code == 200
    assert client.post("/v1/access", json=access, headers=clinic).status_code == 403
    relay(client, "revocations", signed_revocation(service, patient, org.address))
    guardian = Account.create().address
    assert (
        relay(client, "guardians", signed_guardian(service, patient, guardian, 2**40))["action"] == "guardian_appointed"
    )

    token = sign_in(client, service, patient)
    listed = client.get(f"/v1/patient/{patient.address}/consents", headers=token).json()
    assert [c["state"] for c in listed["consents"]] == ["revoked"]
    assert [g["guardian"] for g in listed["guardians"]] == [guardian]
    entries = client.get(f"/v1/patient/{patient.address}/accesses", headers=token).json()["entries"]
    assert [(e["organisation"]["name"], e["decision"]) for e in entries] == [
        ("General Hospital", "allowed"),
        ("Clinic", "denied"),
    ]

    stranger = signed_grant(service, patient, org.address, signer=Account.create())  # signs as itself
    assert_error(client.post("/v1/patient/grants", json=stranger), 403, "not_patient_or_guardian")


def test_relays_are_rate_limited_per_patient_and_per_client(
    client: TestClient,
    service: Service,
    make_app: MakeApp,
    patient: LocalAccount,
) -> None:
    _, org = make_app({Role.READER})
    client.app.state.patient_relay_limits = RelayLimits(  # type: ignore[attr-defined]
        RateLimiter(5, 600, "client"), RateLimiter(1, 600, "patient"), RateLimiter(1, 600, "patient's revocations")
    )
    forged = signed_grant(service, patient, org.address, signer=Account.create()) | {"signer": patient.address}
    assert_error(client.post("/v1/patient/grants", json=forged), 400, "invalid_signature")  # costs no patient budget
    relay(client, "grants", signed_grant(service, patient, org.address))
    head = service.ledger.chain.block_number()
    limited = client.post("/v1/patient/grants", json=signed_grant(service, patient, org.address, "Condition"))
    body = assert_error(limited, 429, "rate_limited")
    assert int(limited.headers["Retry-After"]) == body["details"]["retry_after"] > 0
    assert service.ledger.chain.block_number() == head  # nothing was sent

    relay(client, "revocations", signed_revocation(service, patient, org.address))  # its own budget: still open
    again = signed_revocation(service, patient, org.address, "Condition")
    assert_error(client.post("/v1/patient/revocations", json=again), 429, "rate_limited")

    other: LocalAccount = Account.create()
    assert_error(client.post("/v1/patient/grants", json=signed_grant(service, other, org.address)), 429, "rate_limited")


def test_nobody_else_spends_a_patients_budget_and_withdrawal_stays_open(
    client: TestClient, service: Service, make_app: MakeApp, patient: LocalAccount
) -> None:
    """Junk signed as if by a contract wallet (any contract named as ``signer``), or by a stranger
    named as ``signer``, is refused before it is charged to the patient: the patient's own
    revocation still goes through when the attacker has tried many times."""
    _, org = make_app({Role.READER})
    client.app.state.patient_relay_limits = RelayLimits(  # type: ignore[attr-defined]
        RateLimiter(100, 600, "client"), RateLimiter(2, 600, "patient"), RateLimiter(2, 600, "patient's revocations")
    )
    relay(client, "grants", signed_grant(service, patient, org.address))
    contract = service.ledger.consents.address  # has code: a "contract wallet" signer
    stranger: LocalAccount = Account.create()
    for _ in range(5):
        as_contract = signed_revocation(service, patient, org.address, signer=stranger) | {"signer": contract}
        assert_error(client.post("/v1/patient/revocations", json=as_contract), 403, "not_patient_or_guardian")
        as_stranger = signed_revocation(service, patient, org.address, signer=stranger)
        assert_error(client.post("/v1/patient/revocations", json=as_stranger), 403, "not_patient_or_guardian")
    assert relay(client, "revocations", signed_revocation(service, patient, org.address))["action"] == "revoked"


def test_a_contract_wallets_junk_signature_is_refused_before_its_budget_is_charged(
    client: TestClient, service: Service, make_app: MakeApp
) -> None:
    """ERC-1271 signatures are checked through ``eth_call`` before the relay is admitted: junk in a
    wallet's name costs the wallet's budget nothing."""
    _, org = make_app({Role.READER})
    client.app.state.patient_relay_limits = RelayLimits(  # type: ignore[attr-defined]
        RateLimiter(100, 600, "client"), RateLimiter(1, 600, "patient"), RateLimiter(1, 600, "patient's revocations")
    )
    owner, wallet = contract_wallet(service)
    as_wallet = cast(LocalAccount, SimpleNamespace(address=wallet))
    for _ in range(3):
        junk = signed_grant(service, as_wallet, org.address, signer=Account.create(), signer_address=wallet)
        assert_error(client.post("/v1/patient/grants", json=junk), 400, "invalid_signature")
    real = signed_grant(service, as_wallet, org.address, signer=owner, signer_address=wallet)
    assert relay(client, "grants", real)["action"] == "granted"


def test_a_rate_limiter_refills_over_its_window() -> None:
    limiter = RateLimiter(2, 10, "client")
    limiter.take("a", now=0)
    limiter.take("a", now=0)
    with pytest.raises(RateLimitedError) as refused:
        limiter.take("a", now=1)
    assert refused.value.details["retry_after"] == 4
    limiter.take("b", now=1)
    limiter.take("a", now=5)


def test_a_full_rate_limiter_forgets_full_buckets_first_and_then_the_stalest() -> None:
    """At ``max_keys``, a new key first drops buckets that have refilled (forgetting them loses
    nothing), and only when every bucket is in use the stalest half; what a key has spent is seen
    in whether its next request is refused."""
    limiter = RateLimiter(2, 8, "client", max_keys=2)  # refills 0.25 per second
    limiter.take("busy", now=4)
    limiter.take("busy", now=4)  # empty; 1.5 tokens back by t=10
    limiter.take("idle", now=5)  # one spent; full again (2) by t=9
    limiter.take("new", now=10)  # over max_keys: "idle" (full) is dropped, "busy" is kept
    limiter.take("busy", now=10)
    with pytest.raises(RateLimitedError):
        limiter.take("busy", now=10)  # its spending was remembered: it was not the one dropped

    stalest = RateLimiter(1, 8, "client", max_keys=2)
    stalest.take("x", now=0)
    stalest.take("y", now=1)
    stalest.take("z", now=2)  # all in use: the stalest half ("x") is forgotten
    with pytest.raises(RateLimitedError):
        stalest.take("y", now=2)  # kept, and still empty
    stalest.take("x", now=2)  # forgotten: a fresh bucket (remembered, it would have had 0.5 tokens)


def test_an_unreachable_chain_is_a_503(
    client: TestClient, service: Service, patient: LocalAccount, monkeypatch: pytest.MonkeyPatch
) -> None:
    def down(_: str) -> int:
        raise ChainUnavailableError("the chain node cannot be reached")

    monkeypatch.setattr(service.ledger.consents, "nonce", down)
    response = client.get(f"/v1/patient/{patient.address}/nonce")
    assert_error(response, 503, "chain_unavailable")
    assert response.headers["Retry-After"]


# --- the page ------------------------------------------------------------------------------------


def test_the_page_is_served_with_a_policy_against_remote_scripts(client: TestClient) -> None:
    assert client.get("/patient", follow_redirects=False).headers["location"] == "/patient/"
    page = client.get("/patient/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    policy = page.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "default-src 'none'" in policy and "connect-src 'self'" in policy
    assert "http" not in page.text.lower().replace("http-equiv", "")
    for name in ("app.js", "style.css", "vendor/ethers.js"):
        served = client.get(f"/patient/{name}")
        assert served.status_code == 200, name
        assert served.headers["content-security-policy"] == policy
    assert served.text.count("export{") >= 1  # ethers' ES module, the vendored copy
    assert_error(client.get("/patient/nothing.js"), 404, "not_found")
    assert_error(client.get("/patient/..%2Fmain.py"), 404, "not_found")
    assert_error(client.get("/patient/%2E%2E%2Fstatic%2Fpatient%2Findex.html"), 404, "not_found")
