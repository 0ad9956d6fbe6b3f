"""The FHIR Consent behind a decision, on the chain under test with a real store and chain index: named
once the index holds its grant, as of the decision's block; none for a key granted otherwise, and
none (never an older Consent) while the index lags behind the key's last change."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount

from ledger.chain.indexer import ChainIndexer
from ledger.consent.access import ConsentDecision, decide, decide_at
from ledger.consent.relay import Relayer
from ledger.consent.terms import ConsentKey, GrantTerms
from ledger.fhir.consent_links import deciding_fhir_consent
from ledger.fhir.consent_resources import create_consent
from ledger.runtime import Ledger
from ledger.store import Database, open_database
from tests.support.fhir_consents import pcf_consent, signed_consent

NewAccount = Callable[[], LocalAccount]
HOUR = 3600


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    store = open_database(tmp_path / "store")
    yield store
    store.close()


def _fhir_grant(ledger: Ledger, db: Database, patient: LocalAccount, grantee: str) -> str:
    """Create a FHIR Consent (Observation, TREAT) through the facade's library; returns its id. The
    relayer does not index (the index lags until the test syncs it)."""
    relayer = Relayer(ledger.consents, ledger.chain, ledger.relayer)
    resource = pcf_consent(patient.address, grantee)
    body = signed_consent(ledger.consents.domain, ledger.consents.nonce(patient.address), patient, resource)
    return create_consent(relayer, db, body, None)[0].stored.id


def _linked(db: Database, decision: ConsentDecision) -> str | None:
    assert decision.deciding is not None
    return deciding_fhir_consent(db.conn, decision.deciding, decision.chain.block)


def test_a_decision_names_the_fhir_consent_once_its_grant_is_indexed(
    ledger: Ledger, db: Database, new_account: NewAccount
) -> None:
    patient, grantee = new_account(), Account.create().address
    indexer = ChainIndexer(db, ledger.consents, ledger.anchors)
    key = ConsentKey(patient.address, grantee, "Observation", "TREAT")
    consent_id = _fhir_grant(ledger, db, patient, grantee)

    granted = decide(ledger.consents, ledger.chain, patient.address, grantee, "Observation", "TREAT")
    assert granted.permitted and granted.consent == key
    assert _linked(db, granted) is None  # not indexed yet: none found, not a guess
    indexer.sync()
    assert _linked(db, granted) == consent_id

    # Granted again through /v1's path (the patient's own transaction): the newest grant is no
    # FHIR Consent's, yet a decision at the older block still names the Consent that decided it.
    at_fhir_grant = ledger.chain.block_header(granted.chain.block)
    now = ledger.chain.block_timestamp("latest")
    ledger.consents.grant(GrantTerms(key, now - HOUR, now + HOUR), patient)
    regranted = decide(ledger.consents, ledger.chain, patient.address, grantee, "Observation", "TREAT")
    assert _linked(db, regranted) is None  # the index lags: never the older Consent
    indexer.sync()
    assert _linked(db, regranted) is None  # granted otherwise
    assert _linked(db, decide_at(ledger.consents, key, at_fhir_grant)) == consent_id


def test_a_revoked_fhir_consent_is_named_by_the_denial_it_decided(
    ledger: Ledger, db: Database, new_account: NewAccount
) -> None:
    patient, grantee = new_account(), Account.create().address
    indexer = ChainIndexer(db, ledger.consents, ledger.anchors)
    consent_id = _fhir_grant(ledger, db, patient, grantee)
    ledger.consents.revoke(ConsentKey(patient.address, grantee, "Observation", "TREAT"), patient)
    indexer.sync()

    denied = decide(ledger.consents, ledger.chain, patient.address, grantee, "Observation", "TREAT")
    assert (denied.permitted, denied.reason) == (False, "revoked")
    assert _linked(db, denied) == consent_id
