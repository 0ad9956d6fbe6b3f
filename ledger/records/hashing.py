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
import secrets
from typing import Final

import rfc8785
import sha3

from ledger.exceptions import InputError, InvalidDocumentError, InvalidHexError
from ledger.records.strict_json import MAX_JSON_DEPTH as MAX_JSON_DEPTH
from ledger.records.strict_json import check_value, parse_json

"""Bytes in a record digest (SHA-256)."""

SALT_SIZE: Final = 32
"""Bytes in a record salt."""

_BytesLike = (bytes, bytearray, memoryview)


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
        InvalidDocumentError: The text is refused by :func:`ledger.records.strict_json.parse_json`
            (not JSON, a repeated key, a number a double would round, nesting deeper than
            :data:`MAX_JSON_DEPTH`: the subclasses name which); or the value holds something JCS
            cannot represent: NaN or infinity, Python ``int`` beyond ``±(2**53 - 1)``, non-``str``
            object keys, unpaired surrogates, other types, or nesting deeper than
            :data:`MAX_JSON_DEPTH` (or cyclic).
    """
    if isinstance(document, (str, *_BytesLike)):
        value = parse_json(document)
    else:
        check_value(document)
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
