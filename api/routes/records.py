"""Registering records, reading them back, their receipts, amendments and retractions."""

from __future__ import annotations

import asyncio
import time
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Header, Query, Request, Response

from api.deps import Caller, Reader, Registrar, ServiceDep
from api.idempotency import check_key, is_key_conflict, remember, replay, request_hash
from api.limits import LedgerRoute, json_body
from api.registration import ack, build_records, bulk_payloads, insert_statement
from api.schemas import PendingOut, RecordAck, RecordIn, RecordOut, RecordsAck, RecordsIn, RetractIn
from api.service import Service
from ledger.exceptions import ConflictError, InputError, NotFoundError
from ledger.records.anchoring import AnchoredBatch
from ledger.records.receipts import Receipt, issue_receipts
from ledger.store.database import INTEGRITY_ERRORS
from ledger.store.intake import Statement
from ledger.store.records import NewRecord, StoredRecord, get_batch, get_record, new_records, records_by_digest

router = APIRouter(prefix="/v1/records", tags=["records"], route_class=LedgerRoute)
receipts_router = APIRouter(prefix="/v1/receipts", tags=["records"], route_class=LedgerRoute)

IdempotencyKey = Annotated[
    str | None,
    Header(alias="Idempotency-Key", max_length=255, description="Repeat a POST safely: the first answer is returned."),
]
MAX_WAIT_SECONDS = 30.0


async def _commit(
    service: Service,
    request: Request,
    caller: Caller,
    key: str | None,
    statements: list[Statement],
    status_code: int,
    body: Any,
) -> Response:
    """Write the request's statements (with its idempotent answer) durably, then answer."""
    if service.intake is None:
        raise RuntimeError("intake not running")
    encoded = orjson.dumps(body)
    if key is not None:
        fingerprint = request_hash(request.method, request.url.path, await request.body())
        statement, encoded = remember(caller.app.id, key, fingerprint, status_code, body)
        statements = [*statements, statement]
    try:
        await service.intake.submit(statements)
    except INTEGRITY_ERRORS as err:
        if key is not None and is_key_conflict(err):  # a concurrent request with the same key won
            replayed = replay(service.db, caller.app.id, key, fingerprint)
            if replayed is not None:
                return replayed
        raise ConflictError("the request conflicts with stored data") from err
    return Response(content=encoded, status_code=status_code, media_type="application/json")


def _build(service: Service, caller: Caller, records: list[RecordIn]) -> list[NewRecord]:
    return build_records(records, service.record_ids, organisation_id=caller.organisation.id, app_id=caller.app.id)


async def _replayed(service: Service, request: Request, caller: Caller, key: str | None) -> Response | None:
    if key is None:
        return None
    return replay(service.db, caller.app.id, key, request_hash(request.method, request.url.path, await request.body()))


@router.post(
    "",
    status_code=202,
    response_model=RecordAck,
    summary="Register one record",
    responses={202: {"description": "acknowledged: durable, to be anchored in the next batch"}},
)
async def register_record(
    record: RecordIn, request: Request, caller: Registrar, service: ServiceDep, idempotency_key: IdempotencyKey = None
) -> Response:
    """Acknowledge a record once it is durable. Only a salted commitment to its digest will reach
    the chain; the document itself is not stored."""
    key = check_key(idempotency_key)
    if (replayed := await _replayed(service, request, caller, key)) is not None:
        return replayed
    (built,) = _build(service, caller, [record])
    return await _commit(service, request, caller, key, [insert_statement([built])], 202, ack(built))


@router.post(
    "/bulk",
    status_code=202,
    response_model=RecordsAck,
    summary="Register many records at once",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {
                        k: v
                        for k, v in RecordsIn.model_json_schema(ref_template="#/components/schemas/{model}").items()
                        if k != "$defs"
                    }
                }
            },
        }
    },
)
async def register_records(
    request: Request, caller: Registrar, service: ServiceDep, idempotency_key: IdempotencyKey = None
) -> Response:
    """All or nothing: one bad record refuses the whole request (its index is in the error details).
    The body is ``RecordsIn``; it is checked by hand for speed (records with just a patient and a
    digest), exactly as strictly as the model."""
    key = check_key(idempotency_key)
    payloads = bulk_payloads(await json_body(request), service.settings.max_records_per_request)
    if (replayed := await _replayed(service, request, caller, key)) is not None:
        return replayed
    built = new_records(
        payloads, service.record_ids, kind="record", organisation_id=caller.organisation.id, app_id=caller.app.id
    )
    answer = {"records": [ack(r) for r in built], "count": len(built)}
    return await _commit(service, request, caller, key, [insert_statement(built)], 202, answer)


def _own_record(service: Service, caller: Caller, record_id: str) -> StoredRecord:
    record = get_record(service.db.conn, record_id)
    if record is None or record.organisation_id != caller.organisation.id:
        raise NotFoundError(f"no record {record_id!r} of this organisation", record_id=record_id)
    return record


def _status(service: Service, record: StoredRecord) -> tuple[str, dict[str, Any] | None]:
    if record.batch_id is None:
        return "pending", None
    batch = get_batch(service.db.conn, record.batch_id)
    assert batch is not None
    if not batch.anchored:
        return "sealed", {"root": "0x" + batch.root.hex(), "leafCount": batch.leaf_count}
    assert batch.tx_hash is not None
    return "anchored" if batch.final else "confirming", {
        "root": "0x" + batch.root.hex(),
        "leafCount": batch.leaf_count,
        "transactionHash": "0x" + batch.tx_hash.hex(),
        "blockNumber": batch.block_number,
        "anchoredAt": batch.anchored_at,
        "anchorer": batch.anchorer,
    }


def record_out(service: Service, record: StoredRecord) -> dict[str, Any]:
    status, batch = _status(service, record)
    conn = service.db.conn
    changes = conn.execute(
        "SELECT kind, record_id, replacement_id, reason, state, tx_hash, error FROM record_changes "
        "WHERE record_id = ? OR replacement_id = ?",
        (record.record_id, record.record_id),
    ).fetchall()
    out: dict[str, Any] = {
        "recordId": record.record_id,
        "kind": record.kind,
        "digest": "0x" + record.digest.hex(),
        "patient": record.patient,
        "contentType": record.content_type,
        "metadata": orjson.loads(record.metadata) if record.metadata else None,
        "registeredAt": record.created_at,
        "status": status,
        "batch": batch,
        "amendedBy": None,
        "amends": None,
        "retraction": None,
    }
    for kind, original, replacement, reason, state, tx_hash, error in changes:
        change = {"state": state, "transactionHash": "0x" + tx_hash.hex() if tx_hash else None, "error": error}
        if kind == "amend" and original == record.record_id:
            out["amendedBy"] = replacement
        elif kind == "amend":
            out["amends"] = original
        else:
            out["retraction"] = {"reason": reason, **change}
    return out


@router.get("/{record_id}", response_model=RecordOut, summary="A record and its anchoring status")
def read_record(record_id: str, caller: Reader, service: ServiceDep) -> dict[str, Any]:
    return record_out(service, _own_record(service, caller, record_id))


def receipt_for(service: Service, record: StoredRecord) -> Receipt | None:
    """The record's receipt, or None until its batch is anchored and final (confirmed)."""
    if record.batch_id is None:
        return None
    batch = get_batch(service.db.conn, record.batch_id)
    if batch is None or not batch.final:
        return None
    assert batch.tx_hash is not None and batch.block_number is not None and batch.anchored_at is not None
    assert batch.anchorer is not None
    tree = service.trees.tree(batch)
    anchored = AnchoredBatch(
        root=batch.root,
        leaf_count=batch.leaf_count,
        anchorer=batch.anchorer,
        tx_hash="0x" + batch.tx_hash.hex(),
        block_number=batch.block_number,
        anchored_at=batch.anchored_at,
        gas_used=batch.gas_used or 0,
    )
    deployment = service.ledger.deployment
    (receipt,) = issue_receipts(
        tree, [(record.salt, record.digest)], anchored, chain_id=deployment.chain_id, contract=deployment.record_anchor
    )
    return receipt


@router.get(
    "/{record_id}/receipt",
    summary="The record's receipt (wait for it with ?wait=true)",
    responses={200: {"description": "the receipt"}, 202: {"model": PendingOut, "description": "not anchored yet"}},
)
async def read_receipt(
    record_id: str,
    caller: Reader,
    service: ServiceDep,
    wait: Annotated[bool, Query(description="hold the request until the receipt exists or `timeout` passes")] = False,
    timeout: Annotated[float, Query(gt=0, le=MAX_WAIT_SECONDS)] = 10.0,
) -> Response:
    record = _own_record(service, caller, record_id)
    deadline = time.monotonic() + timeout
    while True:
        receipt = receipt_for(service, record)
        if receipt is not None:
            return Response(content=receipt.to_json(), media_type="application/json")
        if not wait or time.monotonic() >= deadline:
            status, _ = _status(service, record)
            return Response(
                content=orjson.dumps({"recordId": record_id, "status": status}),
                status_code=202,
                media_type="application/json",
            )
        service.batcher.wake()
        await asyncio.sleep(0.05)
        record = _own_record(service, caller, record_id)


@router.get("", summary="This organisation's records with a digest", response_model=list[RecordOut])
def find_records(
    caller: Reader,
    service: ServiceDep,
    digest: Annotated[str, Query(pattern=r"^0x[0-9a-fA-F]{64}$", description="SHA-256 digest")],
) -> list[dict[str, Any]]:
    found = records_by_digest(service.db.conn, bytes.fromhex(digest[2:]))
    return [record_out(service, r) for r in found if r.organisation_id == caller.organisation.id]


@receipts_router.get("", summary="Receipts of this organisation's anchored records with a digest")
def receipts_by_digest(
    caller: Reader,
    service: ServiceDep,
    digest: Annotated[str, Query(pattern=r"^0x[0-9a-fA-F]{64}$", description="SHA-256 digest")],
) -> Response:
    """Pending records with this digest are left out (fetch them by id with ``?wait=true``)."""
    found = records_by_digest(service.db.conn, bytes.fromhex(digest[2:]))
    receipts = [receipt_for(service, r) for r in found if r.organisation_id == caller.organisation.id]
    return Response(orjson.dumps([r.to_dict() for r in receipts if r is not None]), media_type="application/json")


@router.post(
    "/{record_id}/amend",
    status_code=202,
    response_model=RecordAck,
    summary="Register a corrected version that supersedes a record",
)
async def amend_record(
    record_id: str,
    replacement: RecordIn,
    request: Request,
    caller: Registrar,
    service: ServiceDep,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """The amendment is recorded on chain once both the original and the correction are anchored."""
    key = check_key(idempotency_key)
    if (replayed := await _replayed(service, request, caller, key)) is not None:
        return replayed
    original = _own_record(service, caller, record_id)
    _require_unchanged(service, original)
    (built,) = _build(service, caller, [replacement])
    change: Statement = (
        "INSERT INTO record_changes (kind, record_id, replacement_id, requested_at, state) "
        "VALUES ('amend', ?, ?, ?, 'pending')",
        [(original.record_id, built.record_id, time.time())],
    )
    body = {**ack(built), "amends": original.record_id}
    return await _commit(service, request, caller, key, [insert_statement([built]), change], 202, body)


@router.post("/{record_id}/retract", status_code=202, summary="Retract a record entered in error")
async def retract_record(
    record_id: str,
    body: RetractIn,
    request: Request,
    caller: Registrar,
    service: ServiceDep,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    key = check_key(idempotency_key)
    if (replayed := await _replayed(service, request, caller, key)) is not None:
        return replayed
    original = _own_record(service, caller, record_id)
    _require_unchanged(service, original)
    change: Statement = (
        "INSERT INTO record_changes (kind, record_id, reason, requested_at, state) "
        "VALUES ('retract', ?, ?, ?, 'pending')",
        [(original.record_id, body.reason, time.time())],
    )
    answer = {"recordId": original.record_id, "retraction": {"reason": body.reason, "state": "pending"}}
    return await _commit(service, request, caller, key, [change], 202, answer)


def _require_unchanged(service: Service, record: StoredRecord) -> None:
    row = service.db.conn.execute("SELECT kind FROM record_changes WHERE record_id = ?", (record.record_id,)).fetchone()
    if row is not None:
        raise ConflictError(
            f"record {record.record_id} was already {'amended' if row[0] == 'amend' else 'retracted'}",
            record_id=record.record_id,
        )
    if record.kind != "record":
        raise InputError("audit entries cannot be amended or retracted", record_id=record.record_id)
