"""Request and response bodies (camelCase on the wire), with the examples shown at /docs."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic.alias_generators import to_camel

HEX32 = r"^0x[0-9a-fA-F]{64}$"
ADDRESS = r"^0x[0-9a-fA-F]{40}$"
EXAMPLE_PATIENT = "0x8ba1f109551bD432803012645Ac136ddd64DBA72"
EXAMPLE_DIGEST = "0x" + "9f" * 32

Hex32 = Annotated[str, Field(pattern=HEX32, examples=[EXAMPLE_DIGEST])]
MAX_ROW_ID = 2**63 - 1
RowId = Annotated[int, Field(ge=1, le=MAX_ROW_ID, examples=[1])]
"""An id of a stored row (SQLite integers are 64-bit: larger values are refused as input, not a 500)."""
Address = Annotated[str, Field(pattern=ADDRESS, examples=[EXAMPLE_PATIENT])]


class Schema(BaseModel):
    """Base: camelCase aliases, unknown fields rejected."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")


class RecordIn(Schema):
    """One record to register: exactly one of ``document`` (FHIR or any JSON object, hashed in its
    RFC 8785 canonical form), ``content`` (raw bytes, base64) or ``digest`` (SHA-256, precomputed).
    A document with a ``resourceType`` is validated as FHIR R5 unless ``contentType`` is
    ``application/json``."""

    patient: Address
    document: dict[str, Any] | None = None
    content: str | None = Field(default=None, description="base64 of the raw bytes (a PDF, an image)")
    content_type: str | None = Field(default=None, max_length=127, examples=["application/fhir+json"])
    digest: Hex32 | None = None
    metadata: dict[str, Any] | None = Field(default=None, description="kept off chain; at most 4 KiB as JSON")

    @model_validator(mode="after")
    def exactly_one_payload(self) -> RecordIn:
        given = [name for name in ("document", "content", "digest") if getattr(self, name) is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of document, content, digest")
        return self

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        json_schema_extra={
            "examples": [
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
            ]
        },
    )


class RecordsIn(Schema):
    """Many records in one request (at most the configured limit)."""

    records: list[RecordIn] = Field(min_length=1)

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "records": [
                        {"patient": EXAMPLE_PATIENT, "digest": EXAMPLE_DIGEST},
                        {
                            "patient": EXAMPLE_PATIENT,
                            "document": {"resourceType": "Condition", "code": {"text": "Asthma"}},
                        },
                    ]
                }
            ]
        },
    )


class RecordAck(Schema):
    """A record acknowledged: durable from now on, anchored within the batch age."""

    record_id: str = Field(examples=["4f1c2b9e0d7a4e53b8a61f0c9d2e7a31"])
    digest: Hex32
    status: str = Field(examples=["pending"])


class RecordsAck(Schema):
    records: list[RecordAck]
    count: int


class RecordOut(Schema):
    """A record as its organisation sees it."""

    record_id: str
    kind: str
    digest: Hex32
    patient: str | None
    content_type: str | None
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


class VerifyIn(Schema):
    """What to verify: a document, raw content or a digest (is it anchored?), or a receipt
    (optionally with its document: does everything match?)."""

    document: dict[str, Any] | None = None
    content: str | None = None
    digest: Hex32 | None = None
    receipt: dict[str, Any] | None = None

    @model_validator(mode="after")
    def something_to_verify(self) -> VerifyIn:
        payloads = [n for n in ("document", "content", "digest") if getattr(self, n) is not None]
        if len(payloads) > 1 or (not payloads and self.receipt is None):
            raise ValueError("give a receipt, or one of document, content, digest (a receipt may come with one)")
        return self

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        json_schema_extra={"examples": [{"digest": EXAMPLE_DIGEST}]},
    )
