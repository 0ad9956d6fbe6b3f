"""Record digests, salts and the salted commitments that go into the Merkle tree.

Pure functions, no I/O. The chain of values for one record is fixed by the design:

1. ``digest``: SHA-256 of the record. A JSON/FHIR document is hashed in its RFC 8785 (JCS)
   canonical form, so re-serialising it (key order, whitespace, ``1.0`` vs ``1``, ``\\u00e9`` vs
   ``é``) never changes its digest; raw bytes are hashed as they are.
2. ``salt``: 32 random bytes per record, so a digest of a guessable document (a consent form with
   few fields) cannot be confirmed by hashing candidates against a published commitment.
3. ``commitment``: ``keccak256(salt || digest)``, equal to Solidity's
   ``keccak256(abi.encode(bytes32 salt, bytes32 digest))``.
4. ``leaf_hash``: ``keccak256(commitment)``, the leaf OpenZeppelin's ``StandardMerkleTree`` makes
   for the value ``[salt, digest]`` with leaf encoding ``["bytes32", "bytes32"]``. The second hash
   keeps a 64-byte internal node from ever being accepted as a leaf (second-preimage defence).

Keccak comes from safe-pysha3's C implementation (about 1.4 M hashes/s here, 7x eth-hash's default
pycryptodome backend); ``ledger.records.merkle`` builds whole trees with the same constructor.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import secrets
from collections.abc import Iterable
from itertools import accumulate
from typing import Any, Final, NoReturn

import rfc8785
import sha3

from ledger.exceptions import InputError, InvalidDocumentError, InvalidHexError

"""Bytes in a record digest (SHA-256)."""

SALT_SIZE: Final = 32
"""Bytes in a record salt."""

MAX_JSON_DEPTH: Final = 512
"""Deepest nesting of arrays/objects accepted. Checked before parsing: py_ecc (imported with
web3/eth-account) raises the recursion limit to 100,000, and the stdlib JSON parser then overflows
the C stack (a segfault, not an exception) on text like ``"[" * 100_000``."""

_BytesLike = (bytes, bytearray, memoryview)
_MAX_SAFE_INTEGER = 2**53 - 1
_JSON_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")
_BRACKET_STEP = {"[": 1, "{": 1, "]": -1, "}": -1}


# --- primitives ------------------------------------------------------------------------------


def keccak256(data: bytes) -> bytes:
    """Return the Ethereum Keccak-256 hash of ``data`` (not NIST SHA3-256).

    Args:
        data: Bytes to hash (``bytearray`` and ``memoryview`` are accepted too).

    Raises:
        InputError: ``data`` is not bytes-like (a ``str`` must be encoded by the caller, so that
            the encoding is a deliberate choice).
    """
    hashed: bytes = sha3.keccak_256(_require_bytes("data", data)).digest()
    return hashed


def new_salt() -> bytes:
    """Return a fresh 32-byte salt from the operating system's CSPRNG."""
    return secrets.token_bytes(SALT_SIZE)


# --- record digests --------------------------------------------------------------------------


def canonical_json(document: object) -> bytes:
    """Return the RFC 8785 (JCS) canonical UTF-8 form of a JSON document.

    Two serialisations of the same document give the same bytes, which is what lets a record be
    stored, re-serialised by another system and still match its anchored digest.

    Args:
        document: Either a parsed JSON value (``dict`` with ``str`` keys, ``list``/``tuple``,
            ``str``, ``int``, ``float``, ``bool``, ``None``), or JSON *text* as ``str``/``bytes``/
            ``bytearray``. Text is parsed first; so ``canonical_json('"a"')`` is the JSON string
            ``"a"`` while ``canonical_json("a")`` is invalid JSON. Bytes must be UTF-8.

    Raises:
        InvalidDocumentError: The text is not valid JSON or repeats a key within an object; or the
            value holds something JCS cannot represent: NaN or infinity, Python ``int`` beyond
            ``±(2**53 - 1)``, integer literals in text that a double would round (JSON numbers
            are IEEE doubles, so they would silently collide with their neighbours; a literal
            already in the double's canonical spelling is accepted),
            non-``str`` object keys, unpaired surrogates, other types, or nesting deeper than
            :data:`MAX_JSON_DEPTH` (or cyclic).
    """
    if isinstance(document, (str, *_BytesLike)):
        value = _parse_json_text(document)
    else:
        _check_value_depth(document)
        value = document
    try:
        canonical: bytes = rfc8785.dumps(value)
    except rfc8785.CanonicalizationError as err:
        raise InvalidDocumentError(f"document cannot be canonicalised: {err}") from err
    except RecursionError as err:
        raise InvalidDocumentError("document is nested too deeply to canonicalise") from err
    return canonical


def digest_json(document: object) -> bytes:
    """Return the SHA-256 digest of a JSON document's RFC 8785 canonical form.

    Args:
        document: A parsed JSON value or JSON text, as accepted by :func:`canonical_json`.

    Raises:
        InvalidDocumentError: As :func:`canonical_json`.
    """
    return hashlib.sha256(canonical_json(document)).digest()


def digest_bytes(data: bytes) -> bytes:
    """Return the SHA-256 digest of a raw (non-JSON) record, byte for byte.

    Args:
        data: The record's bytes (``bytearray``/``memoryview`` accepted).

    Raises:
        InputError: ``data`` is not bytes-like.
    """
    return hashlib.sha256(_require_bytes("data", data)).digest()


# --- commitments and leaves ------------------------------------------------------------------


def commitment(salt: bytes, digest: bytes) -> bytes:
    """Return the salted commitment ``keccak256(salt || digest)`` of one record.

    Equal to Solidity's ``keccak256(abi.encode(salt, digest))`` for two ``bytes32`` values.

    Args:
        salt: The record's 32-byte salt.
        digest: The record's 32-byte SHA-256 digest.

    Raises:
        InputError: ``salt`` or ``digest`` is not bytes-like.
        InvalidHexError: ``salt`` or ``digest`` is not exactly 32 bytes.
    """
    preimage = _require_bytes32("salt", salt) + _require_bytes32("digest", digest)
    hashed: bytes = sha3.keccak_256(preimage).digest()
    return hashed


def leaf_hash(salt: bytes, digest: bytes) -> bytes:
    """Return the Merkle leaf of one record: ``keccak256(commitment(salt, digest))``.

    This is OpenZeppelin ``StandardMerkleTree``'s leaf for the value ``[salt, digest]`` with leaf
    encoding ``["bytes32", "bytes32"]``, so proofs verify with ``MerkleProof.verify`` on chain.

    Args:
        salt: The record's 32-byte salt.
        digest: The record's 32-byte SHA-256 digest.

    Raises:
        InputError: ``salt`` or ``digest`` is not bytes-like.
        InvalidHexError: ``salt`` or ``digest`` is not exactly 32 bytes.
    """
    hashed: bytes = sha3.keccak_256(commitment(salt, digest)).digest()
    return hashed


# --- validation ------------------------------------------------------------------------------


def _require_bytes(name: str, value: object) -> bytes:
    """Return ``value`` as ``bytes``, or raise :class:`InputError` if it is not bytes-like."""
    if isinstance(value, bytes):
        return value
    if isinstance(value, (bytearray, memoryview)):
        return bytes(value)
    raise InputError(f"{name} must be bytes, not {type(value).__name__}", field=name)


def _require_bytes32(name: str, value: object) -> bytes:
    """Return ``value`` as 32 ``bytes``; reject other types and lengths."""
    raw = _require_bytes(name, value)
    if len(raw) != 32:
        raise InvalidHexError(f"{name} must be 32 bytes, got {len(raw)}", field=name, length=len(raw))
    return raw


def _parse_json_text(text: str | bytes | bytearray | memoryview) -> Any:
    """Parse JSON text strictly: UTF-8 only, no duplicate keys, no NaN/Infinity literals."""
    if not isinstance(text, str):
        try:
            text = bytes(text).decode("utf-8")
        except UnicodeDecodeError as err:
            raise InvalidDocumentError(f"document is not UTF-8: {err}") from err
    _check_text_depth(text)
    try:
        return json.loads(
            text, object_pairs_hook=_reject_duplicate_keys, parse_constant=_reject_constant, parse_int=_parse_int
        )
    except json.JSONDecodeError as err:
        raise InvalidDocumentError(f"document is not valid JSON: {err}") from err
    except RecursionError as err:
        raise InvalidDocumentError("document is nested too deeply to parse") from err


def _check_text_depth(text: str) -> None:
    """Refuse JSON text nested deeper than :data:`MAX_JSON_DEPTH`, without recursing.

    Strings are cut out first (brackets inside them do not nest); the regexes and
    ``accumulate`` run in C, so this costs a small fraction of the parse.
    """
    if text.count("[") + text.count("{") <= MAX_JSON_DEPTH:
        return
    brackets = _NOT_BRACKET.sub("", _JSON_STRING.sub("", text))
    depth = max(accumulate(map(_BRACKET_STEP.__getitem__, brackets)), default=0)
    if depth > MAX_JSON_DEPTH:
        raise InvalidDocumentError(f"document nests deeper than {MAX_JSON_DEPTH} levels", max_depth=MAX_JSON_DEPTH)


def _check_value_depth(value: object) -> None:
    """Refuse a parsed value nested deeper than :data:`MAX_JSON_DEPTH` (or cyclic), iteratively."""
    stack: list[tuple[object, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            children: Iterable[object] = node.values()
        elif isinstance(node, (list, tuple)):
            children = node
        else:
            continue
        if depth > MAX_JSON_DEPTH:
            raise InvalidDocumentError(f"document nests deeper than {MAX_JSON_DEPTH} levels", max_depth=MAX_JSON_DEPTH)
        stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list, tuple)))


def _reject_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """Build a JSON object, refusing repeated keys (parsers disagree on which one wins)."""
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise InvalidDocumentError(f"duplicate key in JSON object: {key!r}", key=key)
            seen.add(key)
    return obj


def _parse_int(literal: str) -> int | float:
    """Read an integer literal as RFC 8785 does (an IEEE double), but never a rounded one.

    Safe integers (up to ``2**53 - 1``) stay ``int``. A larger literal becomes a ``float`` if the
    double holds it exactly (``9007199254740992``), or if it is already the double's canonical
    spelling (``1152921504606847000`` for ``2**60``: canonical forms must parse back). Anything
    else (``9007199254740993``) would round, so two different documents would share a digest:
    refused.
    """
    try:
        value = int(literal)
    except ValueError as err:  # beyond Python's int-from-string digit limit
        raise InvalidDocumentError("integer literal is too long", length=len(literal)) from err
    if -_MAX_SAFE_INTEGER <= value <= _MAX_SAFE_INTEGER:
        return value
    as_double = float(literal)
    if not math.isinf(as_double) and (int(as_double) == value or rfc8785.dumps(as_double) == literal.encode()):
        return as_double
    raise InvalidDocumentError(f"integer {literal} cannot be held exactly by a JSON number", literal=literal)


def _reject_constant(name: str) -> NoReturn:
    """Refuse the non-standard literals ``NaN``, ``Infinity`` and ``-Infinity``."""
    raise InvalidDocumentError(f"non-finite number {name} is not valid JSON", literal=name)
