"""Tests for ledger.consent.codes: scope, purpose and reason codes as left-aligned bytes32."""

from __future__ import annotations

import pytest
from eth_abi.abi import encode as abi_encode
from hypothesis import example, given
from hypothesis import strategies as st

from ledger.consent.codes import ALL_DATA, PURPOSES_OF_USE, encode_purpose
from ledger.exceptions import InputError, InvalidCodeError
from ledger.values import decode_code, encode_code

codes = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_.:/-]{0,31}", fullmatch=True) | st.just(ALL_DATA)


def test_encode_is_solidity_bytes32_of_the_ascii_code() -> None:
    assert encode_code("TREAT") == b"TREAT" + bytes(27)
    # abi.encode(bytes32("TREAT")) is the same 32 bytes: left-aligned, zero-padded.
    assert encode_code("TREAT") == abi_encode(["bytes32"], [b"TREAT"])
    assert encode_code(ALL_DATA) == b"*" + bytes(31)
    assert encode_code("Observation/vital-signs") == b"Observation/vital-signs".ljust(32, b"\0")


def test_a_code_may_use_all_32_bytes() -> None:
    longest = "A" + "b" * 30 + "9"
    assert encode_code(longest) == longest.encode("ascii")
    assert decode_code(encode_code(longest)) == longest


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "A" * 33,
        "two words",
        "TREAT\n",
        "\nTREAT",
        "_TREAT",
        "-x",
        "**",
        "a*",
        "Ünïcode",
        "TRE\0AT",
        "'; DROP TABLE consent; --",
    ],
)
def test_invalid_codes_are_rejected(bad: str) -> None:
    with pytest.raises(InvalidCodeError) as caught:
        encode_code(bad)
    assert caught.value.code == "invalid_code"
    assert caught.value.details == {"field": "code"}


@pytest.mark.parametrize("not_text", [b"TREAT", None, 5, ["TREAT"]])
def test_only_str_is_a_code(not_text: object) -> None:
    with pytest.raises(InvalidCodeError):
        encode_code(not_text)  # type: ignore[arg-type]


def test_invalid_code_error_is_an_input_and_value_error() -> None:
    assert issubclass(InvalidCodeError, InputError)
    assert issubclass(InvalidCodeError, ValueError)


@given(codes)
@example(ALL_DATA)
@example("0")
def test_decode_inverts_encode(code: str) -> None:
    raw = encode_code(code)
    assert len(raw) == 32
    assert decode_code(raw) == code


@pytest.mark.parametrize(
    "raw",
    [
        bytes(32),
        b"\xff" * 32,
        b"TRE\0AT".ljust(32, b"\0"),
        b"two words".ljust(32, b"\0"),
        b"\0TREAT".ljust(32, b"\0"),
        "Ü".encode().ljust(32, b"\0"),
    ],
)
def test_what_is_not_a_code_decodes_to_hex(raw: bytes) -> None:
    assert decode_code(raw) == "0x" + raw.hex()


@pytest.mark.parametrize("purpose", sorted(PURPOSES_OF_USE))
def test_known_purposes_encode_like_any_code(purpose: str) -> None:
    assert encode_purpose(purpose) == encode_code(purpose)


def test_the_hl7_purposes_the_registry_documents_are_known() -> None:
    assert {"TREAT", "ETREAT", "HPAYMT", "HRESCH"} <= set(PURPOSES_OF_USE)
    assert all(description for description in PURPOSES_OF_USE.values())


@pytest.mark.parametrize("purpose", ["treat", "FOO", "", ALL_DATA, "TREAT ", "Observation"])
def test_unknown_purposes_are_rejected(purpose: str) -> None:
    with pytest.raises(InvalidCodeError) as caught:
        encode_purpose(purpose)
    assert caught.value.details == {"field": "purpose"}
