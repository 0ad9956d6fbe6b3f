"""Fast receipt parsing and the local checks: digest, leaf and Merkle path, no chain involved.

:class:`ledger.records.receipts.Receipt` (pydantic) is the reference format. Parsing hundreds of thousands
of receipts through it costs more than verifying them, so :func:`parse_receipt` reads the same JSON
with orjson and validates it by hand, accepting what the model accepts (camelCase keys, no extras,
``0x`` + 64 hex digits, checksummed or single-case addresses, proofs of at most 64 nodes) and
refusing anything else with the field and problem named (a ``parse`` failure). One difference, on
purpose: numbers must be JSON integers, where the model's lax mode would coerce ``true`` or ``"5"``;
receipts are machine-written, so such a receipt was altered.

:class:`LocalVerifier` then recomputes the leaf from the salt and digest and walks the proof to a
root. Receipts of one batch share their upper proof nodes, so each ``(node, sibling)`` pair is
hashed once and remembered: a pure function memoised, so the result is exactly
:func:`ledger.records.merkle.process_proof`'s, with about two hashes per receipt instead of twelve.
"""

from __future__ import annotations

import binascii
from dataclasses import dataclass
from operator import itemgetter
from typing import Any, Final, NamedTuple

import orjson
import sha3

from ledger.exceptions import InputError, InvalidProofError
from ledger.records.receipts import (
    DIGEST_ALGORITHM,
    OLD_VERSION_PROBLEM,
    RECEIPT_TYPE,
    RECEIPT_VERSION,
    TREE_FORMAT,
    Receipt,
)
from ledger.records.verification import (
    DIGEST,
    LEAF,
    PARSE,
    PROOF,
    Check,
    digest_check,
    leaf_check,
    proof_check,
    proof_fits,
)
from ledger.values import checksum

LOCAL_STEPS: Final = tuple(step.name for step in (PARSE, DIGEST, LEAF, PROOF))
"""Steps checked without the chain, in order."""

MAX_PROOF_LENGTH: Final = 64
_REQUIRED: Final = frozenset(
    {
        "chainId",
        "contract",
        "transactionHash",
        "blockNumber",
        "anchoredAt",
        "anchorer",
        "root",
        "leafCount",
        "leaf",
        "proof",
        "digest",
        "salt",
    }
)
_CONSTANTS: Final[dict[str, Any]] = {
    "type": RECEIPT_TYPE,
    "version": RECEIPT_VERSION,
    "digestAlgorithm": DIGEST_ALGORITHM,
    "treeFormat": TREE_FORMAT,
    "leafEncoding": ["bytes32", "bytes32"],
}
_ALLOWED: Final = _REQUIRED | frozenset(_CONSTANTS)
_WRITTEN_ORDER: Final = sorted(_ALLOWED, key=[f.alias or name for name, f in Receipt.model_fields.items()].index)
"""The allowed keys in the order :meth:`ledger.records.receipts.Receipt.to_json` writes them (orjson keeps a
document's order, and comparing two lists is quicker than comparing the key set)."""
_constant_values: Final = itemgetter(*_CONSTANTS)
_CONSTANT_VALUES: Final = tuple(_CONSTANTS.values())
_HASH_FIELDS: Final = ("transactionHash", "root", "leaf", "digest", "salt")
_hash_values: Final = itemgetter(*_HASH_FIELDS)
_record_values: Final = itemgetter("leaf", "digest", "salt")
_claim_values: Final = itemgetter(
    "chainId", "contract", "transactionHash", "blockNumber", "anchoredAt", "anchorer", "root", "leafCount"
)
"""A claim's raw JSON values: the key under which its validated :class:`ReceiptClaim` is remembered."""
_ZEROS: Final = ["0" * count for count in range(len(_HASH_FIELDS) + MAX_PROOF_LENGTH + 1)]
_EXES: Final = ["x" * count for count in range(len(_HASH_FIELDS) + MAX_PROOF_LENGTH + 1)]
_keccak = sha3.keccak_256
_BODY = itemgetter(slice(2, 66))
"""A hex field's 64 digits. Cut at 66, not to the end: the bodies then come to 64 digits each only if
every string has at least 66 characters, and as the strings total 66 each, all have exactly 66 (so
every ``0x`` checked in the joined text is the start of a string)."""
_addresses: dict[str, str] = {}
_new_tuple: Final = tuple.__new__
_unhexlify: Final = binascii.unhexlify


class ReceiptClaim(NamedTuple):
    """What a receipt says about the chain. Receipts of one batch share one claim, checked once.

    A named tuple, not a dataclass: cheap to build and hashed to group receipts (parsing hands out
    one remembered claim per batch, see :func:`parse_receipt`).
    """

    chain_id: int
    contract: str
    root: bytes
    block_number: int
    anchorer: str
    anchored_at: int
    transaction_hash: bytes
    leaf_count: int


CLAIM_MEMO_LIMIT: Final = 4_096
"""Validated claims remembered per process (a few per batch of receipts; emptied when full)."""
_claims: dict[tuple[Any, ...], ReceiptClaim] = {}
"""Validated claims by their raw JSON values (see :func:`parse_receipt`)."""
_last: list[tuple[tuple[Any, ...], ReceiptClaim | None]] = [((), None)]
"""The raw values and claim validated last, as one pair (read and replaced whole, so that threads
never see the values of one claim with another): comparing with them spares hashing the strings."""


class ParsedReceipt(NamedTuple):
    """A receipt's fields, validated: the chain claim and the record's own values.

    ``proof_blob`` is the proof's nodes concatenated (32 bytes each), which is what the memoised
    verifier compares; :attr:`proof` splits it.
    """

    claim: ReceiptClaim
    leaf: bytes
    proof_blob: bytes
    digest: bytes
    salt: bytes

    @property
    def proof(self) -> tuple[bytes, ...]:
        blob = self.proof_blob
        return tuple(blob[i : i + 32] for i in range(0, len(blob), 32))


@dataclass(frozen=True, slots=True)
class Failure:
    """Why a receipt failed: the step, in words, and the values compared (0x-hex or decimal)."""

    step: str
    detail: str
    expected: str | None = None
    actual: str | None = None

    @classmethod
    def of(cls, check: Check) -> Failure:
        """A failed step's outcome as a report entry."""
        return cls(check.name, check.detail, check.expected, check.actual)


def _malformed(field: str, problem: str) -> InvalidProofError:
    return InvalidProofError(PARSE.because(f"{field}: {problem}" if field else problem), field=field, problem=problem)


def _node(value: Any, field: str) -> bytes:
    if type(value) is str and len(value) == 66 and value[:2] == "0x":
        try:
            parsed = bytes.fromhex(value[2:])
        except ValueError:
            pass
        else:
            if len(parsed) == 32:
                return parsed
    raise _malformed(field, "expected 0x followed by 64 hex digits")


def _address(data: dict[str, Any], field: str) -> str:
    value = data[field]
    known = _addresses.get(value) if type(value) is str else None
    if known is not None:
        return known
    if type(value) is not str or len(value) != 42 or value[:2] != "0x":  # the model's pattern: "0x" and 40 digits
        raise _malformed(field, "expected 0x followed by 40 hex digits")
    try:
        normalised = str(checksum(value))
    except InputError as err:
        raise _malformed(field, err.message) from err
    if len(_addresses) < 100_000:
        _addresses[value] = normalised
    return normalised


def parse_receipt(raw: bytes | str) -> ParsedReceipt:
    """Parse and validate receipt JSON as :meth:`ledger.records.receipts.Receipt.parse` would, only faster.

    The hex fields (five hashes and the proof) are checked and decoded together: each must be a
    66-character string starting ``0x``; their bodies joined must decode to exactly 32 bytes each
    (``binascii.unhexlify`` refuses anything but hex digits). Anything off falls back to
    field-by-field checks, which name the field, in the order the fields are listed above.

    The chain claim (chain id, contract, transaction, block, time, anchorer, root, leaf count) is
    the same for every receipt of a batch: once validated, it is remembered by its raw JSON values,
    so later receipts of the batch only compare those values (exact string equality; the numbers
    are still checked to be JSON integers) and decode their own hashes and proof.

    Raises:
        InvalidProofError: Not JSON, not an object, a missing or unknown field, or a field of the
            wrong shape; ``details`` names the ``field`` and the ``problem``.
    """
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as err:
        raise _malformed("", f"not JSON ({err})") from err
    if type(data) is not dict:
        raise _malformed("", "a receipt is a JSON object")
    keys = data.keys()
    if [*keys] == _WRITTEN_ORDER or keys == _ALLOWED:  # every field written: the constants compared at once
        if _constant_values(data) != _CONSTANT_VALUES:
            _check_constants(data)
    else:
        if not keys >= _REQUIRED or not keys <= _ALLOWED:
            missing, unknown = sorted(_REQUIRED - keys), sorted(keys - _ALLOWED)
            raise _malformed(",".join(missing or unknown), "missing field" if missing else "unknown field")
        if len(keys) != len(_REQUIRED):
            _check_constants(data)
    proof = data["proof"]
    if type(proof) is not list or len(proof) > MAX_PROOF_LENGTH:
        raise _malformed("proof", f"expected a list of at most {MAX_PROOF_LENGTH} nodes")
    raw_claim = _claim_values(data)
    last_raw, last_claim = _last[0]
    if raw_claim == last_raw:  # receipts come batch by batch
        claim = last_claim
    else:
        try:
            claim = _claims.get(raw_claim)
        except TypeError:  # a list or object where a claim field belongs: refused below, by name
            claim = None
    if (
        claim is not None
        and type(raw_claim[0]) is int
        and type(raw_claim[3]) is int
        and type(raw_claim[4]) is int
        and type(raw_claim[7]) is int
    ):  # True == 1 and 1.0 == 1
        decoded = _decode_nodes([*_record_values(data), *proof], data)
        return _new_tuple(ParsedReceipt, (claim, decoded[0:32], decoded[96:], decoded[32:64], decoded[64:96]))
    decoded = _decode_nodes([*_hash_values(data), *proof], data)
    chain_id, block_number, anchored_at, leaf_count = (
        data["chainId"],
        data["blockNumber"],
        data["anchoredAt"],
        data["leafCount"],
    )
    if type(chain_id) is not int or chain_id < 1:
        raise _malformed("chainId", "expected an integer >= 1")
    if type(block_number) is not int or block_number < 0:
        raise _malformed("blockNumber", "expected an integer >= 0")
    if type(anchored_at) is not int or anchored_at < 0:
        raise _malformed("anchoredAt", "expected an integer >= 0")
    if type(leaf_count) is not int or leaf_count < 1:
        raise _malformed("leafCount", "expected an integer >= 1")
    # tuple.__new__ directly: the named tuples' own __new__ is a Python call, twice per receipt
    claim = _new_tuple(
        ReceiptClaim,
        (
            chain_id,
            _address(data, "contract"),
            decoded[32:64],
            block_number,
            _address(data, "anchorer"),
            anchored_at,
            decoded[0:32],
            leaf_count,
        ),
    )
    if len(_claims) >= CLAIM_MEMO_LIMIT:
        _claims.clear()
    _claims[raw_claim] = claim
    _last[0] = raw_claim, claim
    return _new_tuple(ParsedReceipt, (claim, decoded[64:96], decoded[160:], decoded[96:128], decoded[128:160]))


def _decode_nodes(hexes: list[Any], data: dict[str, Any]) -> bytes:
    """The hex strings decoded and concatenated, 32 bytes each, or the error naming the first bad one."""
    count = len(hexes)
    try:
        blob = "".join(hexes)
    except TypeError:
        blob = ""
    decoded = b""
    if len(blob) == 66 * count and blob[0::66] == _ZEROS[count] and blob[1::66] == _EXES[count]:
        try:  # noqa: SIM105 (hot path: a suppress() context costs more than the whole decode)
            decoded = _unhexlify("".join(map(_BODY, hexes)))
        except ValueError:  # binascii.Error, or a non-ASCII string
            pass
    if len(decoded) != 32 * count:
        _name_bad_node(data)
    return decoded


def _check_constants(data: dict[str, Any]) -> None:
    """Raise the error naming the first constant field present with another value."""
    for name, expected in _CONSTANTS.items():
        if name in data and data[name] != expected:
            raise _malformed(
                name, OLD_VERSION_PROBLEM if name == "version" and data[name] == 1 else f"expected {expected!r}"
            )


def _name_bad_node(data: dict[str, Any]) -> None:
    """Raise the error naming the first hex field that is not ``0x`` and 64 hex digits."""
    for name in _HASH_FIELDS:
        _node(data[name], name)
    for node in data["proof"]:
        _node(node, "proof")
    raise _malformed("", "malformed hex field")  # unreachable: some node failed above


def leaf_of(salt: bytes, digest: bytes) -> bytes:
    """``keccak256(keccak256(salt || digest))``, as :func:`ledger.records.hashing.leaf_hash`."""
    return bytes(_keccak(_keccak(salt + digest).digest()).digest())


class LocalVerifier:
    """The off-chain steps (digest, leaf, proof), memoised across receipts of the same trees.

    Two memos, both of pure functions, so results equal :func:`ledger.records.merkle.process_proof`'s:

    * ``(node, sibling) -> parent``: each pair of a tree is hashed once (a leaf's pair is shared
      with its sibling leaf);
    * ``node -> (remaining proof, root)``: once a walk from a node with some sibling sequence has
      reached a root, any later receipt reaching that node with the very same remaining siblings
      reaches the same root, so its walk stops there (one comparison of the remaining bytes).

    Args:
        memo_limit: Most entries per memo; a memo is emptied when full.
    """

    def __init__(self, memo_limit: int = 2_000_000) -> None:
        self._parents: dict[bytes, bytes] = {}
        self._walks: dict[bytes, tuple[bytes, bytes]] = {}
        self._limit = memo_limit

    def root_of(self, leaf: bytes, proof_blob: bytes) -> bytes:
        """The root the proof (nodes concatenated) leads to from ``leaf``."""
        parents, walks = self._parents, self._walks
        if len(parents) > self._limit or len(walks) > self._limit:
            parents.clear()
            walks.clear()
        size = len(proof_blob)
        node = leaf  # the leaf itself is never met again in another walk: no lookup
        offset = 0
        visited: list[tuple[bytes, bytes]] = []
        while offset < size:
            sibling = proof_blob[offset : offset + 32]
            pair = node + sibling if node < sibling else sibling + node
            parent = parents.get(pair)
            if parent is None:
                parent = parents[pair] = _keccak(pair).digest()
            node = parent
            offset += 32
            if offset == size:
                break
            rest = proof_blob[offset:]
            known = walks.get(node)
            if known is not None and known[0] == rest:  # e.g. the sibling leaf's walk, from the same node
                node = known[1]
                break
            visited.append((node, rest))
        for seen, rest in visited:
            walks[seen] = (rest, node)
        return node

    def check(self, receipt: ParsedReceipt, document_digest: bytes | None = None) -> Failure | None:
        """The first local step that fails, or None if all hold."""
        if document_digest is not None and document_digest != receipt.digest:
            return Failure.of(digest_check(receipt.digest, document_digest))
        leaf = _keccak(_keccak(receipt.salt + receipt.digest).digest()).digest()
        if leaf != receipt.leaf:
            return Failure.of(leaf_check(receipt.leaf, leaf))
        if not proof_fits(receipt.claim.leaf_count, len(receipt.proof_blob) // 32):
            return Failure.of(proof_check(leaf, receipt.proof, receipt.claim.root, receipt.claim.leaf_count))
        root = self.root_of(leaf, receipt.proof_blob)
        if root != receipt.claim.root:
            return Failure.of(PROOF.check(False, receipt.claim.root, root))
        return None


__all__ = [
    "LOCAL_STEPS",
    "Failure",
    "LocalVerifier",
    "ParsedReceipt",
    "ReceiptClaim",
    "leaf_of",
    "parse_receipt",
]
