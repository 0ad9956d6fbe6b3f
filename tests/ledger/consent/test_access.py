"""Access decisions on the chain under test: each is read at one block it names (number and hash,
chain and registry), a grant mined after that block changes nothing about it, and it names the
consent whose state decided."""

from __future__ import annotations

from collections.abc import Callable

from eth_account import Account
from eth_account.signers.local import LocalAccount

from ledger.consent.access import decide, decide_at
from ledger.consent.terms import ConsentKey, GrantTerms
from ledger.runtime import Ledger

NewAccount = Callable[[], LocalAccount]
HOUR = 3600


def _grant(ledger: Ledger, patient: LocalAccount, key: ConsentKey) -> int:
    """Grant ``key`` for an hour either side of now; returns the block that mined it."""
    now = ledger.chain.block_timestamp("latest")
    receipt = ledger.consents.grant(GrantTerms(key, now - HOUR, now + HOUR), patient)
    return int(receipt["blockNumber"])


def test_a_decision_names_the_block_it_read(ledger: Ledger, new_account: NewAccount) -> None:
    patient, grantee = new_account(), Account.create()
    key = ConsentKey(patient.address, grantee.address, "Observation", "TREAT")
    granted_in = _grant(ledger, patient, key)

    decision = decide(ledger.consents, ledger.chain, patient.address, grantee.address, "Observation", "TREAT")

    assert decision.permitted and decision.consent == key
    state = decision.chain
    assert state.block >= granted_in and state.block <= ledger.chain.block_number()
    assert state.chain_id == ledger.chain.chain_id and state.registry == ledger.consents.address
    by_number = ledger.chain.w3.eth.get_block(state.block)  # eth_getBlockByNumber
    assert bytes(by_number["hash"]) == state.block_hash and len(state.block_hash) == 32


def test_a_grant_mined_after_the_pinned_block_does_not_change_the_decision(
    ledger: Ledger, new_account: NewAccount
) -> None:
    patient, grantee = new_account(), Account.create()
    key = ConsentKey(patient.address, grantee.address, "Observation", "TREAT")
    before = ledger.chain.block_header("latest")
    granted_in = _grant(ledger, patient, key)
    assert granted_in > before.number

    pinned = decide_at(ledger.consents, key, before)
    assert (pinned.permitted, pinned.reason, pinned.deciding) == (False, "no_consent", None)
    assert pinned.states == {"Observation": "none", "*": "none"}
    assert (pinned.chain.block, pinned.chain.block_hash) == (before.number, before.hash)

    now = decide(ledger.consents, ledger.chain, patient.address, grantee.address, "Observation", "TREAT")
    assert now.permitted and now.chain.block >= granted_in

    # and a revocation mined after a block where it was granted leaves that block's decision as it was
    after_grant = ledger.chain.block_header(granted_in)
    ledger.consents.revoke(key, patient)
    assert decide_at(ledger.consents, key, after_grant).permitted
    revoked = decide(ledger.consents, ledger.chain, patient.address, grantee.address, "Observation", "TREAT")
    assert (revoked.permitted, revoked.reason, revoked.consent) == (False, "revoked", key)


def test_the_deciding_consent_is_the_one_whose_state_decided(ledger: Ledger, new_account: NewAccount) -> None:
    patient, grantee = new_account(), Account.create()
    exact = ConsentKey(patient.address, grantee.address, "Observation", "TREAT")
    every = ConsentKey(patient.address, grantee.address, "*", "TREAT")

    def decision() -> tuple[bool, str | None, ConsentKey | None]:
        found = decide(ledger.consents, ledger.chain, patient.address, grantee.address, "Observation", "TREAT")
        return found.permitted, found.reason, found.consent

    assert decision() == (False, "no_consent", None)
    _grant(ledger, patient, every)
    assert decision() == (True, None, every)  # the exact scope was never granted: '*' allowed it
    _grant(ledger, patient, exact)
    assert decision() == (True, None, exact)  # both active: the exact scope's comes first
    ledger.consents.revoke(exact, patient)
    assert decision() == (True, None, every)
    ledger.consents.revoke(every, patient)
    assert decision() == (False, "revoked", exact)  # the refusal the reason comes from
