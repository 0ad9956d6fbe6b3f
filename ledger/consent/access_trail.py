"""The audit trail of access attempts: each attempt a small JSON document, anchored as a record.

Each attempt (allowed, denied or break-glass) is stored in its RFC 8785 canonical form in the
access trail (:mod:`ledger.store.access_trail`) and registered, in the same intake submission, as
a record of kind ``audit`` of the caller's organisation (digest of the document, salted leaf). The
batcher anchors it with the organisation's other records, so the trail itself gets receipts: an
auditor can prove an entry existed, unaltered, by the time its batch was anchored.

Documents of version 2 (:data:`DOCUMENT_VERSION`) also say at which chain state the decision was
made (``decidedAt``: chain id, ConsentRegistry, block number and hash) and which consent decided
(``consent``: its on-chain key and, when a FHIR Consent of the facade granted it, that Consent).
Version 1 documents, written before, lack both; readers take either.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ledger.consent.access import ChainState
from ledger.consent.terms import ConsentKey
from ledger.records.hashing import canonical_json, digest_json
from ledger.records.lifecycle import RecordStanding, standing_of
from ledger.store.access_trail import AccessEvent, access_event_statement, access_events
from ledger.store.apps import Organisation
from ledger.store.database import Connection
from ledger.store.intake import Statement
from ledger.store.records import RecordIds, RecordPayload, get_record, insert_records_statement, new_records
from ledger.values import checksum

DOCUMENT_TYPE = "careledger/access-event"
DOCUMENT_VERSION = 2
"""The version of the documents written now: 2 added ``decidedAt`` and ``consent`` to version 1."""
NONCE_BYTES = 16
"""Random bytes in every access-trail document (as hex): 128 bits no one can guess."""


@dataclass(frozen=True)
class AccessAttempt:
    """What an app asked for and what it was answered. ``reason``: why it was denied, or the
    break-glass reason code; ``break_glass_tx``: the transaction recording a break-glass access.

    ``decided_at``: the chain state the answer was read at (a consent decision's block; a
    break-glass access's, the block of its transaction), None when no chain state decided (a
    break-glass attempt refused before anything was sent). ``consent``: the key of the consent that
    decided (None for break-glass and for ``no_consent``); ``fhir_consent``: the id of the facade's
    FHIR Consent that granted that key, when one did and the chain index shows it."""

    patient: str
    scope: str
    purpose: str
    decision: str
    reason: str | None = None
    break_glass_tx: bytes | None = None
    decided_at: ChainState | None = None
    consent: ConsentKey | None = None
    fhir_consent: str | None = None


def _decided_at(state: ChainState | None) -> dict[str, Any] | None:
    if state is None:
        return None
    return {
        "chainId": state.chain_id,
        "registry": state.registry,
        "block": state.block,
        "blockHash": "0x" + state.block_hash.hex(),
    }


def _consent(attempt: AccessAttempt) -> dict[str, Any] | None:
    if attempt.consent is None:
        return None
    reference = None if attempt.fhir_consent is None else f"Consent/{attempt.fhir_consent}"
    return {"key": attempt.consent.text(), "fhirConsent": reference}


def audit_document(
    organisation: Organisation, app_id: int, attempt: AccessAttempt, at: float, nonce: str
) -> dict[str, Any]:
    """The anchored document of one attempt: who, about whom, what, for what, the answer, when, at
    which chain state (``decidedAt``) and by which consent (``consent``; both null when none).

    Everything but the ``nonce`` is guessable (the organisations are public, the rest a small set
    of codes, a timestamp and a public block), so the nonce is what keeps anyone without the
    document from confirming an entry by hashing candidates."""
    return {
        "type": DOCUMENT_TYPE,
        "version": DOCUMENT_VERSION,
        "nonce": nonce,
        "patient": checksum(attempt.patient),
        "organisation": {"name": organisation.name, "address": organisation.address},
        "appId": app_id,
        "scope": attempt.scope,
        "purpose": attempt.purpose,
        "decision": attempt.decision,
        "reason": attempt.reason,
        "breakGlass": attempt.decision == "break_glass",
        "breakGlassTx": "0x" + attempt.break_glass_tx.hex() if attempt.break_glass_tx else None,
        "time": datetime.fromtimestamp(at, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "decidedAt": _decided_at(attempt.decided_at),
        "consent": _consent(attempt),
    }


@dataclass(frozen=True)
class RecordedDecision:
    """What an anchored document says decided its attempt: the chain state, the deciding consent's
    key (``patient:grantee:scope:purpose``) and the FHIR Consent (``Consent/<id>``) that granted it.
    Each is None when the document names none (always, for a version 1 document)."""

    decided_at: ChainState | None
    consent_key: str | None
    fhir_consent: str | None


def recorded_decision(document: Mapping[str, Any]) -> RecordedDecision:
    """Read ``decidedAt`` and ``consent`` back from an attempt's document (of version 1 or 2)."""
    decided, consent = document.get("decidedAt"), document.get("consent")
    state = None
    if isinstance(decided, Mapping):
        block_hash = bytes.fromhex(str(decided["blockHash"]).removeprefix("0x"))
        state = ChainState(int(decided["chainId"]), str(decided["registry"]), int(decided["block"]), block_hash)
    if not isinstance(consent, Mapping):
        return RecordedDecision(state, None, None)
    reference = consent.get("fhirConsent")
    return RecordedDecision(state, str(consent["key"]), None if reference is None else str(reference))


def audit_statements(
    ids: RecordIds, organisation: Organisation, app_id: int, attempt: AccessAttempt
) -> tuple[str, list[Statement]]:
    """The audit record's id and the statements writing it (record and access event together).

    The event's time is the document's, to the millisecond, so searches by time (the FHIR facade's
    ``date``) agree with the time anchored."""
    at = round(time.time(), 3)
    document = audit_document(organisation, app_id, attempt, at, secrets.token_hex(NONCE_BYTES))
    (record,) = new_records(
        [RecordPayload(digest_json(document), attempt.patient.lower(), "application/json")],
        ids,
        kind="audit",
        organisation_id=organisation.id,
        app_id=app_id,
    )
    event = access_event_statement(
        record_id=record.record_id,
        organisation_id=organisation.id,
        app_id=app_id,
        patient=attempt.patient,
        scope=attempt.scope,
        purpose=attempt.purpose,
        decision=attempt.decision,
        reason=attempt.reason,
        document=canonical_json(document).decode("utf-8"),
        created_at=at,
        chain_tx=attempt.break_glass_tx,
    )
    return record.record_id, [insert_records_statement([record]), event]


@dataclass(frozen=True)
class TrailEntry:
    """One attempt of the trail and where its audit record stands."""

    event: AccessEvent
    standing: RecordStanding


@dataclass(frozen=True)
class TrailPage:
    """Entries of the trail in order, and the ``after`` for the next page (None on the last)."""

    entries: list[TrailEntry]
    next_after: int | None


def trail_page(
    conn: Connection, *, patient: str | None = None, organisation_id: int | None = None, after: int, limit: int
) -> TrailPage:
    """One page of attempts about ``patient`` and/or by ``organisation_id``, after the id ``after``."""
    events = access_events(conn, patient=patient, organisation_id=organisation_id, after=after, limit=limit)
    entries = []
    for event in events:
        record = get_record(conn, event.record_id)
        assert record is not None  # access_events.record_id references records
        entries.append(TrailEntry(event, standing_of(conn, record)))
    return TrailPage(entries, events[-1].id if len(events) == limit else None)
