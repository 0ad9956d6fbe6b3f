"""Value types shared by the library, the API's schemas and receipts: addresses and 32-byte hex.

One definition of each, so that every boundary parses them the same way: an :data:`Address` is
always EIP-55 checksummed (a mixed-case address with a wrong checksum is refused, not silently
"fixed"), a :data:`Hex32` is always ``0x`` and exactly 64 hex digits.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from eth_typing import ChecksumAddress
from pydantic import AfterValidator, BeforeValidator, Field, PlainSerializer, WithJsonSchema
from web3 import Web3

from ledger.exceptions import InvalidCodeError, InvalidHexError

ADDRESS_PATTERN = r"^0x[0-9a-fA-F]{40}$"
ADDRESS_FORMAT = "eip55-address"
"""The JSON Schema ``format`` of an :data:`Address`: what a pattern cannot say (the checksum)."""
HEX32_PATTERN = r"^0x[0-9a-fA-F]{64}$"
CODE_PATTERN = r"^(\*|[A-Za-z0-9][A-Za-z0-9_.:/-]{0,31})$"
"""A scope, purpose or reason code (:func:`encode_code`): 1-32 characters of letters, digits and
``_.:/-`` starting with a letter or digit, or ``*``."""


def checksum(address: str) -> ChecksumAddress:
    """A checksummed address, or :class:`~ledger.exceptions.InvalidHexError` if it is not one.

    All-lowercase and all-uppercase hex are accepted; mixed case must carry a valid EIP-55 checksum,
    so that a mistyped address is refused rather than granted consent.
    """
    if not isinstance(address, str) or not Web3.is_address(address):
        raise InvalidHexError(f"not an address: {address!r}", field="address")
    digits = address[2:] if address[:2] in ("0x", "0X") else address
    if digits != digits.lower() and digits != digits.upper() and not Web3.is_checksum_address(address):
        raise InvalidHexError(f"address {address!r} has a wrong EIP-55 checksum (a typo?)", field="address")
    return Web3.to_checksum_address(address)


def hex0x(value: bytes) -> str:
    """``0x`` followed by the lowercase hex of ``value``."""
    return "0x" + value.hex()


def bytes32(value: Any) -> bytes:
    """32 bytes from themselves or from ``0x`` + 64 hex digits (no whitespace, no other length)."""
    if isinstance(value, bytes) and len(value) == 32:
        return value
    if isinstance(value, str) and len(value) == 66 and value[:2] == "0x":
        try:
            decoded = bytes.fromhex(value[2:])
        except ValueError:
            pass
        else:
            if len(decoded) == 32:  # fromhex skips whitespace: "11" * 31 + "  " is 31 bytes
                return decoded
    raise ValueError("expected 0x followed by 64 hex digits")


def _checksummed(value: Any) -> str:
    try:
        return checksum(value)
    except InvalidHexError as err:
        raise ValueError(err.message) from err


Address = Annotated[
    str,
    Field(
        pattern=ADDRESS_PATTERN,
        json_schema_extra={"format": ADDRESS_FORMAT},
        description="0x and 40 hex digits; in mixed case, its EIP-55 checksum",
    ),
    AfterValidator(_checksummed),
]
"""An account or contract address: ``0x`` and 40 hex digits, checksummed (EIP-55) when parsed; a
mixed-case address with a wrong checksum is refused."""

Hex32 = Annotated[str, Field(pattern=HEX32_PATTERN)]
"""32 bytes as text: ``0x`` and 64 hex digits (a digest, a root, a transaction hash)."""

Bytes32 = Annotated[
    bytes,
    BeforeValidator(bytes32),
    PlainSerializer(hex0x, return_type=str),
    WithJsonSchema({"type": "string", "pattern": HEX32_PATTERN}),
]
"""32 bytes, read from and written as ``0x`` + 64 hex digits."""


# --- codes: short ASCII identifiers stored on chain as left-aligned bytes32 --------------------

_CODE_PATTERN = re.compile(CODE_PATTERN)


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
