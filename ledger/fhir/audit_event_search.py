"""The facade's ``AuditEvent``s: the access trail as BALP events, read by id and searched page by page.

Each attempt of the trail (:mod:`ledger.store.access_trail`) is one ``AuthZconsent`` event and, when
it gave access, a ``PatientRead`` beside it (:func:`ledger.fhir.audit_events.audit_events_of`), in
trail order. Who sees what: an organisation the attempts its own apps made, a patient's session
the attempts about the patient; a search narrows that, never widens it. Pages hold ``count``
events; the next one starts at a cursor naming the first event left out (its id).

Once an attempt's audit record is anchored for good, its events' ``entity.detail`` carry the
receipt, transaction and root, and links to the receipt: the audit record's Provenance in this
facade (for the organisation and the patient) and ``/v1/records/<id>/receipt`` (for the organisation).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from ledger.disclosures.accounting import trail_entry
from ledger.exceptions import InputError, NotFoundError
from ledger.fhir.audit_events import (
    OUTCOME_DECISIONS,
    Anchoring,
    AuditSource,
    audit_events_of,
    parse_audit_event_id,
)
from ledger.fhir.consent_resources import Viewer
from ledger.fhir.date_search import TimeWindow, date_window
from ledger.fhir.search_parameters import DEFAULT_COUNT, page_count, reference_address, single_value
from ledger.records.receipts import Receipt
from ledger.store.access_trail import AccessEvent, access_event, access_events
from ledger.store.apps import Organisation, organisation_by_address
from ledger.store.database import Connection
from ledger.store.records import StoredRecord

SEARCH_PARAMETERS: Final = ("patient", "date", "agent", "outcome", "_count", "_cursor")
"""What an AuditEvent search may name; any other parameter is refused, not ignored."""
OUTCOME_SYSTEM: Final = "http://hl7.org/fhir/audit-event-outcome"
OUTCOMES: Final = ("0", "4", "8", "12")
"""The codes of ``AuditEvent.outcome``; the trail's events are 0 (access given) or 8 (denied)."""
MAX_DATES: Final = 2


@dataclass(frozen=True)
class AuditEventQuery:
    """A search: about ``patient``, by ``agent`` (an organisation's address), within ``window``, with
    ``outcome`` (``0`` or ``8``); ``count`` events from ``cursor`` on (None: from the first)."""

    patient: str | None = None
    agent: str | None = None
    window: TimeWindow = field(default_factory=TimeWindow)
    outcome: str | None = None
    count: int = DEFAULT_COUNT
    cursor: str | None = None


@dataclass(frozen=True)
class AuditEventPage:
    """The events of one page, and the cursor of the next (None on the last page)."""

    events: list[dict[str, Any]]
    next_cursor: str | None


@dataclass(frozen=True)
class AuditTrail:
    """How the trail is shown: this service on its chain, the facade's base URL, and the lookups
    an event needs (organisations by id, receipts of audit records)."""

    conn: Connection
    source: AuditSource
    base: str
    organisation_of: Callable[[int], Organisation]
    receipt_of: Callable[[StoredRecord], Receipt | None]

    def events_of(self, event: AccessEvent) -> list[dict[str, Any]]:
        """The attempt's events, with the links to its receipt once it has one."""
        entry = trail_entry(self.conn, event, self.organisation_of, self.receipt_of)
        links = {}
        if entry.receipt is not None:
            origin = self.source.origin.rstrip("/")
            links = {
                "receipt-url": f"{origin}/v1/records/{event.record_id}/receipt",
                "provenance-url": f"{self.base}/Provenance/{event.record_id}",
            }
        return audit_events_of(event, entry.recipient, self.source, Anchoring(entry.stage, entry.receipt, links))


def _sees(trail: AuditTrail, viewer: Viewer, event: AccessEvent) -> bool:
    if viewer.patient is not None:
        return event.patient == viewer.patient.lower()
    if viewer.organisation is None:
        return False
    return trail.organisation_of(event.organisation_id).address.lower() == viewer.organisation.lower()


def read_audit_event(trail: AuditTrail, viewer: Viewer, event_id: str) -> dict[str, Any]:
    """The event ``event_id`` names, if the viewer may see it.

    Raises:
        NotFoundError: No such event, or one the viewer may not see (the same answer).
    """
    named = parse_audit_event_id(event_id)
    event = access_event(trail.conn, named[0]) if named is not None else None
    if event is not None and _sees(trail, viewer, event):
        found = [e for e in trail.events_of(event) if e["id"] == event_id]
        if found:
            return found[0]
    raise NotFoundError(f"no AuditEvent {event_id!r}", resource=f"AuditEvent/{event_id}")


def _organisation_id(conn: Connection, address: str) -> int | None:
    organisation = organisation_by_address(conn, address)
    return organisation.id if organisation is not None else None


def _scope(trail: AuditTrail, viewer: Viewer, query: AuditEventQuery) -> tuple[str | None, int | None] | None:
    """The patient and organisation id to read the trail for, or None when nothing can match."""
    patient = query.patient.lower() if query.patient is not None else None
    if viewer.patient is not None:
        if patient is not None and patient != viewer.patient.lower():
            return None
        patient = viewer.patient.lower()
    agents = [a for a in (viewer.organisation, query.agent) if a is not None]
    if len({a.lower() for a in agents}) > 1:
        return None
    organisation_id = _organisation_id(trail.conn, agents[0]) if agents else None
    if agents and organisation_id is None:
        return None
    return patient, organisation_id


def _outcome(text: str | None) -> str | None:
    if text is None:
        return None
    code = text.removeprefix(f"{OUTCOME_SYSTEM}|")
    if code not in OUTCOMES:
        raise InputError(f"outcome is one of {', '.join(OUTCOMES)}", field="outcome")
    return code


def audit_event_query(params: Mapping[str, Sequence[str]]) -> AuditEventQuery:
    """A search from its query parameters (each name's values in order).

    Raises:
        InputError: An unknown parameter, one given too often, or a malformed value.
    """
    unknown = sorted(set(params) - set(SEARCH_PARAMETERS))
    if unknown:
        raise InputError(f"unsupported search parameters: {', '.join(unknown)}", field=unknown[0])
    dates = params.get("date", ())
    if len(dates) > MAX_DATES:
        raise InputError(f"date is given at most {MAX_DATES} times (a range)", field="date")
    patient, agent = single_value(params, "patient"), single_value(params, "agent")
    return AuditEventQuery(
        patient=reference_address(patient, "Patient", "patient") if patient is not None else None,
        agent=reference_address(agent, "Organization", "agent") if agent is not None else None,
        window=date_window(dates),
        outcome=_outcome(single_value(params, "outcome")),
        count=page_count(single_value(params, "_count")),
        cursor=single_value(params, "_cursor"),
    )


def search_audit_events(trail: AuditTrail, viewer: Viewer, query: AuditEventQuery) -> AuditEventPage:
    """One page of the events the viewer sees that match ``query``, in trail order.

    Raises:
        InputError: The cursor is not one this search gave.
    """
    start = parse_audit_event_id(query.cursor) if query.cursor is not None else None
    if query.cursor is not None and start is None:
        raise InputError("_cursor is not a cursor this search gave", field="_cursor")
    scope = _scope(trail, viewer, query)
    if scope is None or (viewer.patient is None and viewer.organisation is None):
        return AuditEventPage([], None)
    patient, organisation_id = scope
    decisions = OUTCOME_DECISIONS.get(query.outcome, frozenset()) if query.outcome is not None else None
    rows = access_events(
        trail.conn,
        patient=patient,
        organisation_id=organisation_id,
        after=start[0] - 1 if start is not None else 0,
        limit=query.count + 1,  # every attempt has at least one event: enough to know if a page follows
        since=query.window.since,
        until=query.window.until,
        decisions=decisions,
    )
    events = [e for row in rows for e in trail.events_of(row)]
    if start is not None and start[1] == "read":
        events = [e for e in events if e["id"] != f"{start[0]}-authz"]
    page = events[: query.count]
    return AuditEventPage(page, events[query.count]["id"] if len(events) > query.count else None)
