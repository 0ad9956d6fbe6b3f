"""The base of every body (camelCase on the wire, unknown fields refused) and the shared field types."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Path
from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from ledger.consent.terms import UINT64_MAX
from ledger.store.records import MAX_ROW_ID as MAX_ROW_ID
from ledger.values import ADDRESS_PATTERN
from ledger.values import Address as ChecksummedAddress
from ledger.values import Hex32 as Hex32Text

EXAMPLE_PATIENT = "0x8ba1f109551bD432803012645Ac136ddd64DBA72"
EXAMPLE_GRANTEE = "0x5B38Da6a701c568545dCfcB03FcB875f56beddC4"
EXAMPLE_GUARDIAN = "0xAb8483F64d9C6d1EcF9b849Ae677dD3315835cb2"
EXAMPLE_DIGEST = "0x" + "9f" * 32
EXAMPLE_SIGNATURE = "0x" + "1b" * 65
EXAMPLE_TX = "0x" + "5e" * 32
MAX_SIGNATURE_BYTES = 2048  # EOA signatures are 65 bytes; contract wallets may need more

Address = Annotated[ChecksummedAddress, Field(examples=[EXAMPLE_PATIENT])]
"""An address in a body or query, checksummed when parsed (a wrong EIP-55 checksum is refused)."""
Hex32 = Annotated[Hex32Text, Field(examples=[EXAMPLE_DIGEST])]
RowId = Annotated[int, Field(ge=1, le=MAX_ROW_ID, examples=[1])]
"""An id of a stored row (SQLite integers are 64-bit: larger values are refused as input, not a 500)."""
Code = Annotated[str, Field(min_length=1, max_length=66, description="a scope or purpose code (ledger.consent.codes)")]
Signature = Annotated[
    str,
    Field(
        pattern=r"^0x(?:[0-9a-fA-F]{2})+$",
        max_length=2 + 2 * MAX_SIGNATURE_BYTES,
        examples=[EXAMPLE_SIGNATURE],
        description="0x-hex; 65 bytes r||s||v for an EOA",
    ),
]
Uint64 = Annotated[int, Field(ge=0, le=UINT64_MAX)]
Deadline = Annotated[int, Field(ge=0, le=2**256 - 1, description="unix seconds; the signature is void after it")]
Timestamp = Annotated[int, Field(ge=0, le=2**256 - 1, description="unix seconds")]
PatientPath = Annotated[
    ChecksummedAddress, Path(pattern=ADDRESS_PATTERN, description="the patient's address", examples=[EXAMPLE_PATIENT])
]


class Schema(BaseModel):
    """Base: camelCase aliases, unknown fields rejected."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")


def camel_config(example: dict[str, Any] | None = None) -> ConfigDict:
    """The base configuration, with an example shown at ``/docs``."""
    config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")
    if example is not None:
        config["json_schema_extra"] = {"examples": [example]}
    return config
