"""Verification: a receipt (public), or a document or digest among the caller's own records."""

from __future__ import annotations

from typing import Any

from pydantic import Field, model_validator

from api.schemas.common import EXAMPLE_DIGEST, Hex32, Schema, camel_config


class VerifyIn(Schema):
    """A receipt to check against the chain, optionally with the document (or its raw content or
    digest) it should be the receipt of. The receipt carries the record's salt: without one,
    nothing is looked up, so nobody can confirm a guessed document."""

    receipt: dict[str, Any] = Field(description="a CareLedger receipt (as issued)")
    document: dict[str, Any] | None = None
    content: str | None = Field(default=None, description="base64 of the raw bytes")
    digest: Hex32 | None = None

    @model_validator(mode="after")
    def at_most_one_payload(self) -> VerifyIn:
        if sum(getattr(self, n) is not None for n in ("document", "content", "digest")) > 1:
            raise ValueError("give at most one of document, content, digest beside the receipt")
        return self

    model_config = camel_config({"receipt": {"type": "careledger-receipt", "version": 2, "...": "..."}})


class LookupIn(Schema):
    """A document, raw content or digest to look up among the calling organisation's records."""

    document: dict[str, Any] | None = None
    content: str | None = Field(default=None, description="base64 of the raw bytes")
    digest: Hex32 | None = None

    @model_validator(mode="after")
    def exactly_one_payload(self) -> LookupIn:
        if sum(getattr(self, n) is not None for n in ("document", "content", "digest")) != 1:
            raise ValueError("give exactly one of document, content, digest")
        return self

    model_config = camel_config({"digest": EXAMPLE_DIGEST})
