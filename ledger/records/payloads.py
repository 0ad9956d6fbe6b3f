"""A request's payload to its SHA-256 digest: the same for registering a record and for verifying one.

A payload is one of a JSON document (FHIR or any object, hashed in its RFC 8785 canonical form),
raw content in base64 (a PDF, an image) or the digest itself (``0x`` and 64 hex digits, already
checked by the request's schema).
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from ledger.exceptions import InputError
from ledger.records.hashing import digest_bytes, digest_json


def decoded_content(content: str) -> bytes:
    """The raw bytes of base64 ``content``.

    Raises:
        InputError: It is not valid base64 (``field="content"``).
    """
    try:
        return base64.b64decode(content, validate=True)
    except (binascii.Error, ValueError) as err:
        raise InputError("content is not valid base64", field="content") from err


def payload_digest(
    document: dict[str, Any] | None = None, content: str | None = None, digest: str | None = None
) -> bytes | None:
    """The digest of the first payload given (document, then content, then digest), or None if none is.

    Raises:
        InputError: ``content`` is not valid base64 (``field="content"``).
        InvalidDocumentError: The document has no canonical form (as :func:`~ledger.records.hashing.canonical_json`).
    """
    if document is not None:
        return digest_json(document)
    if content is not None:
        return digest_bytes(decoded_content(content))
    if digest is not None:
        return bytes.fromhex(digest[2:])
    return None
