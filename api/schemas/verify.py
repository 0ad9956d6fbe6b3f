"""Verification: a receipt (public), or a document or digest among the caller's own records."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, WithJsonSchema, model_validator

from api.schemas.common import (
    EXACT_INTEGER_BOUND,
    EXAMPLE_DIGEST,
    Base64,
    Hex32,
    JsonObject,
    Schema,
    camel_config,
    one_payload_schema,
)
from ledger.records.receipts import Receipt


def _receipt_as_sent() -> dict[str, Any]:
    """The receipt's JSON Schema, its integers bounded as a request's JSON can hold them exactly."""
    schema = Receipt.model_json_schema(by_alias=True)
    for field in schema["properties"].values():
        if field.get("type") == "integer":
            field["maximum"] = EXACT_INTEGER_BOUND
    return {**schema, "description": "a CareLedger receipt, as issued (`GET /v1/receipts/schema`)"}


ReceiptBody = Annotated[dict[str, Any], WithJsonSchema(_receipt_as_sent(), mode="validation")]
"""A receipt as sent: parsed by :meth:`Receipt.parse` (400 ``invalid_proof`` naming the bad fields)."""
PAYLOADS = ("document", "content", "digest")


class VerifyIn(Schema):
    """A receipt to check against the chain, optionally with the document (or its raw content or
    digest) it should be the receipt of. The receipt carries the record's salt: without one,
    nothing is looked up, so nobody can confirm a guessed document."""

    receipt: ReceiptBody
    document: JsonObject | None = None
    content: Base64 | None = Field(default=None, description="base64 of the raw bytes")
    digest: Hex32 | None = None

    @model_validator(mode="after")
    def at_most_one_payload(self) -> VerifyIn:
        if sum(getattr(self, n) is not None for n in PAYLOADS) > 1:
            raise ValueError("give at most one of document, content, digest beside the receipt")
        return self

    model_config = camel_config(
        {"receipt": {"type": "careledger-receipt", "version": 2, "...": "..."}},
        schema=one_payload_schema(PAYLOADS, required=False),
    )


class LookupIn(Schema):
    """A document, raw content or digest to look up among the calling organisation's records."""

    document: JsonObject | None = None
    content: Base64 | None = Field(default=None, description="base64 of the raw bytes")
    digest: Hex32 | None = None

    @model_validator(mode="after")
    def exactly_one_payload(self) -> LookupIn:
        if sum(getattr(self, n) is not None for n in PAYLOADS) != 1:
            raise ValueError("give exactly one of document, content, digest")
        return self

    model_config = camel_config({"digest": EXAMPLE_DIGEST}, schema=one_payload_schema(PAYLOADS, required=True))


class CheckOut(Schema):
    """One verification step: what was compared, and whether it held."""

    step: str
    ok: bool
    detail: str
    expected: str | None
    actual: str | None


class VerifyOut(Schema):
    """The verdict on a receipt: a mismatch is an answer (``match: false``, the failed steps named)."""

    match: bool
    digest: Hex32
    anchored: bool
    mismatches: list[str] = Field(description="the steps that failed")
    checks: list[CheckOut]
    anchored_at: int | None = Field(description="when the root was anchored (a receipt that holds)")
    organisation: str | None = Field(description="the anchoring organisation (a receipt that holds)")
    amended_by: str | None
    retracted: bool
    retraction_reason: str | None


class WaitingOut(Schema):
    """A record with the digest not anchored for good yet."""

    anchored: Literal[False]
    status: Literal["pending", "confirming"]


class AnchoredRecordOut(Schema):
    """A record with the digest in a final batch: where its root went, and what happened since."""

    anchored: Literal[True]
    organisation: str
    anchorer: str
    anchored_at: int
    block_number: int
    transaction_hash: Hex32
    root: Hex32
    amended_by: Hex32 | None
    retracted: bool
    retraction_reason: str | None


class LookupOut(Schema):
    match: bool
    digest: Hex32
    anchored: bool
    anchorings: list[AnchoredRecordOut | WaitingOut]
    message: str
