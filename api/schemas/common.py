"""The base of every body (camelCase on the wire, unknown fields refused) and the shared field types."""

from __future__ import annotations

from collections.abc import Sequence
from itertools import combinations
from typing import Annotated, Any

from fastapi import Path
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainValidator,
    StrictBool,
    WithJsonSchema,
)
from pydantic.alias_generators import to_camel
from starlette.convertors import Convertor, register_url_convertor
from typing_extensions import TypeAliasType

from ledger.consent.codes import PURPOSES_OF_USE
from ledger.records.strict_json import EXACT_INTEGER_BOUND as EXACT_INTEGER_BOUND
from ledger.store.records import RECORD_ID_REGEX
from ledger.values import ADDRESS_PATTERN, CODE_PATTERN
from ledger.values import Address as ChecksummedAddress
from ledger.values import Hex32 as Hex32Text

EXAMPLE_PATIENT = "0x8ba1f109551bD432803012645Ac136ddd64DBA72"
EXAMPLE_GRANTEE = "0x5B38Da6a701c568545dCfcB03FcB875f56beddC4"
EXAMPLE_GUARDIAN = "0xAb8483F64d9C6d1EcF9b849Ae677dD3315835cb2"
EXAMPLE_DIGEST = "0x" + "9f" * 32
EXAMPLE_SIGNATURE = "0x" + "1b" * 65
EXAMPLE_TX = "0x" + "5e" * 32
MAX_SIGNATURE_BYTES = 2048  # EOA signatures are 65 bytes; contract wallets may need more

MAX_JSON_INTEGER = 2**53 - 1
"""The largest integer the API takes in a body, query or path (an id, a time, a window's bound):
every JSON reader holds it exactly (JSON numbers are IEEE doubles to most of them). Stored ids are
64-bit and the chain's times 64 or 256 bits wide; none comes near this."""
ZERO_ADDRESS_PATTERN = r"^0x0{40}$"

Address = Annotated[ChecksummedAddress, Field(examples=[EXAMPLE_PATIENT])]
"""An address in a body or query, checksummed when parsed (a wrong EIP-55 checksum is refused)."""


def _not_zero(address: str) -> str:
    if int(address, 16) == 0:
        raise ValueError("the zero address names no account")
    return address


ChainAddress = Annotated[
    Address, AfterValidator(_not_zero), Field(json_schema_extra={"not": {"pattern": ZERO_ADDRESS_PATTERN}})
]
"""An address the chain will act on (a patient, grantee, guardian, signer): never the zero address,
which the ConsentRegistry refuses."""
Hex32 = Annotated[Hex32Text, Field(examples=[EXAMPLE_DIGEST])]


def _json_number(value: Any) -> Any:
    """Numbers in a body are JSON numbers: pydantic's lax mode would also take ``"5"`` or ``true``
    (``7.0`` is the integer 7, in JSON Schema as here)."""
    if isinstance(value, (bool, str)):
        raise ValueError("must be a JSON number")
    return value


JSON_NUMBER = BeforeValidator(_json_number)
Flag = StrictBool
"""A boolean in a body: ``true`` or ``false`` only (not ``1`` or ``"yes"``)."""
RowId = Annotated[int, Field(ge=1, le=MAX_JSON_INTEGER, examples=[1]), JSON_NUMBER]
"""An id of a stored row."""
IdPath = Annotated[int, Path(ge=1, le=MAX_JSON_INTEGER)]
RECORD_ID_PATTERN = f"^{RECORD_ID_REGEX}$"
BASE64_PATTERN = r"^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$"
"""Standard base64 with its padding, as ``base64.b64decode(validate=True)`` reads it."""

# Constraints the library enforces with its own stable codes (400 ``invalid_code``, ``invalid_input``):
# shown in the schema, checked by the library (pydantic keeps only the cheap bounds, a 422).
Code = Annotated[
    str,
    Field(
        min_length=1,
        max_length=66,
        json_schema_extra={"pattern": CODE_PATTERN},
        description="a scope or reason code: 1-32 letters, digits and _.:/-, or '*' (all data)",
    ),
]
Purpose = Annotated[
    str,
    Field(
        min_length=1,
        max_length=66,
        json_schema_extra={"enum": list(PURPOSES_OF_USE)},
        description="an HL7 PurposeOfUse code (`GET /v1/patient/purposes` says them in plain words)",
    ),
]
Base64 = Annotated[str, Field(json_schema_extra={"pattern": BASE64_PATTERN, "contentEncoding": "base64"})]
RecordId = Annotated[str, Field(pattern=RECORD_ID_PATTERN, examples=["4f1c2b9e0d7a4e53b8a61f0c9d2e7a31"])]
RecordIdPath = Annotated[
    str,
    Path(json_schema_extra={"pattern": RECORD_ID_PATTERN}, description="a record id (32 hex digits)"),
]
"""A record id in a path (``{record_id:record_id}``): a path with another one matches no route, a
404 like an unknown id, and ``/v1/records/bulk`` is never taken for a record's path."""


class RecordIdConvertor(Convertor[str]):
    regex = RECORD_ID_REGEX

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("record_id", RecordIdConvertor())
register_url_convertor("consent_id", RecordIdConvertor())  # the FHIR facade's Consent ids: 32 hex digits too
ConsentIdPath = Annotated[
    str,
    Path(json_schema_extra={"pattern": RECORD_ID_PATTERN}, description="a Consent id (32 hex digits)"),
]
JsonNumber = Annotated[
    float,
    WithJsonSchema(
        {
            "type": "number",
            "description": "a number an IEEE double holds exactly, or the double's shortest spelling "
            "(others would hash as another number: 400 `inexact_number`)",
        }
    ),
]
JsonValue = TypeAliasType("JsonValue", "bool | JsonNumber | str | list[JsonValue] | dict[str, JsonValue] | None")
"""Any JSON value whose numbers are doubles (what the strict parser accepts)."""


def _json_object(value: Any) -> dict[str, Any]:
    if type(value) is not dict:
        raise ValueError("must be a JSON object")
    return value


JsonObject = Annotated[dict[str, Any], PlainValidator(_json_object, json_schema_input_type=dict[str, JsonValue])]
"""A JSON object (a document, metadata): described member by member, kept as parsed (the strict
parser and the library check its members, faster than a model would)."""
Signature = Annotated[
    str,
    Field(
        pattern=r"^0x(?:[0-9a-fA-F]{2})+$",
        max_length=2 + 2 * MAX_SIGNATURE_BYTES,
        examples=[EXAMPLE_SIGNATURE],
        description="0x-hex; 65 bytes r||s||v for an EOA",
    ),
]
Uint64 = Annotated[int, Field(ge=0, le=MAX_JSON_INTEGER, description="unix seconds (a uint64 on chain)"), JSON_NUMBER]
Deadline = Annotated[
    int, Field(ge=0, le=MAX_JSON_INTEGER, description="unix seconds; the signature is void after it"), JSON_NUMBER
]
Timestamp = Annotated[int, Field(ge=0, le=MAX_JSON_INTEGER, description="unix seconds"), JSON_NUMBER]
PatientPath = Annotated[
    ChecksummedAddress, Path(pattern=ADDRESS_PATTERN, description="the patient's address", examples=[EXAMPLE_PATIENT])
]


class Schema(BaseModel):
    """Base: camelCase aliases, unknown fields rejected."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")


def camel_config(example: dict[str, Any] | None = None, schema: dict[str, Any] | None = None) -> ConfigDict:
    """The base configuration, with an example shown at ``/docs`` and what else the JSON Schema says
    (constraints between fields, which pydantic checks in a model validator)."""
    config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")
    extra = {**({"examples": [example]} if example is not None else {}), **(schema or {})}
    if extra:
        config["json_schema_extra"] = extra
    return config


def _given(name: str) -> dict[str, Any]:
    return {"required": [name], "properties": {name: {"not": {"type": "null"}}}}


def one_payload_schema(names: Sequence[str], *, required: bool) -> dict[str, Any]:
    """JSON Schema for "exactly one of ``names``" (``required``) or "at most one" (a null one is not given)."""
    if required:
        return {"oneOf": [_given(name) for name in names]}
    return {"not": {"anyOf": [{"allOf": [_given(a), _given(b)]} for a, b in combinations(names, 2)]}}
