"""A patient's accounting of disclosures: the access trail of a period, in three sections, with receipts.

Every access decision about a patient is an anchored audit record (:mod:`ledger.consent.access_trail`),
so the accounting is the trail itself, read for the patient and the period, never a second copy:

* ``disclosures``: accesses the patient's consent allowed (164.528(b)(2): date, recipient, what,
  why);
* ``break_glass``: emergency accesses without consent, recorded on chain;
* ``denied``: attempts refused (nothing was disclosed; listed so the patient sees every request).

Each entry carries the audit document as anchored (its RFC 8785 form is what was hashed) and, once
its batch is final, the receipt of its audit record: with the two, anyone can check the entry
against any node of the chain. The recipient is named as the organisation's name, its account on
chain and the postal address it registered with CareLedger, when it did (:data:`POSTAL_ADDRESS_NOTE`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final, Literal

import orjson

from ledger.consent.access import NOT_EMERGENCY, NOT_EMERGENCY_PURPOSE
from ledger.consent.codes import PURPOSES_OF_USE, SCOPE_LABELS
from ledger.disclosures.period import Period
from ledger.exceptions import AccountingTooLargeError, IntegrityError
from ledger.records.lifecycle import Stage, stage_of
from ledger.records.receipts import Receipt
from ledger.store.access_trail import AccessEvent, access_events
from ledger.store.apps import Organisation
from ledger.store.database import Connection
from ledger.store.records import StoredRecord, get_batch, get_record
from ledger.values import checksum

MAX_ENTRIES: Final = 2000
"""Most entries in one accounting (each carries its document and receipt); a longer one is refused
with :class:`~ledger.exceptions.AccountingTooLargeError`: ask for shorter periods."""

Section = Literal["disclosures", "break_glass", "denied"]
SECTIONS: Final[dict[str, Section]] = {"allowed": "disclosures", "break_glass": "break_glass", "denied": "denied"}
"""The section of each decision the access trail records."""

POSTAL_ADDRESS_NOTE: Final = (
    "Each recipient is named by its organisation name, its account address on the blockchain and, where "
    "the organisation has registered one with CareLedger, its postal address as registered today. Where no "
    "address is shown, ask the organisation, or CareLedger's operator, for it."
)
DENIED_NOTE: Final = "Denied attempts disclosed nothing; they are listed so that you see every request for your data."
RECEIPT_NOTE: Final = (
    "Each entry carries the receipt of its anchored audit record: `careledger-audit verify --receipt "
    "receipt.json --document document.json` checks it against any node of the chain. An entry without a "
    "receipt is not anchored yet."
)
NOTES: Final = (POSTAL_ADDRESS_NOTE, DENIED_NOTE, RECEIPT_NOTE)


def scope_description(scope: str) -> str:
    """The data an entry concerns, in plain words with its code: ``test results and measurements (Observation)``."""
    label = SCOPE_LABELS.get(scope)
    return f"{label} ({scope})" if label else f"data of type {scope}"


def purpose_description(purpose: str) -> str:
    """A purpose of use in plain words with its code: ``treatment (TREAT)``."""
    label = PURPOSES_OF_USE.get(purpose)
    return f"{label} ({purpose})" if label else purpose


REFUSALS: Final[dict[str, str]] = {
    "revoked": "you had withdrawn your consent",
    "expired": "your consent had ended",
    "not_yet_valid": "your consent had not started yet",
    "no_consent": "you had not given consent",
    NOT_EMERGENCY: "the organisation may not use emergency access",
    NOT_EMERGENCY_PURPOSE: "the purpose given is no emergency",
}
"""Why an attempt was denied (the trail's reason codes), in plain words."""


def refusal_description(reason: str | None) -> str:
    """Why an attempt was denied, in plain words with the trail's code."""
    if reason is None:
        return "not permitted"
    text = REFUSALS.get(reason)
    return f"{text} ({reason})" if text else reason


@dataclass(frozen=True)
class AccountingEntry:
    """One attempt of the trail: who asked, its anchored document, and how far its audit record is."""

    event: AccessEvent
    recipient: Organisation
    document: dict[str, Any]
    stage: Stage
    receipt: Receipt | None

    @property
    def section(self) -> Section:
        return SECTIONS[self.event.decision]

    @property
    def date(self) -> str:
        """When it happened, as anchored (ISO 8601, UTC, milliseconds)."""
        return str(self.document["time"])

    @property
    def description(self) -> str:
        return scope_description(self.event.scope)

    @property
    def purpose(self) -> str:
        return purpose_description(self.event.purpose)


@dataclass(frozen=True)
class Accounting:
    """The accounting of ``patient`` for ``period``: every entry, oldest first, in its section."""

    patient: str
    period: Period
    generated_at: float
    entries: tuple[AccountingEntry, ...]

    def section(self, name: Section) -> list[AccountingEntry]:
        return [entry for entry in self.entries if entry.section == name]


def accounting_of(
    conn: Connection,
    patient: str,
    period: Period,
    *,
    organisation_of: Callable[[int], Organisation],
    receipt_of: Callable[[StoredRecord], Receipt | None],
    generated_at: float,
    limit: int | None = None,
) -> Accounting:
    """The patient's accounting for ``period`` from the access trail.

    Args:
        conn: The store.
        patient: The patient's address.
        period: The days covered (the trail's times, UTC).
        organisation_of: An organisation by id (a caller may keep them cached).
        receipt_of: A stored record's receipt, or None until its batch is final.
        generated_at: When the accounting is made (unix seconds).
        limit: Most entries (default :data:`MAX_ENTRIES`).

    Raises:
        AccountingTooLargeError: The period holds more than ``limit`` attempts.
    """
    limit = MAX_ENTRIES if limit is None else limit
    events = access_events(conn, patient=patient, since=period.since, until=period.until, after=0, limit=limit + 1)
    if len(events) > limit:
        raise AccountingTooLargeError(
            f"the accounting from {period.start} to {period.end} holds more than {limit} entries; "
            "ask for shorter periods",
            field="from",
            limit=limit,
            start=str(period.start),
            end=str(period.end),
        )
    entries = tuple(trail_entry(conn, event, organisation_of, receipt_of) for event in events)
    return Accounting(checksum(patient), period, generated_at, entries)


def trail_entry(
    conn: Connection,
    event: AccessEvent,
    organisation_of: Callable[[int], Organisation],
    receipt_of: Callable[[StoredRecord], Receipt | None],
) -> AccountingEntry:
    """One attempt of the trail with its recipient, its anchored document and its audit record's
    stage and receipt.

    Raises:
        IntegrityError: The attempt has an unknown decision or names no stored record.
    """
    if event.decision not in SECTIONS:
        raise IntegrityError(f"access event {event.id} has an unknown decision", decision=event.decision)
    record = get_record(conn, event.record_id)
    if record is None:  # access_events.record_id references records
        raise IntegrityError(f"access event {event.id} names no stored record", record_id=event.record_id)
    batch = get_batch(conn, record.batch_id) if record.batch_id is not None else None
    return AccountingEntry(
        event=event,
        recipient=organisation_of(event.organisation_id),
        document=orjson.loads(event.document),
        stage=stage_of(batch),
        receipt=receipt_of(record),
    )
