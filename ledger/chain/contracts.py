"""The compiled contracts shipped with the package, and decoding of their custom errors.

Artifacts are written by ``scripts/compile_contracts.py`` and committed, so nothing here needs a
compiler. Custom errors are decoded by their 4-byte selector into a name and named arguments,
which is how the rest of the library (and the API) tells reverts apart.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from eth_abi.abi import decode as abi_decode
from eth_utils.abi import function_signature_to_4byte_selector
from eth_utils.address import to_checksum_address

from ledger.exceptions import ArtifactError

RECORD_ANCHOR = "RecordAnchor"
CONSENT_REGISTRY = "ConsentRegistry"

CONSENT_CHANGE_EVENTS = ("ConsentGranted", "ConsentRevoked")
"""ConsentRegistry events that change one consent key."""
GUARDIAN_EVENTS = ("GuardianAppointed", "GuardianRemoved")
"""ConsentRegistry events that change one guardian appointment."""
CONSENT_SET_EVENTS = ("ConsentSetGranted", "ConsentSetRevoked")
"""ConsentRegistry events naming the consent document (``terms``, a FHIR Consent's digest) a transaction's
``ConsentGranted`` or ``ConsentRevoked`` events came from."""
CONSENT_EVENTS = (*CONSENT_CHANGE_EVENTS, *CONSENT_SET_EVENTS, *GUARDIAN_EVENTS, "EmergencyAccessRecorded")
"""Every ConsentRegistry event about a patient (all carry an indexed ``patient``)."""
ANCHOR_EVENTS = ("RootAnchored", "RecordAmended", "RecordRetracted")
"""Every RecordAnchor event about roots and records (role events aside)."""


@dataclass(frozen=True)
class Artifact:
    """One compiled contract: what is needed to deploy it and talk to it."""

    name: str
    abi: list[dict[str, Any]]
    bytecode: str
    deployed_bytecode: str
    metadata: str
    immutable_ranges: tuple[tuple[int, int], ...] = ()
    """``(start, length)`` in bytes of each immutable in the runtime code: zero in
    ``deployed_bytecode``, filled in at deployment."""

    def is_code_of(self, code: bytes) -> bool:
        """Whether deployed runtime ``code`` is this contract's (its immutables aside)."""
        expected = bytes.fromhex(self.deployed_bytecode.removeprefix("0x"))
        if len(code) != len(expected):
            return False
        masked = bytearray(code)
        for start, length in self.immutable_ranges:
            masked[start : start + length] = bytes(length)
        return bytes(masked) == expected


@cache
def load_artifact(name: str) -> Artifact:
    """Load a shipped artifact by contract name (``RecordAnchor`` or ``ConsentRegistry``)."""
    try:
        text = resources.files("ledger.chain.artifacts").joinpath(f"{name}.json").read_text("utf-8")
    except FileNotFoundError as err:
        raise ArtifactError(f"no compiled artifact for contract {name!r}", contract=name) from err
    data = json.loads(text)
    return Artifact(
        name=data["contractName"],
        abi=data["abi"],
        bytecode=data["bytecode"],
        deployed_bytecode=data["deployedBytecode"],
        metadata=data["metadata"],
        immutable_ranges=tuple((int(start), int(length)) for start, length in data.get("immutableRanges", ())),
    )


@dataclass(frozen=True)
class ErrorSpec:
    """A custom error's name and its argument names and ABI types."""

    name: str
    arg_names: tuple[str, ...]
    arg_types: tuple[str, ...]


def _abi_type(entry: dict[str, Any]) -> str:
    if entry["type"].startswith("tuple"):
        inner = ",".join(_abi_type(c) for c in entry["components"])
        return f"({inner}){entry['type'][5:]}"
    return str(entry["type"])


def error_table(abis: list[list[dict[str, Any]]]) -> dict[bytes, ErrorSpec]:
    """Map 4-byte selectors to the custom errors declared in ``abis``."""
    table: dict[bytes, ErrorSpec] = {}
    for abi in abis:
        for entry in abi:
            if entry.get("type") != "error":
                continue
            types = tuple(_abi_type(i) for i in entry["inputs"])
            selector = function_signature_to_4byte_selector(f"{entry['name']}({','.join(types)})")
            names = tuple(i["name"] or f"arg{n}" for n, i in enumerate(entry["inputs"]))
            table[selector] = ErrorSpec(entry["name"], names, types)
    return table


@cache
def known_errors() -> dict[bytes, ErrorSpec]:
    """Every custom error of the shipped contracts (OpenZeppelin's inherited ones included)."""
    return error_table([load_artifact(RECORD_ANCHOR).abi, load_artifact(CONSENT_REGISTRY).abi])


def decode_custom_error(
    revert_data: bytes, table: dict[bytes, ErrorSpec] | None = None
) -> tuple[str, dict[str, Any]] | None:
    """Decode revert data into ``(error name, {arg name: value})``, or None if not a known error."""
    specs = known_errors() if table is None else table
    spec = specs.get(bytes(revert_data[:4]))
    if spec is None:
        return None
    try:
        values = abi_decode(list(spec.arg_types), bytes(revert_data[4:]))
    except Exception:  # malformed data for a known selector: treat as unknown
        return None
    args = {
        name: to_checksum_address(value) if kind == "address" else value
        for name, kind, value in zip(spec.arg_names, spec.arg_types, values, strict=True)
    }
    return spec.name, args
