"""Tests for ConsentRegistry (through ConsentRegistryClient): consent, guardians, break-glass,
relayed EIP-712 signatures and the attacks on them, ERC-1271 wallets and digest parity.

Every revert is asserted by custom-error name and arguments, and every rejected call is checked to
have left the chain as it was: nothing mined (so no event), consent, nonce and permission unchanged.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_keys.datatypes import Signature
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from web3 import Web3
from web3.types import TxReceipt

from ledger.chain.contracts import CONSENT_REGISTRY, Artifact, load_artifact
from ledger.consent.codes import ALL_DATA, EMERGENCY_PURPOSES, PURPOSES_OF_USE
from ledger.consent.registry import ConsentRegistryClient
from ledger.consent.terms import UINT64_MAX, ConsentKey, ConsentState, GrantTerms
from ledger.consent.typed_data import (
    grant_typed_data,
    guardian_typed_data,
    recover_signer,
    revocation_typed_data,
    sign_typed_data,
    typed_data_digest,
)
from ledger.exceptions import (
    InputError,
    InvalidSignatureError,
    TransactionFailedError,
)
from ledger.runtime import Ledger
from ledger.values import encode_code
from tests.support import paths
from tests.support.chain_events import address_topic, reverts, single_event, topics_of
from tests.support.chain_under_test import travel_to as travel_chain_to

NewAccount = Callable[[], LocalAccount]

SCOPE = "Observation"
PURPOSE = "TREAT"
REASON = "UNCONSCIOUS"
EMERGENCY = "ETREAT"
HOUR = 3600
DAY = 24 * HOUR
ZERO32 = bytes(32)
ZERO_ADDRESS = "0x" + "00" * 20
SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
GRANTED, REVOKED = 1, 2
EMERGENCY_ROLE = Web3.keccak(text="EMERGENCY_ROLE")
WALLET_ARTIFACT = paths.TEST_ARTIFACTS / "MockERC1271Wallet.json"


# --- helpers ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Signed:
    """A relayable signature: who it names as signer, until when it holds, and its bytes."""

    signer: str
    deadline: int
    signature: bytes


def latest_time(ledger: Ledger) -> int:
    """The timestamp of the newest block."""
    return ledger.chain.block_timestamp("latest")


def travel_to(ledger: Ledger, timestamp: int) -> None:
    """Make ``timestamp`` the time of the newest block; the next mined block carries it too."""
    travel_chain_to(ledger.chain, timestamp)


def make_terms(
    ledger: Ledger,
    patient: str,
    grantee: str,
    scope: str = SCOPE,
    purpose: str = PURPOSE,
    *,
    valid_from: int | None = None,
    valid_until: int | None = None,
) -> GrantTerms:
    """Terms valid from an hour ago for a day, unless told otherwise."""
    now = latest_time(ledger)
    return GrantTerms(
        ConsentKey(patient, grantee, scope, purpose),
        now - HOUR if valid_from is None else valid_from,
        now + DAY if valid_until is None else valid_until,
    )


def sign_grant(
    ledger: Ledger,
    terms: GrantTerms,
    key: LocalAccount,
    *,
    signer: str | None = None,
    nonce: int | None = None,
    deadline: int | None = None,
    domain: dict[str, Any] | None = None,
) -> Signed:
    """``key`` signs ``ConsentGrant`` for ``terms`` (by default as itself, current nonce)."""
    signer = key.address if signer is None else signer
    nonce = ledger.consents.nonce(terms.key.patient) if nonce is None else nonce
    deadline = latest_time(ledger) + HOUR if deadline is None else deadline
    typed = grant_typed_data(domain or ledger.consents.domain, terms, signer, nonce, deadline)
    return Signed(signer, deadline, sign_typed_data(key, typed))


def sign_revocation(
    ledger: Ledger,
    consent: ConsentKey,
    key: LocalAccount,
    *,
    signer: str | None = None,
    nonce: int | None = None,
    deadline: int | None = None,
) -> Signed:
    """``key`` signs ``ConsentRevocation`` for ``consent`` (by default as itself, current nonce)."""
    signer = key.address if signer is None else signer
    nonce = ledger.consents.nonce(consent.patient) if nonce is None else nonce
    deadline = latest_time(ledger) + HOUR if deadline is None else deadline
    typed = revocation_typed_data(ledger.consents.domain, consent, signer, nonce, deadline)
    return Signed(signer, deadline, sign_typed_data(key, typed))


def sign_guardian(ledger: Ledger, patient: str, guardian: str, valid_until: int, key: LocalAccount) -> Signed:
    """``key`` signs ``GuardianAppointment`` for ``patient`` with the patient's current nonce."""
    deadline = latest_time(ledger) + HOUR
    typed = guardian_typed_data(
        ledger.consents.domain, patient, guardian, valid_until, ledger.consents.nonce(patient), deadline
    )
    return Signed(patient, deadline, sign_typed_data(key, typed))


def relay_grant(ledger: Ledger, terms: GrantTerms, signed: Signed) -> TxReceipt:
    """The relayer submits a signed grant."""
    return ledger.consents.grant_by_signature(terms, signed.signer, signed.deadline, signed.signature, ledger.relayer)


def relay_revoke(ledger: Ledger, consent: ConsentKey, signed: Signed) -> TxReceipt:
    """The relayer submits a signed revocation."""
    return ledger.consents.revoke_by_signature(
        consent, signed.signer, signed.deadline, signed.signature, ledger.relayer
    )


def relay_guardian(ledger: Ledger, guardian: str, valid_until: int, signed: Signed) -> TxReceipt:
    """The relayer submits a signed guardian appointment (``valid_until`` 0 removes)."""
    return ledger.consents.set_guardian_by_signature(
        signed.signer, guardian, valid_until, signed.deadline, signed.signature, ledger.relayer
    )


def high_s(signature: bytes) -> bytes:
    """The malleable twin of a low-s signature: ``s' = n - s`` and ``v`` flipped 27 <-> 28."""
    s = int.from_bytes(signature[32:64], "big")
    return signature[:32] + (SECP256K1_N - s).to_bytes(32, "big") + bytes([55 - signature[64]])


def snapshot(ledger: Ledger, consent: ConsentKey) -> tuple[Any, ...]:
    """What a rejected call must leave alone: the stored consent, the nonce, the permission."""
    stored = ledger.chain.call(ledger.consents.contract.functions.consentOf(*consent.as_revoke_request()))
    return (
        tuple(stored),
        ledger.consents.nonce(consent.patient),
        ledger.consents.is_permitted(consent.patient, consent.grantee, consent.scope, consent.purpose),
    )


def stored_consent(ledger: Ledger, consent: ConsentKey) -> tuple[int, int, int, int]:
    """The raw ``consentOf``: (validFrom, validUntil, updatedAt, status)."""
    fn = ledger.consents.contract.functions.consentOf(*consent.as_revoke_request())
    valid_from, valid_until, updated_at, status = ledger.chain.call(fn)
    return valid_from, valid_until, updated_at, status


def permitted(ledger: Ledger, consent: ConsentKey) -> bool:
    """The contract's ``isPermitted`` for a consent key."""
    return ledger.consents.is_permitted(consent.patient, consent.grantee, consent.scope, consent.purpose)


def granted_event(terms: GrantTerms, actor: str) -> dict[str, Any]:
    """The ``ConsentGranted`` arguments a grant of ``terms`` by ``actor`` must emit."""
    return {**revoked_event(terms.key, actor), "validFrom": terms.valid_from, "validUntil": terms.valid_until}


def revoked_event(consent: ConsentKey, actor: str) -> dict[str, Any]:
    """The ``ConsentRevoked`` arguments a revocation of ``consent`` by ``actor`` must emit."""
    return {
        "patient": consent.patient,
        "grantee": consent.grantee,
        "scope": encode_code(consent.scope),
        "purpose": encode_code(consent.purpose),
        "actor": actor,
    }


def assert_granted(ledger: Ledger, receipt: TxReceipt, terms: GrantTerms, actor: str) -> None:
    """``receipt`` holds exactly the grant of ``terms`` by ``actor``, and the consent is stored."""
    event = single_event(ledger.consents.contract.events.ConsentGranted(), receipt)
    assert event == granted_event(terms, actor)
    key = terms.key
    assert topics_of(receipt) == [address_topic(key.patient), address_topic(key.grantee), encode_code(key.scope)]
    block_time = ledger.chain.block_timestamp(receipt["blockNumber"])
    assert stored_consent(ledger, key) == (terms.valid_from, terms.valid_until, block_time, GRANTED)


def assert_revoked(ledger: Ledger, receipt: TxReceipt, terms: GrantTerms, actor: str) -> None:
    """``receipt`` holds exactly the revocation of ``terms.key`` by ``actor``; the window stays."""
    event = single_event(ledger.consents.contract.events.ConsentRevoked(), receipt)
    assert event == revoked_event(terms.key, actor)
    key = terms.key
    assert topics_of(receipt) == [address_topic(key.patient), address_topic(key.grantee), encode_code(key.scope)]
    block_time = ledger.chain.block_timestamp(receipt["blockNumber"])
    assert stored_consent(ledger, key) == (terms.valid_from, terms.valid_until, block_time, REVOKED)


def raw_grant(ledger: Ledger, request: tuple[Any, ...], sender: LocalAccount) -> TxReceipt:
    """Send ``grant`` with a raw request tuple, bypassing the client's validation."""
    return ledger.chain.transact(ledger.consents.contract.functions.grant(request), sender)


# --- direct grant and revoke -----------------------------------------------------------------


def test_patient_grants_and_revokes_directly(ledger: Ledger, new_account: NewAccount) -> None:
    patient, grantee = new_account(), new_account()
    terms = make_terms(ledger, patient.address, grantee.address)
    key = terms.key
    assert stored_consent(ledger, key) == (0, 0, 0, 0)
    assert not permitted(ledger, key)

    assert_granted(ledger, ledger.consents.grant(terms, patient), terms, patient.address)
    assert permitted(ledger, key)
    assert ledger.consents.consent_of(key).state is ConsentState.ACTIVE
    # Only that grantee, scope and purpose.
    assert not ledger.consents.is_permitted(patient.address, patient.address, SCOPE, PURPOSE)
    assert not ledger.consents.is_permitted(patient.address, grantee.address, "Condition", PURPOSE)
    assert not ledger.consents.is_permitted(patient.address, grantee.address, SCOPE, "HRESCH")
    assert not ledger.consents.is_permitted(patient.address, grantee.address, ALL_DATA, PURPOSE)

    assert_revoked(ledger, ledger.consents.revoke(key, patient), terms, patient.address)
    assert not permitted(ledger, key)
    assert ledger.consents.consent_of(key).state is ConsentState.REVOKED
    assert ledger.consents.nonce(patient.address) == 0  # direct calls use no signature nonce

    # A new grant replaces the revoked state.
    assert_granted(ledger, ledger.consents.grant(terms, patient), terms, patient.address)
    assert permitted(ledger, key)


def test_a_stranger_cannot_grant_or_revoke_for_a_patient(ledger: Ledger, new_account: NewAccount) -> None:
    patient, grantee, stranger = new_account(), new_account(), new_account()
    terms = make_terms(ledger, patient.address, grantee.address)
    ledger.consents.grant(terms, patient)
    before = snapshot(ledger, terms.key)

    with reverts(ledger, "ConsentRegistryUnauthorizedActor", patient=patient.address, actor=stranger.address):
        ledger.consents.grant(replace(terms, valid_until=terms.valid_until + DAY), stranger)
    with reverts(ledger, "ConsentRegistryUnauthorizedActor", patient=patient.address, actor=stranger.address):
        ledger.consents.revoke(terms.key, stranger)
    assert snapshot(ledger, terms.key) == before


def test_wildcard_scope_permits_every_scope_for_its_purpose_only(ledger: Ledger, new_account: NewAccount) -> None:
    patient, grantee, other = new_account(), new_account(), new_account()
    assert bytes(ledger.chain.call(ledger.consents.contract.functions.ALL_DATA())) == encode_code(ALL_DATA)
    terms = make_terms(ledger, patient.address, grantee.address, ALL_DATA, PURPOSE)
    ledger.consents.grant(terms, patient)

    for scope in (SCOPE, "Condition", "MedicationRequest", ALL_DATA):
        assert ledger.consents.is_permitted(patient.address, grantee.address, scope, PURPOSE)
    for purpose in ("HRESCH", "HPAYMT", "ETREAT"):
        assert not ledger.consents.is_permitted(patient.address, grantee.address, SCOPE, purpose)
    assert not ledger.consents.is_permitted(patient.address, other.address, SCOPE, PURPOSE)

    # The wildcard is one consent: revoking it withdraws every scope.
    ledger.consents.revoke(terms.key, patient)
    assert not ledger.consents.is_permitted(patient.address, grantee.address, SCOPE, PURPOSE)


def test_validity_window_not_yet_valid_then_valid_then_expired(ledger: Ledger, new_account: NewAccount) -> None:
    patient, grantee = new_account(), new_account()
    now = latest_time(ledger)
    terms = make_terms(ledger, patient.address, grantee.address, valid_from=now + HOUR, valid_until=now + 2 * HOUR)
    key = terms.key
    ledger.consents.grant(terms, patient)
    assert not permitted(ledger, key)
    assert ledger.consents.consent_of(key).state is ConsentState.PENDING

    travel_to(ledger, terms.valid_from - 1)
    assert not permitted(ledger, key)
    travel_to(ledger, terms.valid_from)  # validFrom is inclusive
    assert permitted(ledger, key)
    assert ledger.consents.consent_of(key).state is ConsentState.ACTIVE
    travel_to(ledger, terms.valid_until - 1)
    assert permitted(ledger, key)
    travel_to(ledger, terms.valid_until)  # validUntil is exclusive
    assert not permitted(ledger, key)
    assert ledger.consents.consent_of(key).state is ConsentState.EXPIRED
    assert stored_consent(ledger, key)[3] == GRANTED  # expiry is read, never written


@pytest.mark.parametrize(
    ("from_offset", "until_offset"),
    [
        pytest.param(HOUR, HOUR, id="empty window"),
        pytest.param(2 * HOUR, HOUR, id="reversed window"),
        pytest.param(-DAY, -HOUR, id="over"),
        pytest.param(-DAY, 0, id="ends now"),
    ],
)
def test_invalid_windows_are_rejected(
    ledger: Ledger, new_account: NewAccount, from_offset: int, until_offset: int
) -> None:
    patient, grantee = new_account(), new_account()
    now = latest_time(ledger)
    valid_from, valid_until = now + from_offset, now + until_offset
    key = ConsentKey(patient.address, grantee.address, SCOPE, PURPOSE)
    before = snapshot(ledger, key)

    with reverts(ledger, "ConsentRegistryInvalidWindow", validFrom=valid_from, validUntil=valid_until):
        raw_grant(ledger, (*key.as_revoke_request(), valid_from, valid_until), patient)
    assert snapshot(ledger, key) == before
    if valid_from >= valid_until:  # the client refuses these before reaching the chain
        with pytest.raises(InputError):
            GrantTerms(key, valid_from, valid_until)


def test_revoking_what_is_not_granted_is_rejected(ledger: Ledger, new_account: NewAccount) -> None:
    patient, grantee = new_account(), new_account()
    terms = make_terms(ledger, patient.address, grantee.address)
    key = terms.key
    expected = {
        "patient": patient.address,
        "grantee": grantee.address,
        "scope": encode_code(SCOPE),
        "purpose": encode_code(PURPOSE),
    }

    with reverts(ledger, "ConsentRegistryNotGranted", **expected):
        ledger.consents.revoke(key, patient)
    assert snapshot(ledger, key)[0] == (0, 0, 0, 0)

    ledger.consents.grant(terms, patient)
    ledger.consents.revoke(key, patient)
    before = snapshot(ledger, key)
    with reverts(ledger, "ConsentRegistryNotGranted", **expected):
        ledger.consents.revoke(key, patient)
    assert snapshot(ledger, key) == before


def test_zero_addresses_and_codes_are_rejected(ledger: Ledger, new_account: NewAccount) -> None:
    patient, grantee = new_account(), new_account()
    now = latest_time(ledger)
    scope, purpose = encode_code(SCOPE), encode_code(PURPOSE)
    window = (now - HOUR, now + DAY)
    cases = [
        ((patient.address, ZERO_ADDRESS, scope, purpose, *window), "ConsentRegistryZeroAddress"),
        ((ZERO_ADDRESS, grantee.address, scope, purpose, *window), "ConsentRegistryZeroAddress"),
        ((patient.address, grantee.address, ZERO32, purpose, *window), "ConsentRegistryZeroCode"),
        ((patient.address, grantee.address, scope, ZERO32, *window), "ConsentRegistryZeroCode"),
    ]
    for request, error in cases:
        with reverts(ledger, error):
            raw_grant(ledger, request, patient)
    functions = ledger.consents.contract.functions
    with reverts(ledger, "ConsentRegistryZeroAddress"):
        ledger.chain.transact(functions.revoke((ZERO_ADDRESS, grantee.address, scope, purpose)), patient)
    with reverts(ledger, "ConsentRegistryZeroAddress"):
        ledger.chain.transact(functions.appointGuardian(ZERO_ADDRESS, now + DAY), patient)
    assert ledger.consents.guardian_until(patient.address, ZERO_ADDRESS) == 0
    assert stored_consent(ledger, ConsentKey(patient.address, grantee.address, SCOPE, PURPOSE)) == (0, 0, 0, 0)


# --- guardians -------------------------------------------------------------------------------


def test_appoint_guardian_emits_event_and_sets_expiry(ledger: Ledger, new_account: NewAccount) -> None:
    patient, guardian = new_account(), new_account()
    until = latest_time(ledger) + DAY

    receipt = ledger.consents.appoint_guardian(patient, guardian.address, until)

    event = single_event(ledger.consents.contract.events.GuardianAppointed(), receipt)
    assert event == {"patient": patient.address, "guardian": guardian.address, "validUntil": until}
    assert topics_of(receipt) == [address_topic(patient.address), address_topic(guardian.address)]
    assert ledger.consents.guardian_until(patient.address, guardian.address) == until
    assert ledger.consents.guardian_until(guardian.address, patient.address) == 0

    ledger.consents.appoint_guardian(patient, guardian.address, until + DAY)  # re-appointment
    assert ledger.consents.guardian_until(patient.address, guardian.address) == until + DAY


def test_guardian_grants_and_revokes_directly(ledger: Ledger, new_account: NewAccount) -> None:
    patient, guardian, grantee = new_account(), new_account(), new_account()
    ledger.consents.appoint_guardian(patient, guardian.address, latest_time(ledger) + DAY)
    terms = make_terms(ledger, patient.address, grantee.address)

    assert_granted(ledger, ledger.consents.grant(terms, guardian), terms, guardian.address)
    assert permitted(ledger, terms.key)
    assert_revoked(ledger, ledger.consents.revoke(terms.key, guardian), terms, guardian.address)
    assert not permitted(ledger, terms.key)


def test_guardian_grants_and_revokes_by_signature(ledger: Ledger, new_account: NewAccount) -> None:
    patient, guardian, grantee = new_account(), new_account(), new_account()
    ledger.consents.appoint_guardian(patient, guardian.address, latest_time(ledger) + DAY)
    terms = make_terms(ledger, patient.address, grantee.address)

    receipt = relay_grant(ledger, terms, sign_grant(ledger, terms, guardian))
    assert_granted(ledger, receipt, terms, guardian.address)
    assert ledger.consents.nonce(patient.address) == 1
    receipt = relay_revoke(ledger, terms.key, sign_revocation(ledger, terms.key, guardian))
    assert_revoked(ledger, receipt, terms, guardian.address)
    assert ledger.consents.nonce(patient.address) == 2
    assert ledger.consents.nonce(guardian.address) == 0  # the patient's nonce is the one used


def test_an_expired_guardian_is_rejected(ledger: Ledger, new_account: NewAccount) -> None:
    patient, guardian, grantee = new_account(), new_account(), new_account()
    until = latest_time(ledger) + HOUR
    ledger.consents.appoint_guardian(patient, guardian.address, until)
    terms = make_terms(ledger, patient.address, grantee.address, valid_until=until + DAY)
    ledger.consents.grant(terms, guardian)  # fine while appointed

    travel_to(ledger, until)  # the appointment holds until, excluding, `until`
    before = snapshot(ledger, terms.key)
    unauthorized = {"patient": patient.address, "actor": guardian.address}
    with reverts(ledger, "ConsentRegistryUnauthorizedActor", **unauthorized):
        ledger.consents.revoke(terms.key, guardian)
    with reverts(ledger, "ConsentRegistryUnauthorizedActor", **unauthorized):
        ledger.consents.grant(terms, guardian)
    with reverts(ledger, "ConsentRegistryUnauthorizedActor", **unauthorized):
        relay_revoke(ledger, terms.key, sign_revocation(ledger, terms.key, guardian))
    assert snapshot(ledger, terms.key) == before
    assert ledger.consents.guardian_until(patient.address, guardian.address) == until


def test_remove_guardian(ledger: Ledger, new_account: NewAccount) -> None:
    patient, guardian, grantee = new_account(), new_account(), new_account()
    ledger.consents.appoint_guardian(patient, guardian.address, latest_time(ledger) + DAY)

    receipt = ledger.consents.remove_guardian(patient, guardian.address)

    event = single_event(ledger.consents.contract.events.GuardianRemoved(), receipt)
    assert event == {"patient": patient.address, "guardian": guardian.address}
    assert ledger.consents.guardian_until(patient.address, guardian.address) == 0
    terms = make_terms(ledger, patient.address, grantee.address)
    with reverts(ledger, "ConsentRegistryUnauthorizedActor", patient=patient.address, actor=guardian.address):
        ledger.consents.grant(terms, guardian)
    with reverts(ledger, "ConsentRegistryNotGuardian", patient=patient.address, guardian=guardian.address):
        ledger.consents.remove_guardian(patient, guardian.address)
    assert stored_consent(ledger, terms.key) == (0, 0, 0, 0)


def test_invalid_guardian_appointments_are_rejected(ledger: Ledger, new_account: NewAccount) -> None:
    patient, guardian, stranger = new_account(), new_account(), new_account()
    now = latest_time(ledger)

    with reverts(ledger, "ConsentRegistryInvalidGuardian", guardian=patient.address, validUntil=now + DAY):
        ledger.consents.appoint_guardian(patient, patient.address, now + DAY)
    for until in (now - 1, now, 1):
        with reverts(ledger, "ConsentRegistryInvalidGuardian", guardian=guardian.address, validUntil=until):
            ledger.consents.appoint_guardian(patient, guardian.address, until)
    with reverts(ledger, "ConsentRegistryNotGuardian", patient=patient.address, guardian=stranger.address):
        ledger.consents.remove_guardian(patient, stranger.address)

    assert ledger.consents.guardian_until(patient.address, patient.address) == 0
    assert ledger.consents.guardian_until(patient.address, guardian.address) == 0


def test_set_guardian_by_signature_appoints_and_removes(ledger: Ledger, new_account: NewAccount) -> None:
    patient, guardian = new_account(), new_account()
    until = latest_time(ledger) + DAY

    appointment = sign_guardian(ledger, patient.address, guardian.address, until, patient)
    receipt = relay_guardian(ledger, guardian.address, until, appointment)
    event = single_event(ledger.consents.contract.events.GuardianAppointed(), receipt)
    assert event == {"patient": patient.address, "guardian": guardian.address, "validUntil": until}
    assert ledger.consents.guardian_until(patient.address, guardian.address) == until
    assert ledger.consents.nonce(patient.address) == 1

    with reverts(ledger, "ConsentRegistryInvalidSignature", signer=patient.address):
        relay_guardian(ledger, guardian.address, until, appointment)  # replay

    removal = sign_guardian(ledger, patient.address, guardian.address, 0, patient)
    receipt = relay_guardian(ledger, guardian.address, 0, removal)
    event = single_event(ledger.consents.contract.events.GuardianRemoved(), receipt)
    assert event == {"patient": patient.address, "guardian": guardian.address}
    assert ledger.consents.guardian_until(patient.address, guardian.address) == 0
    assert ledger.consents.nonce(patient.address) == 2


def test_a_guardian_cannot_sign_a_guardian_appointment(ledger: Ledger, new_account: NewAccount) -> None:
    patient, guardian, accomplice = new_account(), new_account(), new_account()
    until = latest_time(ledger) + DAY
    ledger.consents.appoint_guardian(patient, guardian.address, until)

    forged = sign_guardian(ledger, patient.address, accomplice.address, until, guardian)
    with reverts(ledger, "ConsentRegistryInvalidSignature", signer=patient.address):
        relay_guardian(ledger, accomplice.address, until, forged)
    extension = sign_guardian(ledger, patient.address, guardian.address, until + DAY, guardian)
    with reverts(ledger, "ConsentRegistryInvalidSignature", signer=patient.address):
        relay_guardian(ledger, guardian.address, until + DAY, extension)

    assert ledger.consents.guardian_until(patient.address, accomplice.address) == 0
    assert ledger.consents.guardian_until(patient.address, guardian.address) == until
    assert ledger.consents.nonce(patient.address) == 0


# --- break-glass -----------------------------------------------------------------------------


def grant_emergency_role(ledger: Ledger, account: str) -> None:
    """The admin gives ``account`` EMERGENCY_ROLE through the contract's ``grantRole``."""
    fn = ledger.consents.contract.functions.grantRole(EMERGENCY_ROLE, account)
    ledger.chain.transact(fn, ledger.admin)


def record_emergency(
    ledger: Ledger, accessor: LocalAccount, patient: str, purpose: str = EMERGENCY, reason: str = REASON
) -> TxReceipt:
    """A break-glass access to all of ``patient``'s data, through the client."""
    return ledger.consents.record_emergency_access(accessor, patient, ALL_DATA, purpose, reason)


def test_the_registry_holds_its_emergency_purposes(ledger: Ledger) -> None:
    functions = ledger.consents.contract.functions
    held = [bytes(code) for code in ledger.chain.call(functions.emergencyPurposes())]
    assert held == [encode_code(p) for p in EMERGENCY_PURPOSES] == [encode_code("ETREAT"), encode_code("BTG")]
    assert ledger.consents.emergency_purposes() == frozenset({"ETREAT", "BTG"})
    for purpose in PURPOSES_OF_USE:
        assert ledger.chain.call(functions.isEmergencyPurpose(encode_code(purpose))) is (purpose in EMERGENCY_PURPOSES)


def test_emergency_access_is_recorded_with_its_purpose(ledger: Ledger, new_account: NewAccount) -> None:
    patient, doctor = new_account(), new_account()
    role = bytes(ledger.chain.call(ledger.consents.contract.functions.EMERGENCY_ROLE()))
    assert role == bytes(EMERGENCY_ROLE)
    grant_emergency_role(ledger, doctor.address)

    receipt = record_emergency(ledger, doctor, patient.address, "ETREAT")

    event = single_event(ledger.consents.contract.events.EmergencyAccessRecorded(), receipt)
    assert event == {
        "patient": patient.address,
        "accessor": doctor.address,
        "scope": encode_code(ALL_DATA),
        "purpose": encode_code("ETREAT"),
        "reason": encode_code(REASON),
    }
    assert topics_of(receipt) == [address_topic(patient.address), address_topic(doctor.address), encode_code(ALL_DATA)]
    # Break-glass is recorded, not a consent.
    assert not ledger.consents.is_permitted(patient.address, doctor.address, SCOPE, PURPOSE)
    history = ledger.consents.history(patient.address)
    assert [(e.kind, e.fields["purpose"]) for e in history] == [("EmergencyAccessRecorded", "ETREAT")]
    btg = single_event(
        ledger.consents.contract.events.EmergencyAccessRecorded(),
        record_emergency(ledger, doctor, patient.address, "BTG"),
    )
    assert btg["purpose"] == encode_code("BTG")


@pytest.mark.parametrize("purpose", ["HRESCH", "HPAYMT", "TREAT", "PUBHLTH"])
def test_emergency_access_for_a_purpose_that_is_no_emergency_reverts(
    ledger: Ledger, new_account: NewAccount, purpose: str
) -> None:
    """Research, payment and plain treatment need the patient's consent: break-glass for them reverts,
    naming the purpose, and records nothing."""
    patient, doctor = new_account(), new_account()
    grant_emergency_role(ledger, doctor.address)
    with reverts(ledger, "ConsentRegistryNotEmergencyPurpose", purpose=encode_code(purpose)):
        record_emergency(ledger, doctor, patient.address, purpose)
    assert ledger.consents.history(patient.address) == []


def test_emergency_access_requires_the_role(ledger: Ledger, new_account: NewAccount) -> None:
    patient, doctor = new_account(), new_account()
    unauthorized = {"account": doctor.address, "neededRole": bytes(EMERGENCY_ROLE)}
    with reverts(ledger, "AccessControlUnauthorizedAccount", **unauthorized):
        record_emergency(ledger, doctor, patient.address)

    grant_emergency_role(ledger, doctor.address)
    record_emergency(ledger, doctor, patient.address)
    revoke = ledger.consents.contract.functions.revokeRole(EMERGENCY_ROLE, doctor.address)
    ledger.chain.transact(revoke, ledger.admin)
    with reverts(ledger, "AccessControlUnauthorizedAccount", **unauthorized):
        record_emergency(ledger, doctor, patient.address)
    assert len(ledger.consents.history(patient.address)) == 1


def test_emergency_access_requires_patient_scope_purpose_and_reason(ledger: Ledger, new_account: NewAccount) -> None:
    patient, doctor = new_account(), new_account()
    grant_emergency_role(ledger, doctor.address)
    record = ledger.consents.contract.functions.recordEmergencyAccess
    scope, purpose, reason = encode_code(ALL_DATA), encode_code(EMERGENCY), encode_code(REASON)

    for args, error, expected in (
        ((patient.address, scope, purpose, ZERO32), "ConsentRegistryZeroCode", {}),
        ((patient.address, ZERO32, purpose, reason), "ConsentRegistryZeroCode", {}),
        ((patient.address, scope, ZERO32, reason), "ConsentRegistryNotEmergencyPurpose", {"purpose": ZERO32}),
        ((ZERO_ADDRESS, scope, purpose, reason), "ConsentRegistryZeroAddress", {}),
    ):
        with reverts(ledger, error, **expected):
            ledger.chain.transact(record(*args), doctor)
    assert ledger.consents.history(patient.address) == []


def test_a_registry_is_deployed_with_its_own_emergency_purposes(ledger: Ledger, new_account: NewAccount) -> None:
    """The set is the deployment's: a registry deployed with only ``ETREAT`` refuses ``BTG``; a zero
    purpose cannot be in a set."""
    artifact = load_artifact(CONSENT_REGISTRY)
    with reverts(ledger, "ConsentRegistryZeroCode"):
        ledger.chain.deploy(artifact, ledger.admin, ledger.admin.address, [encode_code("ETREAT"), ZERO32])
    deployed = ledger.chain.deploy(artifact, ledger.admin, ledger.admin.address, [encode_code("ETREAT")] * 2)
    address = deployed["contractAddress"]
    assert address is not None
    registry = ConsentRegistryClient(ledger.chain, address)
    assert registry.emergency_purposes() == frozenset({"ETREAT"})
    assert ledger.chain.call(registry.contract.functions.emergencyPurposes()) == [encode_code("ETREAT")]
    patient, doctor = new_account(), new_account()
    registry.grant_emergency(ledger.admin, doctor.address)
    with reverts(ledger, "ConsentRegistryNotEmergencyPurpose", purpose=encode_code("BTG")):
        registry.record_emergency_access(doctor, patient.address, ALL_DATA, "BTG", REASON)
    registry.record_emergency_access(doctor, patient.address, ALL_DATA, "ETREAT", REASON)


# --- relayed signatures ----------------------------------------------------------------------


def test_relayed_grant_and_revoke(ledger: Ledger, new_account: NewAccount) -> None:
    patient, grantee = new_account(), new_account()
    terms = make_terms(ledger, patient.address, grantee.address)
    assert ledger.consents.nonce(patient.address) == 0

    receipt = relay_grant(ledger, terms, sign_grant(ledger, terms, patient))
    assert receipt["from"] == ledger.relayer.address
    assert_granted(ledger, receipt, terms, patient.address)
    assert permitted(ledger, terms.key)
    assert ledger.consents.nonce(patient.address) == 1

    receipt = relay_revoke(ledger, terms.key, sign_revocation(ledger, terms.key, patient))
    assert receipt["from"] == ledger.relayer.address
    assert_revoked(ledger, receipt, terms, patient.address)
    assert not permitted(ledger, terms.key)
    assert ledger.consents.nonce(patient.address) == 2


def test_a_replayed_signature_is_rejected(ledger: Ledger, new_account: NewAccount) -> None:
    patient, grantee = new_account(), new_account()
    terms = make_terms(ledger, patient.address, grantee.address)
    signed = sign_grant(ledger, terms, patient)
    relay_grant(ledger, terms, signed)
    ledger.consents.revoke(terms.key, patient)  # so that a replay would change something
    before = snapshot(ledger, terms.key)
    assert before[1] == 1

    with reverts(ledger, "ConsentRegistryInvalidSignature", signer=patient.address):
        relay_grant(ledger, terms, signed)
    assert snapshot(ledger, terms.key) == before

    # Sent anyway (gas given, no estimate): mined, failed, no event, nothing changed.
    fn = ledger.consents.contract.functions.grantBySig(
        terms.as_grant_request(), signed.signer, signed.deadline, signed.signature
    )
    with pytest.raises(TransactionFailedError) as caught:
        ledger.chain.transact(fn, ledger.relayer, gas=300_000)
    receipt = ledger.chain.w3.eth.get_transaction_receipt(caught.value.details["tx_hash"])
    assert receipt["status"] == 0 and receipt["logs"] == []
    assert snapshot(ledger, terms.key) == before


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("chainId", 1),
        ("verifyingContract", "0x" + "ab" * 20),
        ("name", "CareLedger ConsentRegistry v2"),
        ("version", "2"),
    ],
)
def test_a_signature_for_another_domain_is_rejected(
    ledger: Ledger, new_account: NewAccount, field: str, value: object
) -> None:
    patient, grantee = new_account(), new_account()
    terms = make_terms(ledger, patient.address, grantee.address)
    domain = {**ledger.consents.domain, field: value}
    if field == "verifyingContract":  # another real contract on the same chain
        domain[field] = ledger.anchors.address
    signed = sign_grant(ledger, terms, patient, domain=domain)
    before = snapshot(ledger, terms.key)

    with reverts(ledger, "ConsentRegistryInvalidSignature", signer=patient.address):
        relay_grant(ledger, terms, signed)
    assert snapshot(ledger, terms.key) == before


def test_an_expired_signature_is_rejected(ledger: Ledger, new_account: NewAccount) -> None:
    patient, grantee = new_account(), new_account()
    terms = make_terms(ledger, patient.address, grantee.address, valid_until=latest_time(ledger) + 2 * DAY)
    deadline = latest_time(ledger) + HOUR
    signed = sign_grant(ledger, terms, patient, deadline=deadline)
    stale = sign_grant(ledger, terms, patient, deadline=latest_time(ledger) - 1)
    before = snapshot(ledger, terms.key)

    with reverts(ledger, "ConsentRegistryExpiredSignature", deadline=stale.deadline):
        relay_grant(ledger, terms, stale)
    travel_to(ledger, deadline + 1)
    with reverts(ledger, "ConsentRegistryExpiredSignature", deadline=deadline):
        relay_grant(ledger, terms, signed)
    assert snapshot(ledger, terms.key) == before


def test_a_signature_is_accepted_up_to_its_deadline(ledger: Ledger, new_account: NewAccount) -> None:
    patient, grantee = new_account(), new_account()
    terms = make_terms(ledger, patient.address, grantee.address, valid_until=latest_time(ledger) + 2 * DAY)
    signed = sign_grant(ledger, terms, patient)
    travel_to(ledger, signed.deadline)
    fn = ledger.consents.contract.functions.grantBySig(
        terms.as_grant_request(), signed.signer, signed.deadline, signed.signature
    )
    # Gas given: the embedded chain estimates in a block one second after the newest one, which
    # here is already past the deadline; the transaction itself is mined at the deadline.
    receipt = ledger.chain.transact(fn, ledger.relayer, gas=300_000)
    assert ledger.chain.block_timestamp(receipt["blockNumber"]) == signed.deadline
    assert_granted(ledger, receipt, terms, patient.address)


def test_a_signature_by_another_key_is_rejected(ledger: Ledger, new_account: NewAccount) -> None:
    patient, grantee, forger = new_account(), new_account(), new_account()
    terms = make_terms(ledger, patient.address, grantee.address)
    forged = sign_grant(ledger, terms, forger, signer=patient.address)
    before = snapshot(ledger, terms.key)

    with reverts(ledger, "ConsentRegistryInvalidSignature", signer=patient.address):
        relay_grant(ledger, terms, forged)
    assert snapshot(ledger, terms.key) == before


def test_a_signature_for_another_patient_is_rejected(ledger: Ledger, new_account: NewAccount) -> None:
    patient_a, patient_b, grantee = new_account(), new_account(), new_account()
    terms_a = make_terms(ledger, patient_a.address, grantee.address)
    signed = sign_grant(ledger, terms_a, patient_a)
    terms_b = GrantTerms(replace(terms_a.key, patient=patient_b.address), terms_a.valid_from, terms_a.valid_until)
    before_a, before_b = snapshot(ledger, terms_a.key), snapshot(ledger, terms_b.key)

    with reverts(ledger, "ConsentRegistryInvalidSignature", signer=patient_b.address):
        relay_grant(ledger, terms_b, replace(signed, signer=patient_b.address))
    with reverts(ledger, "ConsentRegistryUnauthorizedActor", patient=patient_b.address, actor=patient_a.address):
        relay_grant(ledger, terms_b, signed)
    # Even when A is B's guardian, A's signature for A's own consent does not act for B.
    ledger.consents.appoint_guardian(patient_b, patient_a.address, latest_time(ledger) + DAY)
    with reverts(ledger, "ConsentRegistryInvalidSignature", signer=patient_a.address):
        relay_grant(ledger, terms_b, signed)

    assert snapshot(ledger, terms_a.key) == before_a
    assert snapshot(ledger, terms_b.key) == before_b


def test_a_signer_who_is_neither_patient_nor_guardian_is_rejected(ledger: Ledger, new_account: NewAccount) -> None:
    patient, grantee, stranger = new_account(), new_account(), new_account()
    terms = make_terms(ledger, patient.address, grantee.address)
    signed = sign_grant(ledger, terms, stranger)  # a valid signature, by the wrong party
    before = snapshot(ledger, terms.key)

    with reverts(ledger, "ConsentRegistryUnauthorizedActor", patient=patient.address, actor=stranger.address):
        relay_grant(ledger, terms, signed)
    assert snapshot(ledger, terms.key) == before


def test_a_used_or_future_nonce_is_rejected(ledger: Ledger, new_account: NewAccount) -> None:
    patient, grantee, other = new_account(), new_account(), new_account()
    first = make_terms(ledger, patient.address, grantee.address)
    relay_grant(ledger, first, sign_grant(ledger, first, patient, nonce=0))
    second = make_terms(ledger, patient.address, other.address)
    before = snapshot(ledger, second.key)
    assert before[1] == 1

    for nonce in (0, 2):
        with reverts(ledger, "ConsentRegistryInvalidSignature", signer=patient.address):
            relay_grant(ledger, second, sign_grant(ledger, second, patient, nonce=nonce))
    assert snapshot(ledger, second.key) == before
    relay_grant(ledger, second, sign_grant(ledger, second, patient, nonce=1))  # the right one
    assert permitted(ledger, second.key)


def test_a_high_s_signature_is_rejected(ledger: Ledger, new_account: NewAccount) -> None:
    patient, grantee = new_account(), new_account()
    terms = make_terms(ledger, patient.address, grantee.address)
    nonce, deadline = ledger.consents.nonce(patient.address), latest_time(ledger) + HOUR
    typed = grant_typed_data(ledger.consents.domain, terms, patient.address, nonce, deadline)
    signature = sign_typed_data(patient, typed)
    malleable = high_s(signature)
    # The twin is a mathematically valid signature by the same key: only EIP-2 rejects it.
    r, s, v = (int.from_bytes(malleable[:32], "big"), int.from_bytes(malleable[32:64], "big"), malleable[64])
    twin = Signature(vrs=(v - 27, r, s))
    assert twin.recover_public_key_from_msg_hash(typed_data_digest(typed)).to_checksum_address() == patient.address
    before = snapshot(ledger, terms.key)

    with pytest.raises(InvalidSignatureError):
        recover_signer(typed, malleable)
    with reverts(ledger, "ConsentRegistryInvalidSignature", signer=patient.address):
        relay_grant(ledger, terms, Signed(patient.address, deadline, malleable))
    assert snapshot(ledger, terms.key) == before

    assert recover_signer(typed, signature) == patient.address
    relay_grant(ledger, terms, Signed(patient.address, deadline, signature))  # nonce unspent
    assert permitted(ledger, terms.key)


def test_a_grant_signature_cannot_be_used_for_a_revocation(ledger: Ledger, new_account: NewAccount) -> None:
    patient, grantee = new_account(), new_account()
    terms = make_terms(ledger, patient.address, grantee.address)
    ledger.consents.grant(terms, patient)
    grant_signature = sign_grant(ledger, terms, patient)
    before = snapshot(ledger, terms.key)

    with reverts(ledger, "ConsentRegistryInvalidSignature", signer=patient.address):
        relay_revoke(ledger, terms.key, grant_signature)
    assert snapshot(ledger, terms.key) == before

    ledger.consents.revoke(terms.key, patient)
    revocation_signature = sign_revocation(ledger, terms.key, patient)
    before = snapshot(ledger, terms.key)
    with reverts(ledger, "ConsentRegistryInvalidSignature", signer=patient.address):
        relay_grant(ledger, terms, revocation_signature)
    assert snapshot(ledger, terms.key) == before


@pytest.mark.parametrize(
    "tamper",
    ["validUntil", "validFrom", "grantee", "scope", "purpose", "deadline"],
)
def test_a_tampered_signed_grant_is_rejected(ledger: Ledger, new_account: NewAccount, tamper: str) -> None:
    patient, grantee, other = new_account(), new_account(), new_account()
    terms = make_terms(ledger, patient.address, grantee.address)
    signed = sign_grant(ledger, terms, patient)
    key = terms.key
    changed = {
        "validUntil": replace(terms, valid_until=terms.valid_until + DAY),
        "validFrom": replace(terms, valid_from=terms.valid_from - DAY),
        "grantee": replace(terms, key=replace(key, grantee=other.address)),
        "scope": replace(terms, key=replace(key, scope=ALL_DATA)),
        "purpose": replace(terms, key=replace(key, purpose="HRESCH")),
        "deadline": terms,
    }[tamper]
    if tamper == "deadline":
        signed = replace(signed, deadline=signed.deadline + DAY)
    before = snapshot(ledger, changed.key)

    with reverts(ledger, "ConsentRegistryInvalidSignature", signer=patient.address):
        relay_grant(ledger, changed, signed)
    assert snapshot(ledger, changed.key) == before


# --- ERC-1271 contract wallets ---------------------------------------------------------------


def deploy_wallet(ledger: Ledger, owner: LocalAccount) -> str:
    """Deploy MockERC1271Wallet owned by ``owner``; return its address."""
    data = json.loads(WALLET_ARTIFACT.read_text("utf-8"))
    artifact = Artifact(
        name=data["contractName"],
        abi=data["abi"],
        bytecode=data["bytecode"],
        deployed_bytecode=data["deployedBytecode"],
        metadata=data["metadata"],
    )
    receipt = ledger.chain.deploy(artifact, owner, owner.address)
    address = str(receipt["contractAddress"])
    assert ledger.chain.code_at(address)
    return address


def test_a_contract_wallet_patient_consents_by_its_owner_signature(ledger: Ledger, new_account: NewAccount) -> None:
    owner, grantee, stranger = new_account(), new_account(), new_account()
    wallet = deploy_wallet(ledger, owner)
    terms = make_terms(ledger, wallet, grantee.address)
    before = snapshot(ledger, terms.key)

    with reverts(ledger, "ConsentRegistryInvalidSignature", signer=wallet):
        relay_grant(ledger, terms, sign_grant(ledger, terms, stranger, signer=wallet))
    with reverts(ledger, "ConsentRegistryUnauthorizedActor", patient=wallet, actor=owner.address):
        relay_grant(ledger, terms, sign_grant(ledger, terms, owner))  # the owner is not the patient
    assert snapshot(ledger, terms.key) == before

    receipt = relay_grant(ledger, terms, sign_grant(ledger, terms, owner, signer=wallet))
    assert_granted(ledger, receipt, terms, wallet)
    assert permitted(ledger, terms.key)
    assert ledger.consents.nonce(wallet) == 1

    receipt = relay_revoke(ledger, terms.key, sign_revocation(ledger, terms.key, owner, signer=wallet))
    assert_revoked(ledger, receipt, terms, wallet)
    assert ledger.consents.nonce(wallet) == 2


# --- EIP-712 parity --------------------------------------------------------------------------


def test_the_contract_domain_equals_the_python_domain(ledger: Ledger) -> None:
    fields, name, version, chain_id, contract, salt, extensions = ledger.chain.call(
        ledger.consents.contract.functions.eip712Domain()
    )
    assert bytes(fields) == b"\x0f"  # name, version, chainId, verifyingContract
    assert {
        "name": name,
        "version": version,
        "chainId": chain_id,
        "verifyingContract": contract,
    } == ledger.consents.domain
    assert bytes(salt) == ZERO32 and extensions == []


addresses = st.binary(min_size=20, max_size=20).map(Web3.to_checksum_address)
scopes = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_.:/-]{0,31}", fullmatch=True) | st.just(ALL_DATA)
purposes = st.sampled_from(sorted(PURPOSES_OF_USE))
uint64s = st.integers(min_value=0, max_value=UINT64_MAX)
windows = st.integers(min_value=0, max_value=UINT64_MAX - 1).flatmap(
    lambda start: st.tuples(st.just(start), st.integers(min_value=start + 1, max_value=UINT64_MAX))
)
uint256s = st.integers(min_value=0, max_value=2**256 - 1)
private_keys = st.integers(min_value=1, max_value=SECP256K1_N - 1)

EDGE_ADDRESS = "0x" + "ff" * 20


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])  # views only
@given(
    patient=addresses,
    grantee=addresses,
    guardian=addresses,
    scope=scopes,
    purpose=purposes,
    window=windows,
    guardian_until=uint64s,
    nonce=uint256s,
    deadline=uint256s,
    private_key=private_keys,
)
@example(
    patient=Web3.to_checksum_address(EDGE_ADDRESS),
    grantee=ZERO_ADDRESS,
    guardian=ZERO_ADDRESS,
    scope=ALL_DATA,
    purpose="TREAT",
    window=(0, UINT64_MAX),
    guardian_until=0,
    nonce=2**256 - 1,
    deadline=2**256 - 1,
    private_key=SECP256K1_N - 1,
)
@example(
    patient=ZERO_ADDRESS,
    grantee=Web3.to_checksum_address(EDGE_ADDRESS),
    guardian=Web3.to_checksum_address(EDGE_ADDRESS),
    scope="Z" * 32,
    purpose="HRESCH",
    window=(UINT64_MAX - 1, UINT64_MAX),
    guardian_until=UINT64_MAX,
    nonce=0,
    deadline=0,
    private_key=1,
)
def test_python_eip712_digests_equal_the_contracts(
    ledger: Ledger,
    patient: str,
    grantee: str,
    guardian: str,
    scope: str,
    purpose: str,
    window: tuple[int, int],
    guardian_until: int,
    nonce: int,
    deadline: int,
    private_key: int,
) -> None:
    account: LocalAccount = Account.from_key(private_key.to_bytes(32, "big"))
    signer = account.address
    domain = ledger.consents.domain
    functions = ledger.consents.contract.functions
    terms = GrantTerms(ConsentKey(patient, grantee, scope, purpose), *window)

    grant = grant_typed_data(domain, terms, signer, nonce, deadline)
    revocation = revocation_typed_data(domain, terms.key, signer, nonce, deadline)
    appointment = guardian_typed_data(domain, patient, guardian, guardian_until, nonce, deadline)
    on_chain = [
        functions.grantDigest(terms.as_grant_request(), signer, nonce, deadline),
        functions.revocationDigest(terms.key.as_revoke_request(), signer, nonce, deadline),
        functions.guardianDigest(patient, guardian, guardian_until, nonce, deadline),
    ]
    python = [typed_data_digest(typed) for typed in (grant, revocation, appointment)]
    assert python == [bytes(ledger.chain.call(fn)) for fn in on_chain]
    assert len(set(python)) == 3

    for typed in (grant, revocation, appointment):
        assert recover_signer(typed, sign_typed_data(account, typed)) == signer


# --- constant-gas permission check -----------------------------------------------------------


CYCLE_GAS = 200_000


def is_permitted_gas(ledger: Ledger, consent: ConsentKey) -> int:
    """Gas an ``isPermitted`` call for ``consent`` uses, read from the receipt of sending it as a transaction.

    A receipt's figure is exact on every chain; estimates are not (py-evm's default estimator stops its
    binary search within 21,000 gas of the true figure, ten cold storage reads), which would hide any growth.
    """
    fn = ledger.consents.contract.functions.isPermitted(
        consent.patient, consent.grantee, encode_code(consent.scope), encode_code(consent.purpose)
    )
    return int(ledger.chain.transact(fn, ledger.relayer, gas=CYCLE_GAS)["gasUsed"])


def test_is_permitted_gas_does_not_grow_with_history(ledger: Ledger, new_account: NewAccount) -> None:
    patient = new_account()
    grantee, *other_grantees = (Account.create().address for _ in range(3))
    terms = make_terms(ledger, patient.address, grantee)
    key = terms.key

    functions = ledger.consents.contract.functions

    def cycle(cycle_terms: GrantTerms) -> None:
        """Grant and revoke; gas given, as estimating would take most of this test's time."""
        grant = functions.grant(cycle_terms.as_grant_request())
        ledger.chain.transact(grant, patient, gas=CYCLE_GAS)
        ledger.chain.transact(functions.revoke(cycle_terms.key.as_revoke_request()), patient, gas=CYCLE_GAS)

    cycle(terms)
    revoked_once = is_permitted_gas(ledger, key)
    ledger.consents.grant(terms, patient)
    granted_once = is_permitted_gas(ledger, key)
    ledger.consents.revoke(key, patient)
    # The measure sees storage reads: a granted key answers from one slot, a revoked one from two.
    assert granted_once < revoked_once

    for _ in range(29):
        cycle(terms)
    assert not permitted(ledger, key)
    assert is_permitted_gas(ledger, key) == revoked_once
    ledger.consents.grant(terms, patient)
    assert permitted(ledger, key)
    assert is_permitted_gas(ledger, key) == granted_once
    ledger.consents.revoke(key, patient)

    # Thirty cycles of other keys of the same patient, the wildcard of the same grantee first.
    other_keys = [
        (other_grantee, scope, purpose)
        for other_grantee in (grantee, *other_grantees)
        for purpose in (PURPOSE, "HRESCH", "HPAYMT")
        for scope in (ALL_DATA, "Condition", "Procedure", "Observation/vital-signs", SCOPE)
        if (other_grantee, scope, purpose) != (grantee, SCOPE, PURPOSE)
    ][:30]
    for other_grantee, scope, purpose in other_keys:
        cycle(make_terms(ledger, patient.address, other_grantee, scope, purpose))
    assert not permitted(ledger, key)
    assert is_permitted_gas(ledger, key) == revoked_once
