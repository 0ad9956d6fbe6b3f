"""Consent endpoints on the chain under test: domain, nonce, relayed grants, revocations and guardian
appointments, the consent list and the consent check, and every way a relay is refused."""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any, cast

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from fastapi.testclient import TestClient

from api.rate_limit import RateLimiter
from api.relay_budgets import OrganisationRelayLimits
from api.service import Service
from ledger.chain.contracts import Artifact
from ledger.consent.terms import ConsentKey, GrantTerms
from ledger.consent.typed_data import grant_typed_data, guardian_typed_data, revocation_typed_data, sign_typed_data
from ledger.store.apps import Role
from tests.api.conftest import MakeApp
from tests.support import paths
from tests.support.chain_under_test import travel_to as travel_chain_to
from tests.support.patient_sessions import own_consents

SCOPE = "Observation"
PURPOSE = "TREAT"
HOUR = 3600
DAY = 24 * HOUR
WALLET_ARTIFACT = paths.TEST_ARTIFACTS / "MockERC1271Wallet.json"


# --- helpers (also used by the access and audit tests) ------------------------------------------


def chain_time(service: Service) -> int:
    return service.ledger.chain.block_timestamp("latest")


def travel_to(service: Service, timestamp: int) -> None:
    """Make ``timestamp`` the chain's time (the newest block carries it)."""
    travel_chain_to(service.ledger.chain, timestamp)


def signed_grant(
    service: Service,
    patient: LocalAccount,
    grantee: str,
    scope: str = SCOPE,
    purpose: str = PURPOSE,
    *,
    valid_from: int | None = None,
    valid_until: int | None = None,
    deadline: int | None = None,
    signer: LocalAccount | None = None,
    signer_address: str | None = None,
) -> dict[str, Any]:
    """A grant request body signed by ``signer`` (default the patient) in the name of ``signer_address``
    (default its own; a contract wallet's owner signs for the wallet), valid from an hour ago for a day."""
    now = chain_time(service)
    consents = service.ledger.consents
    signer = signer or patient
    terms = GrantTerms(
        ConsentKey(patient.address, grantee, scope, purpose),
        now - HOUR if valid_from is None else valid_from,
        now + DAY if valid_until is None else valid_until,
    )
    deadline = now + HOUR if deadline is None else deadline
    named = signer_address or signer.address
    typed = grant_typed_data(consents.domain, terms, named, consents.nonce(patient.address), deadline)
    return {
        "patient": patient.address,
        "grantee": grantee,
        "scope": scope,
        "purpose": purpose,
        "validFrom": terms.valid_from,
        "validUntil": terms.valid_until,
        "signer": named,
        "deadline": deadline,
        "signature": "0x" + sign_typed_data(signer, typed).hex(),
    }


def signed_revocation(
    service: Service,
    patient: LocalAccount,
    grantee: str,
    scope: str = SCOPE,
    purpose: str = PURPOSE,
    *,
    signer: LocalAccount | None = None,
) -> dict[str, Any]:
    consents = service.ledger.consents
    signer = signer or patient
    deadline = chain_time(service) + HOUR
    typed = revocation_typed_data(
        consents.domain,
        ConsentKey(patient.address, grantee, scope, purpose),
        signer.address,
        consents.nonce(patient.address),
        deadline,
    )
    return {
        "patient": patient.address,
        "grantee": grantee,
        "scope": scope,
        "purpose": purpose,
        "signer": signer.address,
        "deadline": deadline,
        "signature": "0x" + sign_typed_data(signer, typed).hex(),
    }


def contract_wallet(service: Service) -> tuple[LocalAccount, str]:
    """An ERC-1271 wallet on chain (the test contract) and the key of its owner, who signs for it."""
    owner: LocalAccount = Account.create()
    service.ledger.chain.fund(owner.address, 10**18)
    data = json.loads(WALLET_ARTIFACT.read_text("utf-8"))
    artifact = Artifact(
        name=data["contractName"],
        abi=data["abi"],
        bytecode=data["bytecode"],
        deployed_bytecode=data["deployedBytecode"],
        metadata=data["metadata"],
    )
    return owner, str(service.ledger.chain.deploy(artifact, owner, owner.address)["contractAddress"])


def signed_guardian(service: Service, patient: LocalAccount, guardian: str, valid_until: int) -> dict[str, Any]:
    consents = service.ledger.consents
    deadline = chain_time(service) + HOUR
    typed = guardian_typed_data(
        consents.domain, patient.address, guardian, valid_until, consents.nonce(patient.address), deadline
    )
    return {
        "patient": patient.address,
        "guardian": guardian,
        "validUntil": valid_until,
        "deadline": deadline,
        "signature": "0x" + sign_typed_data(patient, typed).hex(),
    }


def relay(client: TestClient, headers: dict[str, str], path: str, body: dict[str, Any]) -> dict[str, Any]:
    response = client.post(f"/v1/consents/{path}", json=body, headers=headers)
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


def assert_error(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert body["code"] == code, body
    return body


# --- domain and nonce ----------------------------------------------------------------------------


def test_domain_and_nonce_are_what_wallets_sign_with(
    client: TestClient, service: Service, make_app: MakeApp, patient: LocalAccount
) -> None:
    headers, _ = make_app({Role.REGISTRAR})
    body = client.get("/v1/consents/domain", headers=headers).json()
    assert body["domain"] == service.ledger.consents.domain
    assert set(body["primaryTypes"]) == {
        "ConsentGrant",
        "ConsentRevocation",
        "ConsentGrantSet",
        "ConsentRevocationSet",
        "GuardianAppointment",
    }
    assert "EIP712Domain" in body["types"]
    assert client.get(f"/v1/patients/{patient.address}/nonce", headers=headers).json() == {
        "patient": patient.address,
        "nonce": 0,
    }
    assert_error(client.get("/v1/consents/domain"), 401, "unauthenticated")


# --- grant, list, check, revoke ------------------------------------------------------------------


def test_a_signed_grant_is_relayed_listed_checked_and_revoked(
    client: TestClient,
    service: Service,
    make_app: MakeApp,
    patient: LocalAccount,
) -> None:
    headers, org = make_app({Role.READER, Role.RELAYER})
    relayed = relay(client, headers, "grants", signed_grant(service, patient, org.address))
    assert relayed["action"] == "granted" and relayed["nonce"] == 1
    assert relayed["transactionHash"].startswith("0x") and relayed["blockNumber"] > 0

    listed = client.get(f"/v1/patients/{patient.address}/consents", headers=headers).json()  # indexed at once
    assert [
        (c["grantee"], c["granteeOrganisation"], c["scope"], c["purpose"], c["state"]) for c in listed["consents"]
    ] == [(org.address, org.name, SCOPE, PURPOSE, "active")]
    own = own_consents(client, service, patient)  # the history is the patient's own
    assert [h["event"] for h in own["history"]] == ["ConsentGranted"]
    assert own["history"][0]["transactionHash"] == relayed["transactionHash"]
    assert own["indexedToBlock"] >= relayed["blockNumber"]

    check = client.get(
        "/v1/consents/check", headers=headers, params={"patient": patient.address, "scope": SCOPE, "purpose": PURPOSE}
    ).json()
    assert check["permitted"] is True and check["reason"] is None and check["grantee"] == org.address
    assert check["states"] == {SCOPE: "active", "*": "none"}
    decided = check["decidedAt"]  # the block the answer was read at: anyone can ask a node for it
    assert decided["block"] >= relayed["blockNumber"] and decided["registry"] == service.ledger.consents.address
    block = service.ledger.chain.w3.eth.get_block(decided["block"])
    assert (
        decided["blockHash"] == "0x" + bytes(block["hash"]).hex()
        and decided["chainId"] == service.ledger.chain.chain_id
    )

    relay(client, headers, "revocations", signed_revocation(service, patient, org.address))
    listed = client.get(f"/v1/patients/{patient.address}/consents", headers=headers).json()
    assert [c["state"] for c in listed["consents"]] == ["revoked"]
    assert [h["event"] for h in own_consents(client, service, patient)["history"]] == [
        "ConsentGranted",
        "ConsentRevoked",
    ]
    check = client.get(
        "/v1/consents/check", headers=headers, params={"patient": patient.address, "scope": SCOPE, "purpose": PURPOSE}
    ).json()
    assert (check["permitted"], check["reason"]) == (False, "revoked")


def test_check_explains_expired_not_yet_valid_and_no_consent(
    client: TestClient,
    service: Service,
    make_app: MakeApp,
    patient: LocalAccount,
) -> None:
    headers, org = make_app({Role.READER, Role.RELAYER})
    now = chain_time(service)
    relay(client, headers, "grants", signed_grant(service, patient, org.address, valid_until=now + 100))
    relay(
        client,
        headers,
        "grants",
        signed_grant(service, patient, org.address, "Condition", valid_from=now + DAY, valid_until=now + 2 * DAY),
    )

    def reason(scope: str, grantee: str | None = None) -> str | None:
        params = {"patient": patient.address, "scope": scope, "purpose": PURPOSE}
        if grantee:
            params["grantee"] = grantee
        answer: dict[str, Any] = client.get("/v1/consents/check", headers=headers, params=params).json()
        return cast(str | None, answer["reason"])

    assert reason(SCOPE) is None
    assert reason("Condition") == "not_yet_valid"
    assert reason("Procedure") == "no_consent"
    admin, _ = make_app({Role.READER, Role.ADMIN}, organisation="Operator")
    params = {"patient": patient.address, "scope": SCOPE, "purpose": PURPOSE, "grantee": Account.create().address}
    assert client.get("/v1/consents/check", headers=admin, params=params).json()["reason"] == "no_consent"
    travel_to(service, now + 200)
    assert reason(SCOPE) == "expired"
    states = {
        c["scope"]: c["state"]
        for c in client.get(f"/v1/patients/{patient.address}/consents", headers=headers).json()["consents"]
    }
    assert states == {SCOPE: "expired", "Condition": "pending"}


def test_a_wildcard_grant_covers_every_scope(
    client: TestClient, service: Service, make_app: MakeApp, patient: LocalAccount
) -> None:
    headers, org = make_app({Role.READER, Role.RELAYER})
    relay(client, headers, "grants", signed_grant(service, patient, org.address, "*"))
    check = client.get(
        "/v1/consents/check",
        headers=headers,
        params={"patient": patient.address, "scope": "Immunization", "purpose": PURPOSE},
    ).json()
    assert check["permitted"] is True and check["states"] == {"Immunization": "none", "*": "active"}
    other_purpose = client.get(
        "/v1/consents/check",
        headers=headers,
        params={"patient": patient.address, "scope": "Immunization", "purpose": "HRESCH"},
    )
    assert other_purpose.json()["reason"] == "no_consent"


# --- guardians -----------------------------------------------------------------------------------


def test_a_guardian_appointed_by_signature_grants_for_the_patient_until_removed(
    client: TestClient,
    service: Service,
    make_app: MakeApp,
    patient: LocalAccount,
) -> None:
    headers, org = make_app({Role.READER, Role.RELAYER})
    guardian: LocalAccount = Account.create()
    until = chain_time(service) + DAY
    appointed = relay(client, headers, "guardians", signed_guardian(service, patient, guardian.address, until))
    assert appointed["action"] == "guardian_appointed"
    relay(client, headers, "grants", signed_grant(service, patient, org.address, signer=guardian))

    listed = own_consents(client, service, patient)
    assert listed["guardians"] == [{"guardian": guardian.address, "validUntil": until, "active": True}]
    assert listed["history"][-1]["fields"]["actor"] == guardian.address
    assert listed["consents"][0]["state"] == "active"

    removed = relay(client, headers, "guardians", signed_guardian(service, patient, guardian.address, 0))
    assert removed["action"] == "guardian_removed"
    refused = client.post(
        "/v1/consents/revocations",
        headers=headers,
        json=signed_revocation(service, patient, org.address, signer=guardian),
    )
    assert_error(refused, 403, "not_patient_or_guardian")
    listed = own_consents(client, service, patient)
    assert listed["guardians"] == [{"guardian": guardian.address, "validUntil": 0, "active": False}]
    assert [h["event"] for h in listed["history"]] == ["GuardianAppointed", "ConsentGranted", "GuardianRemoved"]


# --- refusals ------------------------------------------------------------------------------------


def test_relays_refused_locally_send_nothing(
    client: TestClient, service: Service, make_app: MakeApp, patient: LocalAccount
) -> None:
    headers, org = make_app({Role.REGISTRAR, Role.RELAYER})
    head = service.ledger.chain.block_number()
    stranger: LocalAccount = Account.create()

    forged = signed_grant(service, patient, org.address, signer=stranger) | {"signer": patient.address}
    assert_error(client.post("/v1/consents/grants", json=forged, headers=headers), 400, "invalid_signature")
    changed = signed_grant(service, patient, org.address) | {"scope": "Condition"}
    assert_error(client.post("/v1/consents/grants", json=changed, headers=headers), 400, "invalid_signature")
    short = signed_grant(service, patient, org.address) | {"signature": "0x" + "11" * 64}
    assert_error(client.post("/v1/consents/grants", json=short, headers=headers), 400, "invalid_signature")
    expired = signed_grant(service, patient, org.address, deadline=chain_time(service) - 1)
    assert_error(client.post("/v1/consents/grants", json=expired, headers=headers), 400, "signature_expired")
    unknown = signed_grant(service, patient, org.address) | {"purpose": "SHOPPING"}
    assert_error(client.post("/v1/consents/grants", json=unknown, headers=headers), 400, "invalid_code")
    bad_scope = signed_grant(service, patient, org.address) | {"scope": "has space"}
    assert_error(client.post("/v1/consents/grants", json=bad_scope, headers=headers), 400, "invalid_code")
    window = signed_grant(service, patient, org.address) | {"validUntil": 1}
    assert_error(client.post("/v1/consents/grants", json=window, headers=headers), 400, "invalid_input")

    assert service.ledger.chain.block_number() == head  # nothing was sent
    assert service.ledger.consents.nonce(patient.address) == 0


@pytest.mark.parametrize(
    "change",
    [
        {"patient": "0x1234"},
        {"grantee": "not an address"},
        {"signature": "0xzz"},
        {"deadline": -1},
        {"validUntil": 2**64},
        {"extra": 1},
    ],
)
def test_malformed_relays_are_422(
    client: TestClient, service: Service, make_app: MakeApp, patient: LocalAccount, change: dict[str, Any]
) -> None:
    headers, org = make_app({Role.READER, Role.RELAYER})
    body = signed_grant(service, patient, org.address) | change
    assert_error(client.post("/v1/consents/grants", json=body, headers=headers), 422, "invalid_request")


def test_reads_validate_and_the_check_needs_the_reader_role(
    client: TestClient,
    make_app: MakeApp,
    patient: LocalAccount,
) -> None:
    headers, _ = make_app({Role.ADMIN})
    params = {"patient": patient.address, "scope": SCOPE, "purpose": PURPOSE}
    assert_error(client.get("/v1/consents/check", headers=headers, params=params), 403, "forbidden")
    reader, _ = make_app({Role.READER, Role.RELAYER})
    assert_error(
        client.get("/v1/consents/check", headers=reader, params=params | {"purpose": "NOPE"}), 400, "invalid_code"
    )
    assert_error(
        client.get("/v1/consents/check", headers=reader, params=params | {"patient": "0x12"}), 422, "invalid_request"
    )
    assert_error(client.get("/v1/patients/0x12/consents", headers=reader), 422, "invalid_request")
    assert_error(client.get("/v1/patients/0x12/nonce", headers=reader), 422, "invalid_request")
    empty = client.get(f"/v1/patients/{patient.address}/consents", headers=reader).json()
    assert empty == {"patient": patient.address, "grantee": empty["grantee"], "consents": []}


def test_an_organisation_reads_only_consents_given_to_itself(
    client: TestClient, service: Service, make_app: MakeApp, patient: LocalAccount
) -> None:
    """Consent BOLA: another organisation's key (even an emergency-only one) neither lists the
    consents a patient gave to someone else nor asks about them; guardians and history are the
    patient's own."""
    hospital, org = make_app({Role.READER, Role.RELAYER})
    relay(client, hospital, "grants", signed_grant(service, patient, org.address))
    other, _ = make_app({Role.READER}, organisation="Other Clinic")
    listed = client.get(f"/v1/patients/{patient.address}/consents", headers=other).json()
    assert listed["consents"] == [] and "history" not in listed and "guardians" not in listed
    params = {"patient": patient.address, "scope": SCOPE, "purpose": PURPOSE, "grantee": org.address}
    assert_error(client.get("/v1/consents/check", headers=other, params=params), 403, "forbidden")
    assert_error(
        client.get(f"/v1/patients/{patient.address}/consents", headers=other, params={"grantee": org.address}),
        403,
        "forbidden",
    )
    emergency_only, _ = make_app({Role.EMERGENCY}, organisation="Ambulance", emergency=True)
    assert_error(client.get(f"/v1/patients/{patient.address}/consents", headers=emergency_only), 403, "forbidden")
    own = client.get(f"/v1/patients/{patient.address}/consents", headers=hospital).json()
    assert [(c["grantee"], c["state"]) for c in own["consents"]] == [(org.address, "active")]


def test_a_contract_wallet_signature_is_checked_by_the_chain(
    client: TestClient,
    service: Service,
    make_app: MakeApp,
) -> None:
    headers, org = make_app({Role.READER, Role.RELAYER})
    owner, wallet = contract_wallet(service)
    as_wallet = SimpleNamespace(address=wallet)  # the patient is the wallet; its owner signs

    forged = signed_grant(
        service, cast(LocalAccount, as_wallet), org.address, signer=Account.create(), signer_address=wallet
    )
    assert_error(client.post("/v1/consents/grants", json=forged, headers=headers), 400, "invalid_signature")
    body = signed_grant(service, cast(LocalAccount, as_wallet), org.address, signer=owner, signer_address=wallet)
    assert relay(client, headers, "grants", body)["nonce"] == 1


def test_organisation_relays_need_the_relayer_role_and_are_budgeted(
    client: TestClient, service: Service, make_app: MakeApp, patient: LocalAccount
) -> None:
    """The relayer pays for every relayed change: an app without the relayer role relays nothing,
    and each app (and all of them together) has a budget, so self-made patient keys cannot drain
    the relayer's gas."""
    reader, org = make_app({Role.READER})
    assert_error(
        client.post("/v1/consents/grants", json=signed_grant(service, patient, org.address), headers=reader),
        403,
        "forbidden",
    )
    client.app.state.organisation_relay_limits = OrganisationRelayLimits(  # type: ignore[attr-defined]
        RateLimiter(2, 600, "app"), RateLimiter(3, 600, "relayer")
    )
    first, _ = make_app({Role.RELAYER}, organisation="First Clinic")
    second, _ = make_app({Role.RELAYER}, organisation="Second Clinic")
    for _ in range(2):
        relay(client, first, "grants", signed_grant(service, Account.create(), org.address))
    assert_error(
        client.post("/v1/consents/grants", json=signed_grant(service, Account.create(), org.address), headers=first),
        429,
        "rate_limited",
    )
    relay(client, second, "grants", signed_grant(service, Account.create(), org.address))  # the 3rd overall
    assert_error(
        client.post("/v1/consents/grants", json=signed_grant(service, Account.create(), org.address), headers=second),
        429,
        "rate_limited",
    )
