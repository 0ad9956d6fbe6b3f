"""Turning registration requests into durable records: digest, salt, leaf, one intake submission."""

from __future__ import annotations

import re
from typing import Any

import orjson
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

from api.schemas.records import RecordIn
from ledger.exceptions import InputError, PayloadTooLargeError
from ledger.records.fhir import validate_fhir
from ledger.records.payloads import payload_digest
from ledger.store.intake import Statement
from ledger.store.records import INSERT_RECORD, NewRecord, RecordIds, RecordPayload, new_records

MAX_METADATA_BYTES = 4096


def _payload_digest(record: RecordIn) -> bytes:
    """The record's digest; a document with a ``resourceType`` must be valid FHIR first (unless sent as
    plain ``application/json``)."""
    if record.document is not None and "resourceType" in record.document and record.content_type != "application/json":
        validate_fhir(record.document)
    digest = payload_digest(record.document, record.content, record.digest)
    assert digest is not None  # the schema requires exactly one payload
    return digest


def _metadata(record: RecordIn) -> str | None:
    if record.metadata is None:
        return None
    text = orjson.dumps(record.metadata)
    if len(text) > MAX_METADATA_BYTES:
        raise PayloadTooLargeError(f"metadata is over {MAX_METADATA_BYTES} bytes", field="metadata")
    return text.decode("utf-8")


def build_records(records: list[RecordIn], ids: RecordIds, *, organisation_id: int, app_id: int) -> list[NewRecord]:
    """Hash, salt and identify the records of one request (all or nothing: a bad one fails the request)."""
    payloads = [_payload(record, index if len(records) > 1 else None) for index, record in enumerate(records)]
    return new_records(payloads, ids, kind="record", organisation_id=organisation_id, app_id=app_id)


def _payload(record: RecordIn, index: int | None) -> RecordPayload:
    try:
        return RecordPayload(
            digest=_payload_digest(record),
            patient=record.patient.lower(),
            content_type=record.content_type
            or (_document_type(record.document) if record.document is not None else None),
            metadata=_metadata(record),
        )
    except InputError as err:
        if index is not None:
            err.details.setdefault("index", index)
        raise


_DIGEST_ONLY = frozenset({"patient", "digest"})
_ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}")
_HEX32 = re.compile(r"0x[0-9a-fA-F]{64}")


def bulk_payloads(body: Any, limit: int) -> list[RecordPayload]:
    """The payloads of a bulk body ``{"records": [...]}``, checked as strictly as :class:`RecordsIn`.

    A record that gives just a patient and a digest (the usual bulk case) is checked here directly,
    much faster than through the model (``bench/api_load.py``, bulk); any other record goes through :class:`RecordIn`.
    Errors name the record's index.
    """
    if type(body) is not dict or body.keys() != {"records"} or type(body["records"]) is not list:
        raise RequestValidationError([{"loc": ("body",), "msg": 'expected {"records": [...]}', "type": "value_error"}])
    items = body["records"]
    if not items:
        raise RequestValidationError([{"loc": ("records",), "msg": "at least one record", "type": "too_short"}])
    if len(items) > limit:
        raise PayloadTooLargeError(f"at most {limit} records per request", limit=limit, count=len(items))
    payloads = []
    for index, item in enumerate(items):
        if type(item) is dict and item.keys() == _DIGEST_ONLY:
            patient, digest = item["patient"], item["digest"]
            if (
                type(patient) is str
                and type(digest) is str
                and _ADDRESS.fullmatch(patient)
                and _HEX32.fullmatch(digest)
                and (patient[2:].islower() or patient[2:].isupper() or patient[2:].isdigit())
            ):  # a mixed-case address goes through the model, which checks its EIP-55 checksum
                payloads.append(RecordPayload(bytes.fromhex(digest[2:]), patient.lower()))
                continue
        try:
            record = RecordIn.model_validate(item)
        except ValidationError as err:
            raise RequestValidationError([{**e, "loc": ("records", index, *e["loc"])} for e in err.errors()]) from err
        payloads.append(_payload(record, index))
    return payloads


def _document_type(document: dict[str, Any]) -> str:
    return "application/fhir+json" if "resourceType" in document else "application/json"


def insert_statement(records: list[NewRecord]) -> Statement:
    return INSERT_RECORD, [r.as_row() for r in records]


def ack(record: NewRecord) -> dict[str, Any]:
    return {"recordId": record.record_id, "digest": "0x" + record.digest.hex(), "status": "pending"}
