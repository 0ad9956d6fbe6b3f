"""Public verification: what to verify."""

from __future__ import annotations

from typing import Any

from pydantic import model_validator

from api.schemas.common import EXAMPLE_DIGEST, Hex32, Schema, camel_config


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

    model_config = camel_config({"digest": EXAMPLE_DIGEST})
