"""Searching the facade's ``Provenance``s: those of anchored records, by target and patient, page by page.

Who sees what follows the read (:func:`~ledger.fhir.provenance.readable_provenance`): an
organisation the records it registered, a patient's session the records about the patient; a
search narrows that, never widens it, and a record the viewer may not see is simply not found (an
empty page, as for a record that does not exist). Only records anchored for good have a Provenance:
pending and still-confirming ones are not listed. Pages hold ``count`` Provenances in record order;
the next one starts at a cursor naming the first record left out (its id).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from ledger.exceptions import InputError
from ledger.fhir import systems
from ledger.fhir.consent_resources import Viewer
from ledger.fhir.provenance import record_provenance
from ledger.fhir.search_parameters import DEFAULT_COUNT, page_count, reference_address, refuse_unknown, single_value
from ledger.records.receipts import Receipt
from ledger.store.apps import Organisation, organisation_by_address
from ledger.store.database import Connection
from ledger.store.records import RECORD_ID_REGEX, StoredRecord, final_records

SEARCH_PARAMETERS: Final = ("target", "patient", "_count", "_cursor")
"""What a Provenance search may name; any other parameter is refused, not ignored."""
_RECORD_ID: Final = re.compile(RECORD_ID_REGEX)


@dataclass(frozen=True)
class ProvenanceQuery:
    """A search: of the record ``target`` (its id), about ``patient`` (an address); ``count``
    Provenances from the record ``cursor`` on (None: from the first)."""

    target: str | None = None
    patient: str | None = None
    count: int = DEFAULT_COUNT
    cursor: str | None = None


@dataclass(frozen=True)
class ProvenancePage:
    """The Provenances of one page, and the cursor of the next (None on the last page)."""

    provenances: list[dict[str, Any]]
    next_cursor: str | None


def _record_id(value: str, field: str) -> str:
    if not _RECORD_ID.fullmatch(value):
        raise InputError(f"{field} is a record id (32 hex digits)", field=field)
    return value


def _target(value: str) -> str:
    """The record id a ``target`` names: the id, or the record's identifier ``<system>|<id>``."""
    system, bar, record_id = value.rpartition("|")
    if bar and system != systems.RECORD_SYSTEM:
        raise InputError(f"target is a record id or {systems.RECORD_SYSTEM}|<record id>", field="target")
    return _record_id(record_id, "target")


def provenance_query(params: Mapping[str, Sequence[str]]) -> ProvenanceQuery:
    """A search from its query parameters (each name's values in order).

    Raises:
        InputError: An unknown parameter, one given twice, or a malformed value.
    """
    refuse_unknown(params, SEARCH_PARAMETERS)
    target, patient, cursor = (single_value(params, name) for name in ("target", "patient", "_cursor"))
    return ProvenanceQuery(
        target=_target(target) if target is not None else None,
        patient=reference_address(patient, "Patient", "patient") if patient is not None else None,
        count=page_count(single_value(params, "_count")),
        cursor=_record_id(cursor, "_cursor") if cursor is not None else None,
    )


def _scope(conn: Connection, viewer: Viewer, query: ProvenanceQuery) -> tuple[int | None, str | None] | None:
    """The organisation id and patient whose records to read, or None when nothing can match."""
    patient = query.patient.lower() if query.patient is not None else None
    if viewer.patient is not None:
        if patient is not None and patient != viewer.patient.lower():
            return None
        return None, viewer.patient.lower()
    if viewer.organisation is None:
        return None
    organisation = organisation_by_address(conn, viewer.organisation)
    return (organisation.id, patient) if organisation is not None else None


def search_provenance(
    conn: Connection,
    viewer: Viewer,
    query: ProvenanceQuery,
    *,
    receipt_of: Callable[[StoredRecord], Receipt | None],
    organisation_of: Callable[[int], Organisation],
) -> ProvenancePage:
    """One page of the Provenances the viewer sees that match ``query``, in record order."""
    scope = _scope(conn, viewer, query)
    if scope is None:
        return ProvenancePage([], None)
    organisation_id, patient = scope
    rows = final_records(
        conn,
        organisation_id=organisation_id,
        patient=patient,
        record_id=query.target,
        from_row=int(query.cursor[:16], 16) if query.cursor is not None else 0,
        limit=query.count + 1,  # one more: enough to know if a page follows
    )
    provenances = []
    for record in rows[: query.count]:
        receipt = receipt_of(record)
        if receipt is not None:  # final_records gives only final ones; a reorg since is not listed
            name = organisation_of(record.organisation_id).name
            provenances.append(record_provenance(record.record_id, receipt, organisation=name))
    return ProvenancePage(provenances, rows[query.count].record_id if len(rows) > query.count else None)
