"""The audit trail of access attempts: written by ``/v1/access``, read per patient and per organisation.

Each attempt (allowed, denied or break-glass) is a small JSON document, stored in its RFC 8785
canonical form in ``access_events`` and registered, in the same intake submission, as a record of
kind ``audit`` of the caller's organisation (digest of the document, salted leaf). The batcher
anchors it with the organisation's other records, so the trail itself gets receipts: an auditor
can prove an entry existed, unaltered, by the time its batch was anchored.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Path, Query
from pydantic import ConfigDict, Field
from pydantic.alias_generators import to_camel

from api.deps import Caller, ServiceDep, requires
from api.limits import LedgerRoute
from api.routes.consent import PatientPath
from api.routes.records import record_out
from api.schemas import EXAMPLE_PATIENT, MAX_ROW_ID, Schema
from api.service import Service
from ledger.exceptions import PermissionDeniedError
from ledger.records.hashing import canonical_json, digest_json
from ledger.store.apps import Role
from ledger.store.intake import Statement
from ledger.store.records import INSERT_RECORD, RecordPayload, get_record, new_records
from ledger.values import checksum

router = APIRouter(prefix="/v1/audit", tags=["audit"], route_class=LedgerRoute)

Auditor = Annotated[Caller, Depends(requires(Role.READER, Role.REGISTRAR, Role.ADMIN))]
DOCUMENT_TYPE = "careledger/access-event"
DEFAULT_PAGE = 100
MAX_PAGE = 500

INSERT_ACCESS_EVENT = """
    INSERT INTO access_events (record_id, organisation_id, app_id, patient, scope, purpose, decision, reason,
                               document, created_at, chain_tx)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
"""
_COLUMNS = (
    "id, record_id, organisation_id, app_id, patient, scope, purpose, decision, reason, document, created_at, chain_tx"
)


@dataclass(frozen=True)
class AccessAttempt:
    """What an app asked for and what it was answered. ``reason``: why it was denied, or the
    break-glass reason code; ``break_glass_tx``: the transaction recording a break-glass access."""

    patient: str
    scope: str
    purpose: str
    decision: str
    reason: str | None = None
    break_glass_tx: str | None = None


def audit_document(caller: Caller, attempt: AccessAttempt, at: float) -> dict[str, Any]:
    """The anchored document of one attempt: who, about whom, what, for what, the answer, and when."""
    return {
        "type": DOCUMENT_TYPE,
        "version": 1,
        "patient": checksum(attempt.patient),
        "organisation": {"name": caller.organisation.name, "address": caller.organisation.address},
        "appId": caller.app.id,
        "scope": attempt.scope,
        "purpose": attempt.purpose,
        "decision": attempt.decision,
        "reason": attempt.reason,
        "breakGlass": attempt.decision == "break_glass",
        "breakGlassTx": attempt.break_glass_tx,
        "time": datetime.fromtimestamp(at, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
    }


def audit_statements(service: Service, caller: Caller, attempt: AccessAttempt) -> tuple[str, list[Statement]]:
    """The audit record's id and the statements writing it (record and access event together)."""
    now = time.time()
    document = audit_document(caller, attempt, now)
    (record,) = new_records(
        [RecordPayload(digest_json(document), attempt.patient.lower(), "application/json")],
        service.record_ids,
        kind="audit",
        organisation_id=caller.organisation.id,
        app_id=caller.app.id,
    )
    chain_tx = bytes.fromhex(attempt.break_glass_tx[2:]) if attempt.break_glass_tx else None
    event = (
        record.record_id,
        caller.organisation.id,
        caller.app.id,
        attempt.patient.lower(),
        attempt.scope,
        attempt.purpose,
        attempt.decision,
        attempt.reason,
        canonical_json(document).decode("utf-8"),
        record.created_at,
        chain_tx,
    )
    return record.record_id, [(INSERT_RECORD, [record.as_row()]), (INSERT_ACCESS_EVENT, [event])]


async def log_access(service: Service, caller: Caller, attempt: AccessAttempt) -> str:
    """Write one attempt durably (group commit); returns its audit record id."""
    if service.intake is None:
        raise RuntimeError("intake not running")
    record_id, statements = audit_statements(service, caller, attempt)
    await service.intake.submit(statements)
    return record_id


# --- reading -------------------------------------------------------------------------------------


class AuditEntryOut(Schema):
    """One access attempt, with the anchoring of its audit record (fetch the receipt by ``recordId``)."""

    id: int = Field(description="position in the trail; pass the last one as `after` for the next page")
    record_id: str
    patient: str
    organisation: dict[str, Any]
    app_id: int
    scope: str
    purpose: str
    decision: str = Field(description="allowed, denied or break_glass")
    reason: str | None
    break_glass: bool
    break_glass_tx: str | None
    time: float
    document: dict[str, Any] = Field(description="the anchored document (its RFC 8785 form is what was hashed)")
    status: str = Field(description="pending, sealed or anchored")
    batch: dict[str, Any] | None


class AuditPageOut(Schema):
    entries: list[AuditEntryOut]
    next_after: int | None = Field(description="`after` for the next page; null on the last page")

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "entries": [
                        {
                            "id": 7,
                            "recordId": "4f1c2b9e0d7a4e53b8a61f0c9d2e7a31",
                            "patient": EXAMPLE_PATIENT,
                            "organisation": {
                                "id": 2,
                                "name": "General Hospital",
                                "address": "0x5B38Da6a701c568545dCfcB03FcB875f56beddC4",
                            },
                            "appId": 3,
                            "scope": "Observation",
                            "purpose": "TREAT",
                            "decision": "denied",
                            "reason": "revoked",
                            "breakGlass": False,
                            "breakGlassTx": None,
                            "time": 1767229200.123,
                            "document": {
                                "type": DOCUMENT_TYPE,
                                "version": 1,
                                "decision": "denied",
                                "reason": "revoked",
                            },
                            "status": "anchored",
                            "batch": {
                                "root": "0x" + "ab" * 32,
                                "leafCount": 12,
                                "transactionHash": "0x" + "5e" * 32,
                                "blockNumber": 57,
                                "anchoredAt": 1767229202,
                                "anchorer": "0x5B38Da6a701c568545dCfcB03FcB875f56beddC4",
                            },
                        }
                    ],
                    "nextAfter": None,
                }
            ]
        },
    )


After = Annotated[int, Query(ge=0, le=MAX_ROW_ID, description="return entries after this id")]
Limit = Annotated[int, Query(ge=1, le=MAX_PAGE, description="at most this many entries")]


def _entry_out(service: Service, row: Any) -> dict[str, Any]:
    (
        id_,
        record_id,
        organisation_id,
        app_id,
        patient,
        scope,
        purpose,
        decision,
        reason,
        document,
        created_at,
        chain_tx,
    ) = row
    organisation = service.organisation(organisation_id)
    record = get_record(service.db.conn, record_id)
    assert record is not None  # access_events.record_id references records
    anchoring = record_out(service, record)
    return {
        "id": id_,
        "recordId": record_id,
        "patient": checksum(patient),
        "organisation": {"id": organisation.id, "name": organisation.name, "address": organisation.address},
        "appId": app_id,
        "scope": scope,
        "purpose": purpose,
        "decision": decision,
        "reason": reason,
        "breakGlass": decision == "break_glass",
        "breakGlassTx": "0x" + chain_tx.hex() if chain_tx else None,
        "time": created_at,
        "document": orjson.loads(document),
        "status": anchoring["status"],
        "batch": anchoring["batch"],
    }


def audit_page(service: Service, where: str, params: tuple[Any, ...], after: int, limit: int) -> dict[str, Any]:
    """One page of the trail: entries matching ``where`` after the id ``after`` (an ``AuditPageOut``)."""
    rows = service.db.conn.execute(
        f"SELECT {_COLUMNS} FROM access_events WHERE {where} AND id > ? ORDER BY id LIMIT ?",
        (*params, after, limit),
    ).fetchall()
    entries = [_entry_out(service, row) for row in rows]
    return {"entries": entries, "nextAfter": entries[-1]["id"] if len(entries) == limit else None}


@router.get("/patients/{patient}", response_model=AuditPageOut, summary="Access attempts about a patient")
def patient_trail(
    patient: PatientPath, caller: Auditor, service: ServiceDep, after: After = 0, limit: Limit = DEFAULT_PAGE
) -> dict[str, Any]:
    """An app sees its own organisation's entries; an app with the admin role sees every organisation's."""
    if Role.ADMIN in caller.app.roles:
        return audit_page(service, "patient = ?", (patient.lower(),), after, limit)
    return audit_page(
        service, "patient = ? AND organisation_id = ?", (patient.lower(), caller.organisation.id), after, limit
    )


@router.get(
    "/organisations/{organisation_id}",
    response_model=AuditPageOut,
    summary="Access attempts made by an organisation's apps",
)
def organisation_trail(
    organisation_id: Annotated[int, Path(ge=1, le=MAX_ROW_ID)],
    caller: Auditor,
    service: ServiceDep,
    after: After = 0,
    limit: Limit = DEFAULT_PAGE,
) -> dict[str, Any]:
    """An organisation sees its own trail; an app with the admin role sees any organisation's."""
    if organisation_id != caller.organisation.id and Role.ADMIN not in caller.app.roles:
        raise PermissionDeniedError("an organisation sees only its own audit trail", organisation_id=organisation_id)
    service.organisation(organisation_id)  # 404 for an unknown organisation
    return audit_page(service, "organisation_id = ?", (organisation_id,), after, limit)
