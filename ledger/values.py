"""Value types shared by the library, the API's schemas and receipts: addresses and 32-byte hex.

One definition of each, so that every boundary parses them the same way: an :data:`Address` is
always EIP-55 checksummed (a mixed-case address with a wrong checksum is refused, not silently
"fixed"), a :data:`Hex32` is always ``0x`` and exactly 64 hex digits.
"""

from __future__ import annotations

from typing import Annotated, Any

from eth_typing import ChecksumAddress
from pydantic import BeforeValidator, PlainSerializer
from web3 import Web3

from ledger.exceptions import InvalidHexError

ADDRESS_PATTERN = r"^0x[0-9a-fA-F]{40}$"
HEX32_PATTERN = r"^0x[0-9a-fA-F]{64}$"


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


Address = Annotated[str, BeforeValidator(_checksummed)]
"""An account or contract address, checksummed (EIP-55) when parsed."""

Bytes32 = Annotated[bytes, BeforeValidator(bytes32), PlainSerializer(hex0x, return_type=str)]
"""32 bytes, read from and written as ``0x`` + 64 hex digits."""
