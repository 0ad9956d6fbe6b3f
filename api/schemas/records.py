"""Registering records, reading them back, amendments and retractions: bodies and the record's JSON."""

from __future__ import annotations

from typing import Any

import orjson
from pydantic import Field, model_validator

from api.schemas.common import EXAMPLE_DIGEST, EXAMPLE_PATIENT, Address, Hex32, Schema, camel_config
from ledger.records.fhir import BundleMode
from ledger.records.lifecycle import RecordStanding


class RecordIn(Schema):
    """One record to register: exactly one of ``document`` (FHIR or any JSON object, hashed in its
    RFC 8785 canonical form), ``content`` (raw bytes, base64) or ``digest`` (SHA-256, precomputed).
    A document with a ``resourceType`` is validated as FHIR unless ``contentType`` is
    ``application/json``: as R4 by default, as R5 with ``contentType``
    ``application/fhir+json; fhirVersion=5.0`` (or the request's ``Content-Type`` saying so, or the
    ``default_fhir_version`` setting). A transaction or collection ``Bundle`` with ``bundle``
    ``entries`` becomes one record per entry, each entry's digest that of its resource (single
    registration only)."""

    patient: Address
    document: dict[str, Any] | None = None
    content: str | None = Field(default=None, description="base64 of the raw bytes (a PDF, an image)")
    content_type: str | None = Field(default=None, max_length=127, examples=["application/fhir+json"])
    digest: Hex32 | None = None
    metadata: dict[str, Any] | None = Field(default=None, description="kept off chain; at most 4 KiB as JSON")
    bundle: BundleMode = Field(
        default="whole",
        description="a Bundle document as one record (whole) or one record per entry (entries), all or none",
    )

    @model_validator(mode="after")
    def exactly_one_payload(self) -> RecordIn:
        given = [name for name in ("document", "content", "digest") if getattr(self, name) is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of document, content, digest")
        if self.bundle == "entries" and self.document is None:
            raise ValueError('bundle "entries" needs a Bundle document')
        return self

    model_config = camel_config(
        {
            "patient": EXAMPLE_PATIENT,
            "document": {
                "resourceType": "Observation",
                "status": "final",
                "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
                "valueQuantity": {"value": 72, "unit": "beats/minute"},
            },
            "metadata": {"source": "ward-7-monitor"},
        }
    )


class RecordsIn(Schema):
    """Many records in one request (at most the configured limit)."""

    records: list[RecordIn] = Field(min_length=1)

    model_config = camel_config(
        {
            "records": [
                {"patient": EXAMPLE_PATIENT, "digest": EXAMPLE_DIGEST},
                {
                    "patient": EXAMPLE_PATIENT,
                    "document": {
                        "resourceType": "Condition",
                        "code": {"text": "Asthma"},
                        "subject": {"reference": "Patient/example"},
                    },
                },
            ]
        }
    )


class RecordAck(Schema):
    """A record acknowledged: durable from now on, anchored within the batch age."""

    record_id: str = Field(examples=["4f1c2b9e0d7a4e53b8a61f0c9d2e7a31"])
    digest: Hex32
    status: str = Field(examples=["pending"])


class RecordsAck(Schema):
    records: list[RecordAck]
    count: int


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

    record_id: str
    kind: str
    digest: Hex32
    patient: str | None
    content_type: str | None
    fhir_version: str | None = Field(
        default=None, description="the FHIR version the document was validated as (4.0, 5.0); null if not FHIR"
    )
    metadata: dict[str, Any] | None
    registered_at: float
    status: str = Field(
        description="pending (waiting for a batch), sealed (in a batch being anchored), "
        "confirming (anchored, waiting for the configured confirmations), anchored (final)"
    )
    batch: dict[str, Any] | None = None
    amended_by: str | None = None
    amends: str | None = None
    retraction: dict[str, Any] | None = None


class RetractIn(Schema):
    reason: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:/-]{0,31}$", examples=["ENTERED_IN_ERROR"])


class PendingOut(Schema):
    record_id: str
    status: str


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
