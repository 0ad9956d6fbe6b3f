"""Registering records, reading them back, amendments and retractions: bodies and the record's JSON."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import orjson
from pydantic import Field, WithJsonSchema, model_validator

from api.schemas.common import (
    EXAMPLE_DIGEST,
    EXAMPLE_PATIENT,
    Address,
    Base64,
    Hex32,
    JsonObject,
    RecordId,
    Schema,
    camel_config,
    one_payload_schema,
)
from ledger.records.fhir import SPLITTABLE_BUNDLES, BundleMode
from ledger.records.lifecycle import RecordStanding

PAYLOADS = ("document", "content", "digest")
EXAMPLE_RECORD = {
    "patient": EXAMPLE_PATIENT,
    "document": {
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
        "valueQuantity": {"value": 72, "unit": "beats/minute"},
    },
    "metadata": {"source": "ward-7-monitor"},
}


class RecordIn(Schema):
    """One record to register: exactly one of ``document`` (FHIR or any JSON object, hashed in its
    RFC 8785 canonical form), ``content`` (raw bytes, base64) or ``digest`` (SHA-256, precomputed).
    A document with a ``resourceType`` is validated as FHIR unless ``contentType`` is
    ``application/json``: as R4 by default, as R5 with ``contentType``
    ``application/fhir+json; fhirVersion=5.0`` (or the request's ``Content-Type`` saying so, or the
    ``default_fhir_version`` setting); so is ``content`` sent as ``application/fhir+json``. A
    transaction or collection ``Bundle`` with ``bundle`` ``entries`` becomes one record per entry,
    each entry's digest that of its resource (single registration only)."""

    patient: Address
    document: JsonObject | None = None
    content: Base64 | None = Field(
        default=None,
        description="base64 of the raw bytes (a PDF, an image); with contentType application/fhir+json, "
        "a FHIR resource (JSON) validated as a document is",
    )
    content_type: str | None = Field(
        default=None,
        max_length=127,
        pattern=r"^[^\x00-\x1f\x7f]*$",  # no control characters (PostgreSQL text holds no NUL)
        examples=["application/fhir+json"],
    )
    digest: Hex32 | None = None
    metadata: JsonObject | None = Field(default=None, description="kept off chain; at most 4 KiB as JSON")
    bundle: Annotated[
        BundleMode,
        # per entry only through POST /v1/records (NewRecordIn): elsewhere "entries" is a 400
        WithJsonSchema({"type": "string", "const": "whole", "description": "a Bundle document as one record"}),
    ] = "whole"

    @model_validator(mode="after")
    def exactly_one_payload(self) -> RecordIn:
        given = [name for name in PAYLOADS if getattr(self, name) is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of document, content, digest")
        if self.bundle == "entries" and self.document is None:
            raise ValueError('bundle "entries" needs a Bundle document')
        return self

    model_config = camel_config(EXAMPLE_RECORD, schema=one_payload_schema(PAYLOADS, required=True))


ENTRIES_NEED_A_BUNDLE = {
    "if": {"required": ["bundle"], "properties": {"bundle": {"const": "entries"}}},
    "then": {
        "required": ["document"],
        "properties": {
            "document": {
                "type": "object",
                "required": ["resourceType", "type", "entry"],
                "properties": {
                    "resourceType": {"const": "Bundle"},
                    "type": {"enum": list(SPLITTABLE_BUNDLES)},
                    "entry": {
                        "type": "array",
                        "minItems": 1,
                        "items": {
                            "type": "object",
                            "required": ["resource"],
                            "properties": {"resource": {"type": "object", "required": ["resourceType"]}},
                        },
                    },
                },
            }
        },
    },
}


class NewRecordIn(RecordIn):
    """One record to register, or with ``bundle`` ``entries`` a transaction or collection Bundle to
    register one record per entry (each a valid FHIR resource; all or none)."""

    bundle: BundleMode = Field(
        default="whole",
        description="a Bundle document as one record (whole) or one record per entry (entries), all or none",
    )

    model_config = camel_config(
        EXAMPLE_RECORD, schema={**one_payload_schema(PAYLOADS, required=True), **ENTRIES_NEED_A_BUNDLE}
    )


EXAMPLE_CONDITION = {
    "resourceType": "Condition",
    "clinicalStatus": {
        "coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": "active"}]
    },
    "code": {"text": "Asthma"},
    "subject": {"reference": "Patient/example"},
}
"""A Condition valid in FHIR R4 and R5 alike (examples are sent as they are by clients and fuzzers)."""
Stage = Literal["pending", "sealed", "confirming", "anchored"]


class RecordsIn(Schema):
    """Many records in one request (at most the configured limit)."""

    records: list[RecordIn] = Field(min_length=1)

    model_config = camel_config(
        {
            "records": [
                {"patient": EXAMPLE_PATIENT, "digest": EXAMPLE_DIGEST},
                {"patient": EXAMPLE_PATIENT, "document": EXAMPLE_CONDITION},
            ]
        }
    )


class RecordAck(Schema):
    """A record acknowledged: durable from now on, anchored within the batch age."""

    record_id: RecordId
    digest: Hex32
    status: Literal["pending"]


class AmendmentAck(RecordAck):
    """The correction acknowledged; it supersedes ``amends`` once both are anchored."""

    amends: RecordId


class RecordsAck(Schema):
    records: list[RecordAck]
    count: int = Field(ge=1)


class BatchOut(Schema):
    """The batch a record was sealed in: its root, and once anchored where and when."""

    root: Hex32
    leaf_count: int = Field(ge=1)
    transaction_hash: Hex32 | None = None
    block_number: int | None = None
    anchored_at: int | None = None
    anchorer: str | None = None


class RetractionOut(Schema):
    reason: str
    state: str = Field(description="pending, then done once the retraction is on chain (or failed)")
    transaction_hash: Hex32 | None
    error: str | None


class EntryAck(RecordAck):
    """The record of one Bundle entry: the entry's index and ``fullUrl``."""

    entry: int
    full_url: str | None


class EntriesAck(Schema):
    """A Bundle registered per entry: one record per entry, in entry order."""

    records: list[EntryAck]
    count: int


class RecordOut(Schema):
    """A record as its organisation sees it."""

    record_id: RecordId
    kind: Literal["record", "audit"]
    digest: Hex32
    patient: str | None
    content_type: str | None
    fhir_version: str | None = Field(
        default=None, description="the FHIR version the document was validated as (4.0, 5.0); null if not FHIR"
    )
    metadata: dict[str, Any] | None
    registered_at: float
    status: Stage = Field(
        description="pending (waiting for a batch), sealed (in a batch being anchored), "
        "confirming (anchored, waiting for the configured confirmations), anchored (final)"
    )
    batch: BatchOut | None = None
    amended_by: RecordId | None = None
    amends: RecordId | None = None
    retraction: RetractionOut | None = None


class RetractIn(Schema):
    reason: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:/-]{0,31}$", examples=["ENTERED_IN_ERROR"])


class RetractionRequestOut(Schema):
    reason: str
    state: Literal["pending"]


class RetractionAck(Schema):
    """The retraction acknowledged; it reaches the chain once the record is anchored."""

    record_id: RecordId
    retraction: RetractionRequestOut


class PendingOut(Schema):
    """No receipt yet: where the record stands."""

    record_id: RecordId
    status: Stage


def batch_json(standing: RecordStanding) -> dict[str, Any] | None:
    """Where the record's batch stands: its root, and once anchored where and when."""
    batch = standing.batch
    if batch is None:
        return None
    if not batch.anchored:
        return {"root": "0x" + batch.root.hex(), "leafCount": batch.leaf_count}
    assert batch.tx_hash is not None
    return {
        "root": "0x" + batch.root.hex(),
        "leafCount": batch.leaf_count,
        "transactionHash": "0x" + batch.tx_hash.hex(),
        "blockNumber": batch.block_number,
        "anchoredAt": batch.anchored_at,
        "anchorer": batch.anchorer,
    }


def record_json(standing: RecordStanding) -> dict[str, Any]:
    """A ``RecordOut``: the record, its stage and batch, and its amendments and retraction."""
    record = standing.record
    out: dict[str, Any] = {
        "recordId": record.record_id,
        "kind": record.kind,
        "digest": "0x" + record.digest.hex(),
        "patient": record.patient,
        "contentType": record.content_type,
        "fhirVersion": record.fhir_version,
        "metadata": orjson.loads(record.metadata) if record.metadata else None,
        "registeredAt": record.created_at,
        "status": standing.stage,
        "batch": batch_json(standing),
        "amendedBy": None,
        "amends": None,
        "retraction": None,
    }
    for change in standing.changes:
        if change.kind == "amend" and change.record_id == record.record_id:
            out["amendedBy"] = change.replacement_id
        elif change.kind == "amend":
            out["amends"] = change.record_id
        else:
            out["retraction"] = {
                "reason": change.reason,
                "state": change.state,
                "transactionHash": "0x" + change.tx_hash.hex() if change.tx_hash else None,
                "error": change.error,
            }
    return out
