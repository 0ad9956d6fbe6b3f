"""Merkle trees in exactly OpenZeppelin's ``StandardMerkleTree`` format, and proof verification.

Pure functions and an immutable tree, no I/O. The format is that of the npm package
``@openzeppelin/merkle-tree`` (1.0.x), so roots, proofs and dumps interchange with it and proofs
verify on chain with ``MerkleProof.verify``:

* leaves (32-byte hashes; for records, :func:`ledger.records.hashing.leaf_hash`) are sorted ascending;
* the tree is a complete binary tree stored as an array of ``2n - 1`` nodes, children of node ``i``
  at ``2i + 1`` and ``2i + 2``, the sorted leaves at the end in *reverse* order (the smallest leaf
  is the last node);
* an internal node is ``keccak256(min(a, b) || max(a, b))`` of its children (commutative, so
  proofs carry no left/right flags), the root is node ``0``;
* a proof is the list of siblings from the leaf up to (not including) the root.

A tree of one leaf has that leaf as root and an empty proof. Duplicate leaves are allowed, as in
OpenZeppelin's library: each occupies its own node, and :meth:`MerkleTree.proof` for a duplicated
hash returns the proof for the copy OpenZeppelin picks (the last one given). Either proof verifies.

Building is the hot path (whole batches of records, up to millions): it runs in C
(:mod:`ledger.records._merkle_native`, ``native/merkle_native.c``) with the GIL released, over the
Keccak team's XKCP permutation. ``bench/merkle_rate.py`` justifies the native code: the best CPython
build over safe-pysha3 reached 73% of its own three-keccak limit at 100k records, the native one
about 90% of its (and about twice the rate). The node array is kept as one ``bytes`` object
(``32 * (2n - 1)`` bytes), not a list of ``2n - 1`` objects.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from operator import itemgetter
from typing import Any, Final

import sha3

from ledger.exceptions import InputError, InvalidProofError, NotFoundError
from ledger.records import _merkle_native

NODE_SIZE: Final = 32
"""Bytes in every leaf, internal node, root and proof element."""

DUMP_FORMAT: Final = "standard-v1"
"""The ``format`` of OpenZeppelin ``StandardMerkleTree.dump()`` that :meth:`MerkleTree.render_dump`
writes and :meth:`MerkleTree.from_dump` reads."""

LEAF_ENCODING: Final = ("bytes32", "bytes32")
"""The ``leafEncoding`` of a record tree: the value of each leaf is ``[salt, digest]``."""

_keccak = sha3.keccak_256
_digest = sha3.keccak_256.digest
_HEX32 = re.compile(r"0x[0-9a-fA-F]{64}")


class MerkleTree:
    """An immutable OpenZeppelin ``StandardMerkleTree`` over 32-byte leaf hashes.

    Build one with :meth:`from_records` (``(salt, digest)`` pairs, the normal case),
    :meth:`from_leaves` (leaf hashes already computed) or :meth:`from_dump`. Positions are tree
    indices, as in OpenZeppelin: leaf ``k`` of ``n`` in sorted order sits at ``2n - 2 - k``.
    """

    __slots__ = ("_leaves", "_lookup", "_nodes", "_positions", "_values")

    def __init__(
        self,
        nodes: bytes,
        positions: bytes,
        leaves: tuple[bytes, ...],
        values: tuple[tuple[bytes, ...], tuple[bytes, ...]] | None,
    ) -> None:
        """Wrap a node array built by :mod:`ledger.records._merkle_native`; use the ``from_*`` constructors instead."""
        self._nodes = nodes
        self._positions = positions
        self._leaves = leaves
        self._values = values
        self._lookup: dict[bytes, int] | None = None

    # --- construction ------------------------------------------------------------------------

    @classmethod
    def from_leaves(cls, leaves: Iterable[bytes]) -> MerkleTree:
        """Build the tree over leaf hashes, as OpenZeppelin ``SimpleMerkleTree.of(leaves)`` does.

        Args:
            leaves: 32-byte leaf hashes in any order (they are sorted here). Never pass raw
                64-byte data or an unhashed digest: leaves must be hashes of a different shape from
                internal nodes, see :func:`ledger.records.hashing.leaf_hash`.

        Raises:
            InputError: No leaves, a leaf that is not bytes-like, or not 32 bytes long.
        """
        hashes = leaves if type(leaves) is tuple else tuple(leaves)
        built = _merkle_native.leaves_tree(hashes)
        if built is None:  # not exact 32-byte bytes: refused, or normalised and built
            hashes = _as_nodes("leaf", hashes)
            built = _merkle_native.leaves_tree(hashes)
            assert built is not None
        nodes, positions = built
        return cls(nodes, positions, hashes, None)

    @classmethod
    def from_records(cls, records: Iterable[tuple[bytes, bytes]]) -> MerkleTree:
        """Build the tree of ``(salt, digest)`` records; each leaf is ``keccak256(commitment)``.

        The leaf is ``keccak256(keccak256(salt || digest))``, as :func:`ledger.records.hashing.leaf_hash`.
        Gives the same tree as OpenZeppelin
        ``StandardMerkleTree.of(records, ["bytes32", "bytes32"])``.

        Args:
            records: ``(salt, digest)`` pairs of 32-byte values; order does not matter for the
                root, but :attr:`leaves` and :meth:`render_dump` keep it.

        Raises:
            InputError: No records, a record that is not a pair, or a salt or digest that is not
                32 bytes.
        """
        pairs = records if isinstance(records, (list, tuple)) else list(records)
        built = _merkle_native.records_tree(pairs)
        if built is None:  # not pairs of exact 32-byte bytes: refused, or normalised and built
            built = _merkle_native.records_tree(_normalised_records(pairs))
            assert built is not None
        nodes, positions, hashes, salts, digests = built
        return cls(nodes, positions, hashes, (salts, digests))

    @classmethod
    def from_dump(cls, data: Mapping[str, Any]) -> MerkleTree:
        """Load a record tree from OpenZeppelin's ``StandardMerkleTree.dump()`` JSON (parsed).

        The tree is rebuilt from the values and must equal the dumped one node for node, value
        for value (OpenZeppelin's ``load`` likewise validates), so a loaded tree is never trusted
        blindly.

        Args:
            data: ``{"format": "standard-v1", "leafEncoding": ["bytes32", "bytes32"],
                "tree": [...], "values": [{"value": [salt, digest], "treeIndex": i}, ...]}`` with
                every hash as ``0x`` and 64 hex digits.

        Raises:
            InputError: Another format or leaf encoding, malformed fields, or a tree that does not
                match its values (tampered, or built unsorted).
        """
        if not isinstance(data, Mapping):
            raise InputError("a Merkle tree dump must be a JSON object")
        if data.get("format") != DUMP_FORMAT:
            raise InputError(f"unknown Merkle tree dump format {data.get('format')!r}")
        if data.get("leafEncoding") != list(LEAF_ENCODING):
            raise InputError(f"leaf encoding must be {list(LEAF_ENCODING)}")
        values = data.get("values")
        dumped_tree = data.get("tree")
        if not isinstance(values, list) or not isinstance(dumped_tree, list):
            raise InputError("a Merkle tree dump needs the lists 'tree' and 'values'")
        try:
            records = [(_parse_node(v["value"][0]), _parse_node(v["value"][1])) for v in values]
            indices = [v["treeIndex"] for v in values]
        except (KeyError, IndexError, TypeError) as err:
            raise InputError("every dumped value needs 'value': [salt, digest] and 'treeIndex'") from err
        tree = cls.from_records(records)
        if b"".join(map(_parse_node, dumped_tree)) != tree._nodes:
            raise InputError("dumped tree does not match its values")
        if indices != tree._value_tree_indices():
            raise InputError("dumped tree indices do not match the values")
        return tree

    # --- reading -----------------------------------------------------------------------------

    @property
    def root(self) -> bytes:
        """The 32-byte root, ``bytes32`` on chain."""
        return self._nodes[:NODE_SIZE]

    @property
    def leaf_count(self) -> int:
        """Number of leaves, duplicates included."""
        return len(self._leaves)

    @property
    def leaves(self) -> tuple[bytes, ...]:
        """Leaf hashes in the order given to the constructor (not tree order)."""
        return self._leaves

    @property
    def nodes(self) -> tuple[bytes, ...]:
        """The whole node array (``2n - 1`` hashes, root first), as OpenZeppelin's ``tree``."""
        nodes = self._nodes
        return tuple(nodes[start : start + NODE_SIZE] for start in range(0, len(nodes), NODE_SIZE))

    def tree_index(self, leaf: bytes) -> int:
        """Return the tree index of a leaf hash (for a duplicate, the one OpenZeppelin picks).

        The first call builds a hash-to-index map of all leaves (O(n)); later calls are O(1).

        Raises:
            InputError: ``leaf`` is not bytes-like.
            NotFoundError: ``leaf`` is not a leaf of this tree.
        """
        lookup = self._lookup
        if lookup is None:
            # In the order given, so the copy given last wins for duplicates: the one
            # OpenZeppelin's hashLookup keeps (the sort is stable, so it has the smallest index).
            lookup = self._lookup = dict(zip(self._leaves, self._value_tree_indices(), strict=True))
        if type(leaf) is not bytes:
            if not isinstance(leaf, (bytes, bytearray, memoryview)):
                raise InputError(f"leaf must be bytes, not {type(leaf).__name__}")
            leaf = bytes(leaf)
        try:
            return lookup[leaf]
        except KeyError as err:
            raise NotFoundError("leaf is not in the tree", leaf=_hex(leaf)) from err

    def proof(self, leaf: bytes) -> list[bytes]:
        """Return the inclusion proof of a leaf hash, as OpenZeppelin ``getProof(leaf)``.

        Raises:
            InputError: ``leaf`` is not bytes-like.
            NotFoundError: ``leaf`` is not a leaf of this tree.
        """
        return self.proof_at(self.tree_index(leaf))

    def proof_at(self, tree_index: int) -> list[bytes]:
        """Return the inclusion proof of the leaf at ``tree_index``: siblings from leaf to root.

        Raises:
            InputError: ``tree_index`` is not the index of a leaf (``n - 1 <= i <= 2n - 2``).
        """
        count = len(self._leaves)
        if not isinstance(tree_index, int) or not count - 1 <= tree_index < 2 * count - 1:
            raise InputError(f"tree index {tree_index!r} is not a leaf", tree_index=tree_index)
        return _merkle_native.proof(self._nodes, tree_index)

    def render_dump(self) -> dict[str, Any]:
        """Return the tree as OpenZeppelin ``StandardMerkleTree.dump()`` JSON (JSON-ready dict).

        ``StandardMerkleTree.load()`` in JavaScript accepts it; :meth:`from_dump` reads it back.

        Raises:
            InputError: The tree was built from bare leaves, so it has no values to dump.
        """
        if self._values is None:
            raise InputError("only a tree built from records can be dumped; its values are needed")
        salts, digests = self._values
        return {
            "format": DUMP_FORMAT,
            "leafEncoding": list(LEAF_ENCODING),
            "tree": [_hex(node) for node in self.nodes],
            "values": [
                {"value": [_hex(salt), _hex(digest)], "treeIndex": index}
                for salt, digest, index in zip(salts, digests, self._value_tree_indices(), strict=True)
            ],
        }

    def _value_tree_indices(self) -> list[int]:
        """Tree index of each leaf in input order, duplicates apart (stable sort, as in JS)."""
        return list(memoryview(self._positions).cast("Q"))


# --- proofs ----------------------------------------------------------------------------------


def merkle_root(leaves: Iterable[bytes]) -> bytes:
    """The root of the tree over ``leaves`` (32-byte leaf hashes, in any order): what a batch is sealed with."""
    return MerkleTree.from_leaves(leaves).root


def process_proof(leaf: bytes, proof: Sequence[bytes]) -> bytes:
    """Return the root a proof leads to from ``leaf``, as OpenZeppelin ``MerkleProof.processProof``.

    Each step hashes the running node with the next proof element, smaller one first.

    Raises:
        InvalidProofError: ``leaf`` or a proof element is not 32 bytes.
    """
    node = _proof_node("leaf", leaf)
    for element in proof:
        sibling = _proof_node("proof element", element)
        node = _digest(_keccak(node + sibling if node < sibling else sibling + node))
    return node


def verify_proof(root: bytes, leaf: bytes, proof: Sequence[bytes]) -> bool:
    """Return whether ``proof`` proves ``leaf`` is in the tree with ``root``.

    Same result as OpenZeppelin ``MerkleProof.verify(proof, root, leaf)`` on chain.

    Preconditions (the verifier cannot check them; the caller must):

    * ``leaf`` is a *leaf hash* computed by the caller from the record it holds (for records,
      :func:`ledger.records.hashing.leaf_hash` of its salt and digest), never a value taken from the proof
      or from the party being checked. Leaves are double-hashed so that no 64-byte internal node
      can pass for one; a single-hashed leaf loses that defence.
    * ``root`` comes from a trusted source (the anchor on chain), not from the same message as
      the proof.
    * Hashing is commutative, so the proof binds membership, not position: it does not say at
      which index the leaf sits, nor how many leaves the tree has. A tree of one leaf verifies with
      an empty proof, where ``root == leaf``.

    Returns:
        ``True`` if the proof leads to ``root``; ``False`` for any mismatch (wrong leaf, altered,
        reordered, truncated or extended proof).

    Raises:
        InvalidProofError: ``root``, ``leaf`` or a proof element is not 32 bytes long (malformed,
            as opposed to failing to verify).
    """
    expected = _proof_node("root", root)
    return process_proof(leaf, proof) == expected


# --- internals -------------------------------------------------------------------------------


def _normalised_records(pairs: Sequence[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """``pairs`` as 32-byte ``(bytes, bytes)`` pairs (bytes-like values copied), or raise :class:`InputError`."""
    if not pairs:
        raise InputError("a Merkle tree needs at least one record")
    try:
        arities = set(map(len, pairs))
    except TypeError as err:
        raise InputError("every record must be a (salt, digest) pair") from err
    if arities != {2}:
        raise InputError("every record must be a (salt, digest) pair")
    salts = _as_nodes("salt", map(itemgetter(0), pairs))
    digests = _as_nodes("digest", map(itemgetter(1), pairs))
    return list(zip(salts, digests, strict=True))


def _as_nodes(name: str, values: Iterable[bytes]) -> tuple[bytes, ...]:
    """Return ``values`` as a non-empty tuple of 32-byte ``bytes``, or raise :class:`InputError`."""
    nodes = tuple(values)
    if not nodes:
        raise InputError(f"a Merkle tree needs at least one {name}")
    if set(map(type, nodes)) != {bytes}:
        if not all(isinstance(node, (bytes, bytearray, memoryview)) for node in nodes):
            raise InputError(f"every {name} must be bytes")
        nodes = tuple(map(bytes, nodes))  # bytes subclasses (HexBytes), bytearray, memoryview
    if set(map(len, nodes)) != {NODE_SIZE}:
        bad = next(len(node) for node in nodes if len(node) != NODE_SIZE)
        raise InputError(f"every {name} must be {NODE_SIZE} bytes, found one of {bad}")
    return nodes


def _proof_node(name: str, value: object) -> bytes:
    """Return ``value`` as 32 ``bytes`` for the verifier, or raise :class:`InvalidProofError`."""
    if type(value) is not bytes:
        if not isinstance(value, (bytes, bytearray, memoryview)):
            raise InvalidProofError(f"{name} must be bytes, not {type(value).__name__}")
        value = bytes(value)
    if len(value) != NODE_SIZE:
        raise InvalidProofError(f"{name} must be {NODE_SIZE} bytes, got {len(value)}")
    return value


def _parse_node(text: object) -> bytes:
    """Parse ``0x`` followed by exactly 64 hex digits, as OpenZeppelin's dumps write hashes."""
    if not isinstance(text, str) or not _HEX32.fullmatch(text):
        raise InputError(f"expected 0x and 64 hex digits, got {text!r}")
    return bytes.fromhex(text[2:])


def _hex(value: object) -> str:
    """Format a hash as OpenZeppelin does: ``0x`` and lowercase hex."""
    return "0x" + bytes(value).hex() if isinstance(value, (bytes, bytearray)) else repr(value)
