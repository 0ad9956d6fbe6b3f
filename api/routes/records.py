"""Registering records, reading them back, their receipts, amendments and retractions."""

from __future__ import annotations

import asyncio
import time
from importlib import resources
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Header, Query, Request, Response
from fastapi.exceptions import RequestValidationError

from api.cpu_pool import is_large
from api.declared_errors import raises
from api.deps import Caller, Reader, Registrar, ServiceDep
from api.idempotency import KEY_PATTERN, check_key, remember, replay, request_hash
from api.limits import BULK_REGISTRATION_PATH, DocumentRoute
from api.registration import REGISTRATION_ERRORS, ack, build_bulk, build_records, entries_ack
from api.schemas.common import Hex32, RecordIdPath
from api.schemas.records import (
    AmendmentAck,
    EntriesAck,
    NewRecordIn,
    PendingOut,
    RecordAck,
    RecordIn,
    RecordOut,
    RecordsAck,
    RecordsIn,
    RetractIn,
    RetractionAck,
    record_json,
)
from api.service import Service
from ledger.exceptions import (
    AlreadyChangedError,
    ConflictError,
    InputError,
    NotChangeableError,
    NotFoundError,
    StorageFullError,
    StoreUnavailableError,
)
from ledger.records.changes import refused_by_store, request_amendment, request_retraction, require_changeable
from ledger.records.fhir import FhirVersion, requested_version
from ledger.records.lifecycle import stage_of, standing_of
from ledger.records.receipts import SCHEMA_FILE, Receipt
from ledger.store.database import INTEGRITY_ERRORS
from ledger.store.idempotency import is_key_taken
from ledger.store.intake import Statement
from ledger.store.records import (
    NewRecord,
    StoredRecord,
    get_batch,
    get_record,
    insert_records_statement,
    records_by_digest,
)

router = APIRouter(prefix="/v1/records", tags=["records"], route_class=DocumentRoute)
receipts_router = APIRouter(prefix="/v1/receipts", tags=["records"], route_class=DocumentRoute)

IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        max_length=255,
        pattern=KEY_PATTERN,
        description="Repeat a POST safely: the first answer is returned.",
    ),
]
SCHEMA_MEDIA_TYPE = "application/schema+json"
DigestQuery = Annotated[Hex32, Query(pattern=r"^0x[0-9a-fA-F]{64}$", description="SHA-256 digest")]
MAX_WAIT_SECONDS = 30.0
CHANGE_ERRORS = (NotFoundError, AlreadyChangedError, NotChangeableError)


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
    encoded = orjson.dumps(body)
    ttl = service.settings.idempotency_key_ttl
    if key is not None:
        fingerprint = request_hash(request.method, request.url.path, await request.body())
        answer, encoded = remember(caller.app.id, key, fingerprint, status_code, body, ttl=ttl)
        statements = [*statements, *answer]
    try:
        await service.intake.submit(statements)
    except INTEGRITY_ERRORS as err:
        if key is not None and is_key_taken(err):  # a concurrent request with the same key won
            replayed = replay(service.db, caller.app.id, key, fingerprint, ttl=ttl)
            if replayed is not None:
                return replayed
        if (already_changed := refused_by_store(err)) is not None:  # a concurrent change of the record won
            raise already_changed from err
        raise ConflictError("the request conflicts with stored data") from err
    return Response(content=encoded, status_code=status_code, media_type="application/json")


async def _replayed(service: Service, request: Request, caller: Caller, key: str | None) -> Response | None:
    if key is None:
        return None
    fingerprint = request_hash(request.method, request.url.path, await request.body())
    return replay(service.db, caller.app.id, key, fingerprint, ttl=service.settings.idempotency_key_ttl)


def _fhir_default(service: Service, request: Request) -> FhirVersion:
    """The FHIR version of documents whose content type names none: the request's ``Content-Type``
    (``application/fhir+json; fhirVersion=5.0``), else the setting."""
    asked = requested_version(request.headers.get("content-type"), field="Content-Type")
    return asked or service.settings.default_fhir_version


async def _built(
    service: Service, request: Request, caller: Caller, records: list[RecordIn], *, entries: bool = False
) -> list[NewRecord]:
    """The records of a request hashed, salted and identified (a large one in the CPU pool);
    ``entries``: a Bundle may be registered per entry."""
    return await service.cpu.run(
        is_large(await request.body()),
        build_records,
        records,
        service.record_ids,
        organisation_id=caller.organisation.id,
        app_id=caller.app.id,
        fhir_default=_fhir_default(service, request),
        entry_limit=service.settings.max_records_per_request if entries else None,
    )


@router.post(
    "",
    status_code=202,
    response_model=RecordAck | EntriesAck,
    summary="Register one record (or a Bundle as one record per entry)",
    responses={202: {"description": "acknowledged: durable, to be anchored in the next batch"}},
)
@raises(*REGISTRATION_ERRORS)
async def register_record(
    record: NewRecordIn,
    request: Request,
    caller: Registrar,
    service: ServiceDep,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """Acknowledge a record once it is durable. Only a salted commitment to its digest will reach
    the chain; the document itself is not stored. A Bundle sent with ``bundle: "entries"`` is
    answered with one record per entry, in entry order; all are registered, or none."""
    key = check_key(idempotency_key)
    if (replayed := await _replayed(service, request, caller, key)) is not None:
        return replayed
    built = await _built(service, request, caller, [record], entries=True)
    if record.bundle == "entries":
        assert record.document is not None  # the schema requires it
        answer = entries_ack(record.document, built)
    else:
        (only,) = built
        answer = ack(only)
    return await _commit(service, request, caller, key, [insert_records_statement(built)], 202, answer)


@router.post(
    BULK_REGISTRATION_PATH.removeprefix(router.prefix),
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
@raises(RequestValidationError, *REGISTRATION_ERRORS)
async def register_records(
    request: Request, caller: Registrar, service: ServiceDep, idempotency_key: IdempotencyKey = None
) -> Response:
    """All or nothing: one bad record refuses the whole request (its index is in the error details).
    The body is ``RecordsIn``; it is checked by hand for speed (records with just a patient and a
    digest), exactly as strictly as the model."""
    key = check_key(idempotency_key)
    if (replayed := await _replayed(service, request, caller, key)) is not None:
        return replayed
    body = await request.body()
    built = await service.cpu.run(
        is_large(body),
        build_bulk,
        body,
        service.record_ids,
        limit=service.settings.max_records_per_request,
        organisation_id=caller.organisation.id,
        app_id=caller.app.id,
        fhir_default=_fhir_default(service, request),
    )
    answer = {"records": [ack(r) for r in built], "count": len(built)}
    return await _commit(service, request, caller, key, [insert_records_statement(built)], 202, answer)


def _own_record(service: Service, caller: Caller, record_id: str) -> StoredRecord:
    record = get_record(service.db.conn, record_id)
    if record is None or record.organisation_id != caller.organisation.id:
        raise NotFoundError(f"no record {record_id!r} of this organisation", record_id=record_id)
    return record


@router.get("/{record_id:record_id}", response_model=RecordOut, summary="A record and its anchoring status")
@raises(NotFoundError)
def read_record(record_id: RecordIdPath, caller: Reader, service: ServiceDep) -> dict[str, Any]:
    return record_json(standing_of(service.db.conn, _own_record(service, caller, record_id)))


@router.get(
    "/{record_id:record_id}/receipt",
    summary="The record's receipt (wait for it with ?wait=true)",
    response_model=Receipt,
    responses={200: {"description": "the receipt"}, 202: {"model": PendingOut, "description": "not anchored yet"}},
)
@raises(NotFoundError)
async def read_receipt(
    record_id: RecordIdPath,
    caller: Reader,
    service: ServiceDep,
    wait: Annotated[bool, Query(description="hold the request until the receipt exists or `timeout` passes")] = False,
    timeout: Annotated[float, Query(gt=0, le=MAX_WAIT_SECONDS)] = 10.0,
) -> Response:
    record = _own_record(service, caller, record_id)
    deadline = time.monotonic() + timeout
    while True:
        receipt = service.receipt_of(record)
        if receipt is not None:
            return Response(content=receipt.to_json(), media_type="application/json")
        if not wait or time.monotonic() >= deadline:
            batch = get_batch(service.db.conn, record.batch_id) if record.batch_id is not None else None
            return Response(
                content=orjson.dumps({"recordId": record_id, "status": stage_of(batch)}),
                status_code=202,
                media_type="application/json",
            )
        service.batcher.wake()
        await asyncio.sleep(0.05)
        record = _own_record(service, caller, record_id)


@router.get("", summary="This organisation's records with a digest", response_model=list[RecordOut])
def find_records(caller: Reader, service: ServiceDep, digest: DigestQuery) -> list[dict[str, Any]]:
    found = records_by_digest(service.db.conn, bytes.fromhex(digest[2:]), caller.organisation.id)
    return [record_json(standing_of(service.db.conn, r)) for r in found]


@receipts_router.get(
    "/schema",
    summary="The JSON Schema of receipts (this version)",
    response_class=Response,
    responses={200: {"content": {SCHEMA_MEDIA_TYPE: {"schema": {"type": "object"}}}}},
)
def receipt_json_schema() -> Response:
    """Public: what every receipt this service issues conforms to (``receipt.schema.json``)."""
    body = resources.files("ledger.records").joinpath(SCHEMA_FILE).read_bytes()
    return Response(body, media_type=SCHEMA_MEDIA_TYPE)


@receipts_router.get(
    "", response_model=list[Receipt], summary="Receipts of this organisation's anchored records with a digest"
)
def receipts_by_digest(caller: Reader, service: ServiceDep, digest: DigestQuery) -> Response:
    """Pending records with this digest are left out (fetch them by id with ``?wait=true``)."""
    found = records_by_digest(service.db.conn, bytes.fromhex(digest[2:]), caller.organisation.id)
    receipts = [service.receipt_of(r) for r in found]
    return Response(orjson.dumps([r.to_dict() for r in receipts if r is not None]), media_type="application/json")


@router.post(
    "/{record_id:record_id}/amend",
    status_code=202,
    response_model=AmendmentAck,
    summary="Register a corrected version that supersedes a record",
)
@raises(*CHANGE_ERRORS, *REGISTRATION_ERRORS)
async def amend_record(
    record_id: RecordIdPath,
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
    require_changeable(service.db.conn, original)  # before the replacement is built and validated
    (built,) = await _built(service, request, caller, [replacement])
    change = request_amendment(service.db.conn, original, built.record_id)
    body = {**ack(built), "amends": original.record_id}
    return await _commit(service, request, caller, key, [insert_records_statement([built]), change], 202, body)


@router.post(
    "/{record_id:record_id}/retract",
    status_code=202,
    response_model=RetractionAck,
    summary="Retract a record entered in error",
)
@raises(*CHANGE_ERRORS, InputError, ConflictError, StoreUnavailableError, StorageFullError)
async def retract_record(
    record_id: RecordIdPath,
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
    change = request_retraction(service.db.conn, original, body.reason)
    answer = {"recordId": original.record_id, "retraction": {"reason": body.reason, "state": "pending"}}
    return await _commit(service, request, caller, key, [change], 202, answer)
