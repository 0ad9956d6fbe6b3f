"""The AuthZconsent and PatientRead events read the deciding consent and chain state back from the
anchored document: version 2 shows them, version 1 (written before) shows its consent by the key
asked for and no chain state. Every event validates with the R4B models (the builder validates)."""

from __future__ import annotations

from typing import Any

from eth_account import Account

from ledger.consent.access import ChainState
from ledger.consent.access_trail import AccessAttempt, audit_document
from ledger.consent.terms import ConsentKey
from ledger.fhir.audit_events import Anchoring, AuditSource, access_audit_event, patient_read_event
from ledger.records.hashing import canonical_json
from ledger.store.access_trail import AccessEvent
from ledger.store.apps import Organisation

PATIENT = Account.create().address
ORGANISATION = Organisation(2, "General Hospital", "org-2", Account.create().address, False, 0)
SOURCE = AuditSource("https://ledger.example", 31337)
STATE = ChainState(31337, Account.create().address, 41, bytes(range(32)))


def _event(attempt: AccessAttempt, document: dict[str, Any]) -> AccessEvent:
    return AccessEvent(
        7,
        "4f1c2b9e0d7a4e53b8a61f0c9d2e7a31",
        ORGANISATION.id,
        3,
        PATIENT.lower(),
        attempt.scope,
        attempt.purpose,
        attempt.decision,
        attempt.reason,
        canonical_json(document).decode("utf-8"),
        1767229200.0,
        attempt.break_glass_tx,
    )


def _stored(attempt: AccessAttempt) -> AccessEvent:
    return _event(attempt, audit_document(ORGANISATION, 3, attempt, 1767229200.0, "00" * 16))


def _consent(event: dict[str, Any]) -> dict[str, Any]:
    found: dict[str, Any] = next(e for e in event["entity"] if e["type"]["code"] == "Consent")
    return found


def _details(entity: dict[str, Any]) -> dict[str, str]:
    return {d["type"]: d.get("valueString") or d.get("valueBase64Binary") for d in entity["detail"]}


CHAIN_DETAILS = {
    "decision-chain": "31337",
    "decision-registry": STATE.registry,
    "decision-block": "41",
    "decision-block-hash": "0x" + bytes(range(32)).hex(),
}


def test_an_allowed_decision_names_its_consent_and_block() -> None:
    every = ConsentKey(PATIENT, ORGANISATION.address, "*", "TREAT")
    attempt = AccessAttempt(
        PATIENT, "Observation", "TREAT", "allowed", decided_at=STATE, consent=every, fhir_consent="ab12"
    )
    event = _stored(attempt)
    consent = _consent(access_audit_event(event, ORGANISATION, SOURCE, Anchoring("pending")))
    assert consent["what"] == {
        "reference": "Consent/ab12",
        "identifier": {"system": "urn:careledger:consent", "value": f"{PATIENT}:{ORGANISATION.address}:*:TREAT"},
    }
    assert _details(consent) == {"decision": "permitted", **CHAIN_DETAILS}
    read = patient_read_event(event, ORGANISATION, SOURCE, Anchoring("pending"))
    assert _consent(read)["what"] == consent["what"]


def test_a_version_1_document_shows_the_key_asked_for_and_no_chain_state() -> None:
    attempt = AccessAttempt(PATIENT, "Observation", "TREAT", "denied", "revoked")
    document = audit_document(ORGANISATION, 3, attempt, 1767229200.0, "00" * 16)
    old = {k: v for k, v in document.items() if k not in ("decidedAt", "consent")} | {"version": 1}
    consent = _consent(access_audit_event(_event(attempt, old), ORGANISATION, SOURCE, Anchoring("pending")))
    key = f"{PATIENT}:{ORGANISATION.address}:Observation:TREAT"
    assert consent["what"] == {"identifier": {"system": "urn:careledger:consent", "value": key}}
    assert _details(consent) == {"decision": "revoked"}


def test_break_glass_carries_the_block_that_recorded_it_on_its_audit_record() -> None:
    attempt = AccessAttempt(PATIENT, "*", "ETREAT", "break_glass", "UNCONSCIOUS", b"\x5e" * 32, decided_at=STATE)
    event = _stored(attempt)
    for built in (access_audit_event, patient_read_event):
        resource = built(event, ORGANISATION, SOURCE, Anchoring("pending"))
        assert not [e for e in resource["entity"] if e["type"]["code"] == "Consent"]
        record = _details(resource["entity"][-1])
        assert record["break-glass-transaction"] == "0x" + "5e" * 32
        assert {k: record[k] for k in CHAIN_DETAILS} == CHAIN_DETAILS
