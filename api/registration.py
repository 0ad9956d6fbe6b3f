"""Turning registration requests into durable records: digest, salt, leaf, one intake submission."""

from __future__ import annotations

import base64
import binascii
from typing import Any

import orjson

from api.schemas import RecordIn
from ledger.exceptions import InputError, PayloadTooLargeError
from ledger.fhir import validate_fhir
from ledger.hashing import digest_bytes, digest_json
from ledger.store.intake import Statement
from ledger.store.records import INSERT_RECORD, NewRecord, RecordIds, RecordPayload, new_records

MAX_METADATA_BYTES = 4096


def _payload_digest(record: RecordIn) -> bytes:
    if record.document is not None:
        if "resourceType" in record.document and record.content_type != "application/json":
            validate_fhir(record.document)
        return digest_json(record.document)
    if record.content is not None:
        try:
            raw = base64.b64decode(record.content, validate=True)
        except (binascii.Error, ValueError) as err:
            raise InputError("content is not valid base64", field="content") from err
        return digest_bytes(raw)
    assert record.digest is not None
    return bytes.fromhex(record.digest[2:])


def _metadata(record: RecordIn) -> str | None:
    if record.metadata is None:
        return None
    text = orjson.dumps(record.metadata)
    if len(text) > MAX_METADATA_BYTES:
        raise PayloadTooLargeError(f"metadata is over {MAX_METADATA_BYTES} bytes", field="metadata")
    return text.decode("utf-8")


def build_records(records: list[RecordIn], ids: RecordIds, *, organisation_id: int, app_id: int) -> list[NewRecord]:
    """Hash, salt and identify the records of one request (all or nothing: a bad one fails the request)."""
    payloads = []
    for index, record in enumerate(records):
        try:
            payloads.append(RecordPayload(
                digest=_payload_digest(record),
                patient=record.patient.lower(),
                content_type=record.content_type or (
                    _document_type(record.document) if record.document is not None else None),
                metadata=_metadata(record),
            ))
        except InputError as err:
            if len(records) > 1:
                err.details.setdefault("index", index)
            raise
    return new_records(payloads, ids, kind="record", organisation_id=organisation_id, app_id=app_id)


def _document_type(document: dict[str, Any]) -> str:
    return "application/fhir+json" if "resourceType" in document else "application/json"


def insert_statement(records: list[NewRecord]) -> Statement:
    return INSERT_RECORD, [r.as_row() for r in records]


def ack(record: NewRecord) -> dict[str, Any]:
    return {"recordId": record.record_id, "digest": "0x" + record.digest.hex(), "status": "pending"}
