"""ConsentRegistry's consent documents: every key of ``scopes x purposes`` granted, and withdrawn, on one
signature whose typed data and events carry the document's digest (``terms``).

Reverts are asserted by custom-error name and arguments, with nothing mined; events by name and
arguments, in order; the Python EIP-712 digests equal the contract's.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from eth_account import Account
from eth_account.signers.local import LocalAccount
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from web3.types import TxReceipt

from ledger.consent.codes import PURPOSES_OF_USE
from ledger.consent.terms import ConsentSet
from ledger.consent.typed_data import (
    grant_set_typed_data,
    recover_signer,
    revocation_set_typed_data,
    sign_typed_data,
    typed_data_digest,
)
from ledger.runtime import Ledger
from ledger.values import encode_code
from tests.contracts.test_consent_registry import (
    DAY,
    GRANTED,
    HOUR,
    REVOKED,
    addresses,
    latest_time,
    private_keys,
    scopes,
    stored_consent,
    uint256s,
    windows,
)
from tests.support.chain_events import reverts

NewAccount = Callable[[], LocalAccount]
TERMS = bytes.fromhex("c0" * 32)


def make_set(
    ledger: Ledger, patient: str, grantee: str, scopes: tuple[str, ...] = ("Observation", "Condition"), **kw: Any
) -> ConsentSet:
    now = latest_time(ledger)
    return ConsentSet(
        patient,
        grantee,
        scopes,
        kw.get("purposes", ("TREAT", "HPAYMT")),
        now - HOUR,
        now + DAY,
        kw.get("terms", TERMS),
    )


def signed(
    ledger: Ledger,
    consent: ConsentSet,
    key: LocalAccount,
    *,
    revocation: bool = False,
    signer: str | None = None,
    deadline: int | None = None,
) -> tuple[str, int, bytes]:
    """``(signer, deadline, signature)`` of ``key`` over the grant (or revocation) set of ``consent``."""
    signer = key.address if signer is None else signer
    deadline = latest_time(ledger) + HOUR if deadline is None else deadline
    build = revocation_set_typed_data if revocation else grant_set_typed_data
    typed = build(ledger.consents.domain, consent, signer, ledger.consents.nonce(consent.patient), deadline)
    return signer, deadline, sign_typed_data(key, typed)


def relay_set(
    ledger: Ledger, consent: ConsentSet, signature: tuple[str, int, bytes], *, revoke: bool = False
) -> TxReceipt:
    relay = ledger.consents.revoke_set_by_signature if revoke else ledger.consents.grant_set_by_signature
    return relay(consent, *signature, ledger.relayer)


def event_names_and_args(ledger: Ledger, receipt: TxReceipt) -> list[tuple[str, dict[str, Any]]]:
    events = ledger.consents.contract.events
    decoded = []
    for log in receipt["logs"]:
        for kind in ("ConsentGranted", "ConsentRevoked", "ConsentSetGranted", "ConsentSetRevoked"):
            try:
                decoded.append((kind, dict(getattr(events, kind)().process_log(log)["args"])))
                break
            except Exception:  # another event's log
                continue
    assert len(decoded) == len(receipt["logs"])
    return decoded


def key_event(consent: ConsentSet, scope: str, purpose: str, actor: str, granted: bool) -> dict[str, Any]:
    event: dict[str, Any] = {
        "patient": consent.patient,
        "grantee": consent.grantee,
        "scope": encode_code(scope),
        "purpose": encode_code(purpose),
    }
    if granted:
        event |= {"validFrom": consent.valid_from, "validUntil": consent.valid_until}
    return event | {"actor": actor}


def test_a_consent_document_grants_every_key_and_names_its_terms(ledger: Ledger, new_account: NewAccount) -> None:
    patient, grantee = Account.create(), new_account()
    consent = make_set(ledger, patient.address, grantee.address)
    receipt = relay_set(ledger, consent, signed(ledger, consent, patient))

    assert receipt["from"] == ledger.relayer.address
    block_time = ledger.chain.block_timestamp(receipt["blockNumber"])
    expected = [
        ("ConsentGranted", key_event(consent, k.scope, k.purpose, patient.address, True))
        for k in consent.consent_keys()
    ]
    set_event = {"patient": patient.address, "grantee": grantee.address, "terms": TERMS, "actor": patient.address}
    assert event_names_and_args(ledger, receipt) == [*expected, ("ConsentSetGranted", set_event)]
    for key in consent.consent_keys():
        assert stored_consent(ledger, key) == (consent.valid_from, consent.valid_until, block_time, GRANTED)
        assert ledger.consents.is_permitted(key.patient, key.grantee, key.scope, key.purpose)
    assert ledger.consents.nonce(patient.address) == 1


def test_withdrawing_a_document_revokes_the_keys_still_granted(ledger: Ledger, new_account: NewAccount) -> None:
    patient, grantee = new_account(), new_account()
    consent = make_set(ledger, patient.address, grantee.address)
    relay_set(ledger, consent, signed(ledger, consent, patient))
    first, *rest = consent.consent_keys()
    ledger.consents.revoke(first, patient)  # one key withdrawn on its own already

    receipt = relay_set(ledger, consent, signed(ledger, consent, patient, revocation=True), revoke=True)
    expected = [("ConsentRevoked", key_event(consent, k.scope, k.purpose, patient.address, False)) for k in rest]
    set_event = {"patient": patient.address, "grantee": grantee.address, "terms": TERMS, "actor": patient.address}
    assert event_names_and_args(ledger, receipt) == [*expected, ("ConsentSetRevoked", set_event)]
    for key in consent.consent_keys():
        assert stored_consent(ledger, key)[3] == REVOKED
    assert ledger.consents.nonce(patient.address) == 2


def test_withdrawing_a_document_with_nothing_granted_reverts(ledger: Ledger, new_account: NewAccount) -> None:
    patient, grantee = Account.create(), new_account()
    consent = make_set(ledger, patient.address, grantee.address)
    first = consent.consent_keys()[0]
    with reverts(
        ledger,
        "ConsentRegistryNotGranted",
        patient=patient.address,
        grantee=grantee.address,
        scope=encode_code(first.scope),
        purpose=encode_code(first.purpose),
    ):
        relay_set(ledger, consent, signed(ledger, consent, patient, revocation=True), revoke=True)
    assert ledger.consents.nonce(patient.address) == 0


def test_an_empty_document_or_one_without_terms_reverts(ledger: Ledger, new_account: NewAccount) -> None:
    patient, grantee = Account.create(), new_account()
    now = latest_time(ledger)
    functions = ledger.consents.contract.functions
    code = encode_code("Observation")
    for scopes_, purposes, terms in (
        ([], [encode_code("TREAT")], TERMS),
        ([code], [], TERMS),
        ([code], [code], bytes(32)),
    ):
        request = (patient.address, grantee.address, scopes_, purposes, now - HOUR, now + DAY, terms)
        with reverts(ledger, "ConsentRegistryEmptySet", terms=terms):
            ledger.chain.transact(
                functions.grantSetBySig(request, patient.address, now + HOUR, b"\0" * 65), ledger.relayer
            )
        with reverts(ledger, "ConsentRegistryEmptySet", terms=terms):
            revoke_request = (patient.address, grantee.address, scopes_, purposes, terms)
            ledger.chain.transact(
                functions.revokeSetBySig(revoke_request, patient.address, now + HOUR, b"\0" * 65), ledger.relayer
            )


def test_a_signature_over_other_terms_is_rejected(ledger: Ledger, new_account: NewAccount) -> None:
    patient, grantee = Account.create(), new_account()
    consent = make_set(ledger, patient.address, grantee.address)
    other = make_set(ledger, patient.address, grantee.address, terms=bytes.fromhex("c1" * 32))
    with reverts(ledger, "ConsentRegistryInvalidSignature", signer=patient.address):
        relay_set(ledger, other, signed(ledger, consent, patient))
    narrower = make_set(ledger, patient.address, grantee.address, scopes=("Observation",))
    with reverts(ledger, "ConsentRegistryInvalidSignature", signer=patient.address):
        relay_set(ledger, narrower, signed(ledger, consent, patient))
    assert ledger.consents.nonce(patient.address) == 0


def test_a_guardian_signs_documents_a_stranger_cannot(ledger: Ledger, new_account: NewAccount) -> None:
    patient, guardian, stranger, grantee = new_account(), Account.create(), Account.create(), new_account()
    ledger.consents.appoint_guardian(patient, guardian.address, latest_time(ledger) + DAY)
    consent = make_set(ledger, patient.address, grantee.address)
    with reverts(ledger, "ConsentRegistryUnauthorizedActor", patient=patient.address, actor=stranger.address):
        relay_set(ledger, consent, signed(ledger, consent, stranger))
    receipt = relay_set(ledger, consent, signed(ledger, consent, guardian))
    assert event_names_and_args(ledger, receipt)[-1][1]["actor"] == guardian.address


def test_an_expired_document_signature_is_rejected(ledger: Ledger, new_account: NewAccount) -> None:
    patient, grantee = Account.create(), new_account()
    consent = make_set(ledger, patient.address, grantee.address)
    deadline = latest_time(ledger) - 1
    with reverts(ledger, "ConsentRegistryExpiredSignature", deadline=deadline):
        relay_set(ledger, consent, signed(ledger, consent, patient, deadline=deadline))


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])  # views only
@given(
    patient=addresses,
    grantee=addresses,
    scope_list=st.lists(scopes, min_size=1, max_size=4, unique=True),
    purpose_list=st.lists(st.sampled_from(sorted(PURPOSES_OF_USE)), min_size=1, max_size=4, unique=True),
    window=windows,
    terms=st.binary(min_size=32, max_size=32).filter(any),
    nonce=uint256s,
    deadline=uint256s,
    private_key=private_keys,
)
def test_python_set_digests_equal_the_contracts(
    ledger: Ledger,
    patient: str,
    grantee: str,
    scope_list: list[str],
    purpose_list: list[str],
    window: tuple[int, int],
    terms: bytes,
    nonce: int,
    deadline: int,
    private_key: int,
) -> None:
    account: LocalAccount = Account.from_key(private_key.to_bytes(32, "big"))
    signer = account.address
    consent = ConsentSet(patient, grantee, tuple(scope_list[:4]), tuple(purpose_list[:4]), *window, terms)
    domain, functions = ledger.consents.domain, ledger.consents.contract.functions
    grant = grant_set_typed_data(domain, consent, signer, nonce, deadline)
    revocation = revocation_set_typed_data(domain, consent, signer, nonce, deadline)
    on_chain = [
        functions.grantSetDigest(consent.as_grant_set_request(), signer, nonce, deadline),
        functions.revocationSetDigest(consent.as_revoke_set_request(), signer, nonce, deadline),
    ]
    python = [typed_data_digest(typed) for typed in (grant, revocation)]
    assert python == [bytes(ledger.chain.call(fn)) for fn in on_chain]
    assert python[0] != python[1]
    for typed in (grant, revocation):
        assert recover_signer(typed, sign_typed_data(account, typed)) == signer
