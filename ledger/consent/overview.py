"""A patient's consents now, their guardians, and the history behind both.

The keys come from the chain event index (never a chain scan); each key's state is then read from
the contract's ``consentOf`` and each guardian's from ``guardianUntil``, so the answer is the
chain's own. The history is as recent as the index (``indexed_to``).
"""

from __future__ import annotations

from dataclasses import dataclass

from ledger.chain.client import Chain
from ledger.chain.contracts import CONSENT_CHANGE_EVENTS, GUARDIAN_EVENTS
from ledger.consent.registry import ConsentRegistryClient
from ledger.consent.terms import ConsentKey, ConsentState, consent_state
from ledger.exceptions import InputError
from ledger.store.apps import organisation_by_address
from ledger.store.chain_index import IndexedEvent, indexed_to, patient_events
from ledger.store.database import Connection
from ledger.values import checksum, encode_code


@dataclass(frozen=True)
class ConsentNow:
    """One consent key of the patient and its state on chain now."""

    grantee: str
    grantee_organisation: str | None
    scope: str
    purpose: str
    state: ConsentState
    valid_from: int
    valid_until: int
    updated_at: int


@dataclass(frozen=True)
class GuardianNow:
    """One guardian the patient ever appointed, and until when the appointment holds (0: removed)."""

    guardian: str
    valid_until: int
    active: bool


@dataclass(frozen=True)
class ConsentOverview:
    """The patient's consents and guardians now, and the indexed history behind them."""

    patient: str
    consents: list[ConsentNow]
    guardians: list[GuardianNow]
    history: list[IndexedEvent]
    indexed_to_block: int | None


def consent_overview(consents: ConsentRegistryClient, chain: Chain, conn: Connection, patient: str) -> ConsentOverview:
    """Everything the patient (or the page acting for them) sees about their consents."""
    events = patient_events(conn, patient)
    now = chain.block_timestamp("latest")
    keys = dict.fromkeys(e.consent_terms() for e in events if e.event in CONSENT_CHANGE_EVENTS)
    guardians = dict.fromkeys(e.fields["guardian"] for e in events if e.event in GUARDIAN_EVENTS)
    guardians_now = []
    for guardian in guardians:
        until = consents.guardian_until(patient, guardian)
        guardians_now.append(GuardianNow(guardian, until, until > now))
    return ConsentOverview(
        patient,
        [_consent_now(consents, conn, patient, *key, now) for key in keys],
        guardians_now,
        events,
        indexed_to(conn),
    )


def consents_granted_to(
    consents: ConsentRegistryClient, chain: Chain, conn: Connection, patient: str, grantee: str
) -> list[ConsentNow]:
    """The patient's consents to one grantee now: what an organisation may see of a patient's
    consents (never those to others, never guardians or history: those are the patient's own)."""
    grantee = checksum(grantee)
    now = chain.block_timestamp("latest")
    keys = dict.fromkeys(
        (e.fields["scope"], e.fields["purpose"])
        for e in patient_events(conn, patient)
        if e.event in CONSENT_CHANGE_EVENTS and e.fields["grantee"] == grantee
    )
    return [_consent_now(consents, conn, patient, grantee, scope, purpose, now) for scope, purpose in keys]


def _consent_now(
    consents: ConsentRegistryClient, conn: Connection, patient: str, grantee: str, scope: str, purpose: str, now: int
) -> ConsentNow:
    try:
        stored = consents.consent_of(ConsentKey(patient, grantee, scope, purpose), as_of=now)
        window, state = (stored.valid_from, stored.valid_until, stored.updated_at), stored.state
    except InputError:  # granted directly with a code the library does not accept: read it raw
        valid_from, valid_until, updated_at, status = consents.stored_consent(
            patient, grantee, _code_bytes(scope), _code_bytes(purpose)
        )
        window, state = (valid_from, valid_until, updated_at), consent_state(status, valid_from, valid_until, now)
    organisation = organisation_by_address(conn, grantee)
    return ConsentNow(grantee, organisation.name if organisation else None, scope, purpose, state, *window)


def _code_bytes(code: str) -> bytes:
    """A code as stored on chain (codes outside the alphabet come back from the index as 0x-hex)."""
    return bytes.fromhex(code[2:]) if code.startswith("0x") and len(code) == 66 else encode_code(code)
