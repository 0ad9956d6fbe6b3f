"""Tests for ledger.hashing: digests, canonical JSON, salts, commitments and leaves."""

from __future__ import annotations

import hashlib
import json
import math
from typing import Any

import pytest
from eth_abi import encode as abi_encode
from eth_hash.auto import keccak as reference_keccak
from hypothesis import example, given
from hypothesis import strategies as st

from ledger.exceptions import InputError, InvalidDocumentError, InvalidHexError
from ledger.records.hashing import (
    MAX_JSON_DEPTH,
    SALT_SIZE,
    canonical_json,
    commitment,
    digest_bytes,
    digest_json,
    keccak256,
    leaf_hash,
    new_salt,
)

SALT = bytes.fromhex("11" * 32)
DIGEST = bytes.fromhex("22" * 32)
# Pinned from @openzeppelin/merkle-tree 1.0.8: StandardMerkleTree.of([[SALT, DIGEST]],
# ["bytes32", "bytes32"]).root, which for one value is its leaf.
OZ_LEAF = bytes.fromhex("430512f17360cbcc5c79d8c40984b7ce0ce7161c0b2d25997f5a3bf05c2a24b0")

bytes32 = st.binary(min_size=32, max_size=32)

# JSON values canonicalisation accepts: safe integers, finite floats, text without surrogates.
json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**53) + 1, max_value=2**53 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
)
json_values = st.recursive(
    json_scalars,
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=10), children, max_size=5),
    max_leaves=25,
)
# Top level an object or array: a top-level ``str`` is read as JSON text, not as a string value.
json_documents = st.dictionaries(st.text(max_size=10), json_values, max_size=5) | st.lists(json_values, max_size=5)


def _reversed_keys(value: Any) -> Any:
    """Return ``value`` with every object's key insertion order reversed."""
    if isinstance(value, dict):
        return {key: _reversed_keys(value[key]) for key in reversed(list(value))}
    if isinstance(value, list):
        return [_reversed_keys(item) for item in value]
    return value


# --- keccak256, digests, salts ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"", "c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470"),
        (b"abc", "4e03657aea45a94fc7d47ba826c8d667c0d1e6e33a64a036ec44f58fa12d6c45"),
    ],
)
def test_keccak256_known_answers(data: bytes, expected: str) -> None:
    assert keccak256(data).hex() == expected


@given(st.binary(max_size=300))
def test_keccak256_matches_eth_hash(data: bytes) -> None:
    assert keccak256(data) == reference_keccak(data)


def test_keccak256_accepts_bytes_like() -> None:
    assert keccak256(bytearray(b"abc")) == keccak256(memoryview(b"abc")) == keccak256(b"abc")


def test_keccak256_rejects_str() -> None:
    with pytest.raises(InputError):
        keccak256("abc")  # type: ignore[arg-type]


@given(st.binary(max_size=300))
def test_digest_bytes_is_sha256(data: bytes) -> None:
    assert digest_bytes(data) == hashlib.sha256(data).digest()
    assert len(digest_bytes(data)) == 32


def test_digest_bytes_rejects_non_bytes() -> None:
    with pytest.raises(InputError):
        digest_bytes({"a": 1})  # type: ignore[arg-type]


def test_new_salt_is_32_fresh_bytes() -> None:
    salts = {new_salt() for _ in range(100)}
    assert len(salts) == 100
    assert {len(salt) for salt in salts} == {SALT_SIZE}


# --- canonical JSON ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        ({"b": 2, "a": 1}, b'{"a":1,"b":2}'),
        ({"a": [1.0, 2.5, -0.0, 1e21, 1e-7, 0.000001]}, b'{"a":[1,2.5,0,1e+21,1e-7,0.000001]}'),
        (['\u20ac\n"'], '["\u20ac\\n\\""]'.encode()),
        ([None, True, False, {}, []], b"[null,true,false,{},[]]"),
        # RFC 8785 section 3.2.3: keys sort by UTF-16 code units, so the emoji (a surrogate
        # pair, 0xD83D...) comes before U+FB33, unlike code point order.
        (
            {"\u20ac": 1, "\r": 2, "\ufb33": 3, "1": 4, "\u0080": 5, "\U0001f600": 6, "\u00f6": 7},
            '{"\\r":2,"1":4,"\u0080":5,"\u00f6":7,"\u20ac":1,"\U0001f600":6,"\ufb33":3}'.encode(),
        ),
    ],
)
def test_canonical_json_known_forms(document: object, expected: bytes) -> None:
    assert canonical_json(document) == expected


def test_canonical_json_parses_text_not_string_values() -> None:
    assert canonical_json('"a"') == b'"a"'
    assert canonical_json(b' {"a" : 1 } ') == b'{"a":1}'
    with pytest.raises(InvalidDocumentError):
        canonical_json("a")


@pytest.mark.parametrize(
    "text",
    [
        '{"a":1.0,"b":"\\u00e9","c":[1E0,10e-1,0.1e1]}',
        '{ "c" : [ 1 , 1 , 1 ] , "b" : "é" , "a" : 1 }',
        '{\n  "b": "\\u00E9",\n  "a": 100e-2,\n  "c": [1.00, 1, 1]\n}',
    ],
)
def test_reserialised_text_gives_same_digest(text: str) -> None:
    expected = digest_json({"a": 1, "b": "\u00e9", "c": [1, 1, 1]})
    assert digest_json(text) == expected
    assert digest_json(text.encode()) == expected
    assert expected == hashlib.sha256(b'{"a":1,"b":"\xc3\xa9","c":[1,1,1]}').digest()


@given(
    json_documents,
    st.booleans(),
    st.booleans(),
    st.sampled_from([None, 0, 2, "\t"]),
    st.sampled_from([(",", ":"), (", ", ": "), (" ,", " : ")]),
)
@example({"a": 1.0, "b": "\u00e9"}, False, True, None, (",", ":"))
@example({"n": [0.1, 1e300, 5e-324, -0.0, 123456789012345.0]}, True, True, 2, (", ", ": "))
@example({"\U0001f600": {"x": [None, True]}, "": "\x00\x1f"}, True, False, "\t", (" ,", " : "))
def test_any_reserialisation_gives_same_digest(
    document: Any,
    reverse_keys: bool,
    ensure_ascii: bool,
    indent: int | str | None,
    separators: tuple[str, str],
) -> None:
    value = _reversed_keys(document) if reverse_keys else document
    text = json.dumps(value, ensure_ascii=ensure_ascii, indent=indent, separators=separators)
    assert digest_json(text) == digest_json(document)
    assert digest_json(text.encode()) == digest_json(document)
    assert digest_json(document) == hashlib.sha256(canonical_json(document)).digest()


@given(json_documents)
@example([2.0**53, -(2.0**53), 1e20, 1e21, 2.0**60])
def test_canonical_form_is_a_fixed_point(document: Any) -> None:
    canonical = canonical_json(document)
    assert canonical_json(canonical) == canonical


@pytest.mark.parametrize(
    "document",
    [
        math.nan,
        {"a": math.inf},
        [-math.inf],
        {1: "non-str key"},
        {"a": {1, 2}},
        {"a": b"bytes"},
        2**53,
        -(2**53),
        "9007199254740993",
        "-9007199254740993",
        "1" * 5000,
        '{"a": NaN}',
        '{"a": Infinity}',
        "[-Infinity]",
        "1e400",
        '{"a": 1, "a": 2}',
        '{"x": {"a": 1, "b": 2, "a": 1}}',
        '{"a": 1,}',
        "{'a': 1}",
        "",
        b"\xff\xfe{}",
        b'"\xc3"',
        '"\\ud800"',
        "\ud800",
        "[" * 100_000 + "]" * 100_000,
        '{"a":' * 600 + "1" + "}" * 600,
    ],
    ids=lambda document: repr(document)[:40],
)
def test_canonical_json_rejects(document: object) -> None:
    with pytest.raises(InvalidDocumentError):
        canonical_json(document)
    with pytest.raises(InvalidDocumentError):
        digest_json(document)


def test_large_integer_literals_are_doubles_when_exact() -> None:
    # JSON numbers are IEEE doubles (RFC 8785): an integer literal past 2**53 - 1 is accepted
    # when the double holds it exactly (so canonical forms re-parse), refused when it would round.
    assert canonical_json("9007199254740992") == canonical_json(2.0**53) == b"9007199254740992"
    assert canonical_json("[100000000000000000000]") == b"[100000000000000000000]"
    # 2**60 written exactly, and in its canonical (ECMAScript) spelling:
    assert canonical_json("1152921504606846976") == canonical_json("1152921504606847000")
    with pytest.raises(InvalidDocumentError):
        canonical_json("1152921504606846977")
    with pytest.raises(InvalidDocumentError):
        canonical_json("9007199254740993")


def test_deeply_nested_value_is_rejected() -> None:
    document: list[Any] = []
    for _ in range(100_000):
        document = [document]
    with pytest.raises(InvalidDocumentError):
        canonical_json(document)
    cyclic: list[Any] = []
    cyclic.append(cyclic)
    with pytest.raises(InvalidDocumentError):
        canonical_json(cyclic)


def test_depth_limit_is_exact_and_ignores_brackets_in_strings() -> None:
    at_limit = "[" * MAX_JSON_DEPTH + "]" * MAX_JSON_DEPTH
    assert canonical_json(at_limit) == at_limit.encode()
    nested: list[Any] = []
    for _ in range(MAX_JSON_DEPTH - 1):
        nested = [nested]
    assert canonical_json(nested) == at_limit.encode()
    with pytest.raises(InvalidDocumentError):
        canonical_json([nested])
    with pytest.raises(InvalidDocumentError):
        canonical_json("[" + at_limit + "]")
    brackets_in_text = json.dumps(["[{" * 1000, {'k\\"[': "]" * 5}])
    assert json.loads(canonical_json(brackets_in_text)) == json.loads(brackets_in_text)


def test_document_errors_are_value_errors() -> None:
    with pytest.raises(ValueError, match="duplicate key"):
        canonical_json('{"a": 1, "a": 1}')


# --- commitments and leaves --------------------------------------------------------------------


def test_pinned_leaf_matches_openzeppelin() -> None:
    assert leaf_hash(SALT, DIGEST) == OZ_LEAF
    assert commitment(SALT, DIGEST).hex() == ("3e92e0db88d6afea9edc4eedf62fffa4d92bcdfc310dccbe943747fe8302e871")


@given(bytes32, bytes32)
@example(bytes(32), bytes(32))
@example(b"\xff" * 32, b"\x00" * 32)
def test_commitment_and_leaf_match_abi_encoding(salt: bytes, digest: bytes) -> None:
    encoded = abi_encode(["bytes32", "bytes32"], [salt, digest])
    assert encoded == salt + digest
    assert commitment(salt, digest) == reference_keccak(encoded)
    assert leaf_hash(salt, digest) == reference_keccak(reference_keccak(encoded))


@given(bytes32, bytes32, st.integers(0, 63), st.integers(1, 255))
@example(SALT, DIGEST, 0, 1)
@example(SALT, DIGEST, 63, 0x80)
def test_any_changed_byte_changes_the_leaf(salt: bytes, digest: bytes, position: int, mask: int) -> None:
    preimage = bytearray(salt + digest)
    preimage[position] ^= mask
    tampered = bytes(preimage)
    assert leaf_hash(tampered[:32], tampered[32:]) != leaf_hash(salt, digest)
    assert commitment(tampered[:32], tampered[32:]) != commitment(salt, digest)


def test_salt_and_digest_are_not_interchangeable() -> None:
    assert leaf_hash(SALT, DIGEST) != leaf_hash(DIGEST, SALT)


@pytest.mark.parametrize("function", [commitment, leaf_hash])
@pytest.mark.parametrize(
    ("salt", "digest"),
    [(SALT[:31], DIGEST), (SALT, DIGEST + b"\x00"), (b"", b""), (SALT + DIGEST, b"")],
)
def test_wrong_lengths_are_rejected(function: Any, salt: bytes, digest: bytes) -> None:
    with pytest.raises(InvalidHexError):
        function(salt, digest)


@pytest.mark.parametrize("function", [commitment, leaf_hash])
@pytest.mark.parametrize(("salt", "digest"), [("11" * 32, DIGEST), (SALT, None), (SALT, list(DIGEST))])
def test_wrong_types_are_rejected(function: Any, salt: object, digest: object) -> None:
    with pytest.raises(InputError):
        function(salt, digest)


def test_bytes_like_salt_and_digest_are_accepted() -> None:
    assert leaf_hash(bytearray(SALT), memoryview(DIGEST)) == OZ_LEAF
