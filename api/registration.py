"""Turning registration requests into durable records: digest, salt, leaf, one intake submission."""

from __future__ import annotations

import re
from typing import Any

import orjson
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

from api.limits import json_syntax_error
from api.schemas.records import RecordIn
from ledger.exceptions import (
    ConflictError,
    IdempotencyKeyReusedError,
    InexactNumberError,
    InputError,
    InvalidDocumentError,
    InvalidFhirError,
    InvalidJsonError,
    NestingTooDeepError,
    PayloadTooLargeError,
    ServerBusyError,
    StorageFullError,
    StoreUnavailableError,
    UnsupportedFhirVersionError,
)
from ledger.records.fhir import (
    DEFAULT_FHIR_VERSION,
    FHIR_JSON,
    PLAIN_JSON,
    FhirVersion,
    bundle_entries,
    fhir_version_of,
    validate_fhir,
    validate_fhir_content,
)
from ledger.records.hashing import digest_bytes, digest_json
from ledger.records.payloads import decoded_content, payload_digest
from ledger.records.strict_json import check_value, parse_json
from ledger.store.intake import Statement
from ledger.store.records import INSERT_RECORD, NewRecord, RecordIds, RecordPayload, new_records

REGISTRATION_ERRORS = (
    InputError,  # content that is not base64, a bad Idempotency-Key
    InvalidDocumentError,
    InvalidFhirError,
    UnsupportedFhirVersionError,
    InexactNumberError,
    NestingTooDeepError,
    PayloadTooLargeError,
    IdempotencyKeyReusedError,
    ServerBusyError,  # a large body, when the CPU pool's queue is full
    ConflictError,
    StoreUnavailableError,
    StorageFullError,
)
"""What registering records can refuse with (the OpenAPI document lists them for each route that does)."""

MAX_METADATA_BYTES = 4096
MAX_METADATA_DEPTH = 16
"""Metadata is a few labels kept beside a record, not a document: shallow, and checked before it is
encoded (orjson refuses to encode past 254 levels)."""


def _metadata(record: RecordIn) -> str | None:
    if record.metadata is None:
        return None
    # every value takes at least a byte as JSON: more values than bytes could never fit
    check_value(record.metadata, max_depth=MAX_METADATA_DEPTH, max_elements=MAX_METADATA_BYTES, field="metadata")
    try:
        text = orjson.dumps(record.metadata)
    except orjson.JSONEncodeError as err:  # an unpaired surrogate, an integer past 64 bits
        raise InvalidDocumentError(f"metadata cannot be stored as JSON: {err}", field="metadata") from err
    if len(text) > MAX_METADATA_BYTES:
        raise PayloadTooLargeError(f"metadata is over {MAX_METADATA_BYTES} bytes", field="metadata")
    return text.decode("utf-8")


def build_records(
    records: list[RecordIn],
    ids: RecordIds,
    *,
    organisation_id: int,
    app_id: int,
    fhir_default: FhirVersion = DEFAULT_FHIR_VERSION,
    entry_limit: int | None = None,
) -> list[NewRecord]:
    """Hash, salt and identify the records of one request (all or nothing: a bad one fails the request).

    A record whose Bundle is registered per entry (``bundle: "entries"``) becomes one record per
    entry, in entry order: only where ``entry_limit`` (the most entries) is given, elsewhere it is refused.
    """
    payloads = [
        payload
        for index, record in enumerate(records)
        for payload in _payloads(record, index if len(records) > 1 else None, fhir_default, entry_limit)
    ]
    return new_records(payloads, ids, kind="record", organisation_id=organisation_id, app_id=app_id)


def _payloads(
    record: RecordIn, index: int | None, fhir_default: FhirVersion, entry_limit: int | None
) -> list[RecordPayload]:
    """The record's payload, or its Bundle's entries' payloads (each entry's digest that of its
    resource, as verifying that resource as a document computes it). A document with a
    ``resourceType`` must be valid FHIR of its version first (unless sent as plain ``application/json``),
    and so must base64 content sent as ``application/fhir+json``; either keeps the version it was validated as."""
    try:
        document = record.document
        version = fhir_version_of(document, record.content_type, fhir_default) if document is not None else None
        if document is not None and version is not None:
            validate_fhir(document, version)
        content_type = record.content_type or (_document_type(document) if document is not None else None)
        patient, metadata = record.patient.lower(), _metadata(record)
        if record.bundle == "entries":
            if entry_limit is None:
                raise InputError(
                    "a Bundle is registered per entry only by POST /v1/records, one at a time", field="bundle"
                )
            if document is None or version is None:
                raise InputError('bundle "entries" needs a FHIR Bundle document', field="bundle")
            resources = bundle_entries(document, limit=entry_limit)
            return [RecordPayload(digest_json(r), patient, content_type, metadata, version) for r in resources]
        if record.content is not None:  # raw bytes; validated, and tagged, if they say they are FHIR JSON
            raw = decoded_content(record.content)
            version = validate_fhir_content(raw, record.content_type, fhir_default)
            return [RecordPayload(digest_bytes(raw), patient, content_type, metadata, version)]
        digest = payload_digest(document, None, record.digest)
        assert digest is not None  # the schema requires exactly one payload
        return [RecordPayload(digest, patient, content_type, metadata, version)]
    except InputError as err:
        if index is not None:
            err.details.setdefault("index", index)
        raise


def entries_ack(document: dict[str, Any], built: list[NewRecord]) -> dict[str, Any]:
    """The answer to a Bundle registered per entry: each entry's record, in entry order."""
    acks = [
        {**ack(record), "entry": index, "fullUrl": entry.get("fullUrl")}
        for index, (record, entry) in enumerate(zip(built, document["entry"], strict=True))
    ]
    return {"records": acks, "count": len(acks)}


_DIGEST_ONLY = frozenset({"patient", "digest"})
_ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}")
_HEX32 = re.compile(r"0x[0-9a-fA-F]{64}")


def build_bulk(
    body: bytes,
    ids: RecordIds,
    *,
    limit: int,
    organisation_id: int,
    app_id: int,
    fhir_default: FhirVersion = DEFAULT_FHIR_VERSION,
) -> list[NewRecord]:
    """Parse, check, hash, salt and identify the records of a bulk body (all or nothing).

    The body is parsed with orjson; if a record carries a document, it is parsed again with the
    strict parser, so that documents are hashed as the auditor reads them.
    """
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError:
        parsed = _strictly(body)  # names what is wrong (a lone surrogate is no syntax error there)
    else:
        items = parsed.get("records") if type(parsed) is dict else None
        if type(items) is list and any(type(item) is dict and "document" in item for item in items):
            parsed = _strictly(body)
    payloads = bulk_payloads(parsed, limit, fhir_default)
    return new_records(payloads, ids, kind="record", organisation_id=organisation_id, app_id=app_id)


def _strictly(body: bytes) -> Any:
    """The body parsed by the strict parser; bad JSON is a 422 as on every route."""
    try:
        return parse_json(body, field="body")
    except InvalidJsonError as err:
        raise json_syntax_error(err.message) from err


def bulk_payloads(body: Any, limit: int, fhir_default: FhirVersion = DEFAULT_FHIR_VERSION) -> list[RecordPayload]:
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
        payloads.extend(_payloads(record, index, fhir_default, None))
    return payloads


def _document_type(document: dict[str, Any]) -> str:
    return FHIR_JSON if "resourceType" in document else PLAIN_JSON


def insert_statement(records: list[NewRecord]) -> Statement:
    return INSERT_RECORD, [r.as_row() for r in records]


def ack(record: NewRecord) -> dict[str, Any]:
    return {"recordId": record.record_id, "digest": "0x" + record.digest.hex(), "status": "pending"}
