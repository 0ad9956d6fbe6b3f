"""Scope and purpose-of-use codes: short ASCII codes stored on chain as left-aligned bytes32.

Purposes follow HL7 v3 PurposeOfUse (``TREAT``, ``ETREAT``, ``HPAYMT``, ``HRESCH``, ...). Scopes name
a kind of data (a FHIR resource type such as ``Observation``, or a category); ``*`` means all of a
patient's data. Codes are identifiers, never free text: nothing about a patient goes into them.
"""

from __future__ import annotations

import re

from ledger.exceptions import InputError

ALL_DATA = "*"

PURPOSES_OF_USE: dict[str, str] = {
    "TREAT": "treatment",
    "ETREAT": "emergency treatment",
    "HPAYMT": "healthcare payment",
    "HOPERAT": "healthcare operations",
    "HRESCH": "healthcare research",
    "PATRQT": "patient requested",
    "PUBHLTH": "public health",
    "CAREMGT": "care management",
}

_CODE_PATTERN = re.compile(r"^(\*|[A-Za-z0-9][A-Za-z0-9_.:/-]{0,31})$")


class InvalidCodeError(InputError):
    """A scope, purpose or reason code is empty, too long or has characters outside the code alphabet."""

    code = "invalid_code"


def encode_code(code: str) -> bytes:
    """``"TREAT"`` -> 32 bytes, ASCII left-aligned and zero-padded (Solidity's ``bytes32("TREAT")``)."""
    if not isinstance(code, str) or not _CODE_PATTERN.fullmatch(code):
        raise InvalidCodeError(
            f"invalid code {code!r}: 1-32 characters of letters, digits and _.:/- (or '*')",
            field="code",
        )
    return code.encode("ascii").ljust(32, b"\0")


def decode_code(raw: bytes) -> str:
    """The inverse of :func:`encode_code`; codes that are not ASCII come back as 0x-hex."""
    text = bytes(raw).rstrip(b"\0")
    try:
        decoded = text.decode("ascii")
    except UnicodeDecodeError:
        return "0x" + bytes(raw).hex()
    return decoded if _CODE_PATTERN.fullmatch(decoded) else "0x" + bytes(raw).hex()


def encode_purpose(purpose: str) -> bytes:
    """Encode a purpose-of-use code; only the known HL7 PurposeOfUse codes are accepted."""
    if purpose not in PURPOSES_OF_USE:
        raise InvalidCodeError(
            f"unknown purpose of use {purpose!r}; known: {', '.join(PURPOSES_OF_USE)}",
            field="purpose",
        )
    return encode_code(purpose)
