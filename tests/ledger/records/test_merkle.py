"""Tests for ledger.records.merkle: OpenZeppelin StandardMerkleTree format, proofs and tampering."""

from __future__ import annotations

import json
import os
import random
import subprocess
from typing import Any

import pytest
from eth_hash.auto import keccak as reference_keccak
from hypothesis import assume, example, given
from hypothesis import strategies as st

from ledger.exceptions import InputError, InvalidProofError, NotFoundError
from ledger.records.hashing import leaf_hash
from ledger.records.merkle import MerkleTree, process_proof, verify_proof
from tests.support import paths
from tests.support.merkle_model import reference_tree

REPO = paths.REPO
ORACLE = paths.TESTS / "js" / "oz_merkle_tree.mjs"
CROSS_CHECK_SIZES = (1, 2, 3, 5, 8, 100, 1000)


def _h(byte: str) -> bytes:
    return bytes.fromhex(byte * 32)


# Pinned from @openzeppelin/merkle-tree 1.0.8: StandardMerkleTree.of(
#     [[0x11.., 0x22..], [0x33.., 0x44..], [0x55.., 0x66..]], ["bytes32", "bytes32"])
PINNED_RECORDS = [(_h("11"), _h("22")), (_h("33"), _h("44")), (_h("55"), _h("66"))]
PINNED_TREE = [
    bytes.fromhex(node)
    for node in (
        "f541aeab56d5b93ff9d617a434df336887abb10637b9efe4f35b462c7dfbc303",
        "27ae11ea95edc1267a721ecb1dc0475aa729900bdba5a2b434d7cc1852566b03",
        "6b465f642be48c4229751db4382f05a581aa8df17bd8c661b5ffd9afb1d8e5da",
        "629f9b8c2dd2f62d8d8c515a207f9cf6d3317a5daeabe34cfa78b1022260a3f2",
        "430512f17360cbcc5c79d8c40984b7ce0ce7161c0b2d25997f5a3bf05c2a24b0",
    )
]
# ...and its getProof(0), the proof of the first record.
PINNED_PROOF_0 = [PINNED_TREE[3], PINNED_TREE[2]]

bytes32 = st.binary(min_size=32, max_size=32)
distinct_leaves = st.lists(bytes32, min_size=1, max_size=40, unique=True)
# Pinned examples: the one-leaf tree, the smallest pair, a three-leaf (uneven) tree.
ONE = [_h("aa")]
TWO = [_h("00"), _h("ff")]
THREE = [_h("01"), _h("02"), _h("03")]


def _flip(value: bytes, position: int, mask: int) -> bytes:
    changed = bytearray(value)
    changed[position % len(changed)] ^= mask
    return bytes(changed)


def _random_records(count: int, rng: random.Random) -> list[tuple[bytes, bytes]]:
    return [(rng.randbytes(32), rng.randbytes(32)) for _ in range(count)]


def _hex(value: bytes) -> str:
    return "0x" + value.hex()


# --- the OpenZeppelin format -------------------------------------------------------------------


def test_pinned_tree_matches_openzeppelin() -> None:
    tree = MerkleTree.from_records(PINNED_RECORDS)
    assert list(tree.nodes) == PINNED_TREE
    assert tree.root == PINNED_TREE[0]
    assert tree.proof(leaf_hash(*PINNED_RECORDS[0])) == PINNED_PROOF_0
    assert tree.leaf_count == 3


def test_one_leaf_tree_is_its_leaf() -> None:
    tree = MerkleTree.from_leaves(ONE)
    assert tree.root == ONE[0]
    assert tree.nodes == (ONE[0],)
    assert tree.proof(ONE[0]) == []
    assert tree.proof_at(0) == []
    assert verify_proof(ONE[0], ONE[0], [])


@given(st.lists(bytes32, min_size=1, max_size=70))
@example(ONE)
@example(TWO)
@example(THREE)
@example([_h("07")] * 4)
def test_tree_matches_plain_reference(leaves: list[bytes]) -> None:
    tree = MerkleTree.from_leaves(leaves)
    assert list(tree.nodes) == reference_tree(leaves)
    assert tree.leaves == tuple(leaves)
    for index in range(len(leaves) - 1, 2 * len(leaves) - 1):
        assert verify_proof(tree.root, tree.nodes[index], tree.proof_at(index))


@given(st.lists(st.tuples(bytes32, bytes32), min_size=1, max_size=40))
def test_from_records_equals_from_leaves_of_leaf_hashes(records: list[tuple[bytes, bytes]]) -> None:
    tree = MerkleTree.from_records(records)
    assert tree.leaves == tuple(leaf_hash(salt, digest) for salt, digest in records)
    assert tree.nodes == MerkleTree.from_leaves(tree.leaves).nodes
    assert MerkleTree.from_records(iter(records)).root == tree.root


def test_input_order_does_not_change_the_tree() -> None:
    records = _random_records(50, random.Random(7))
    shuffled = records[:]
    random.Random(8).shuffle(shuffled)
    assert MerkleTree.from_records(records).nodes == MerkleTree.from_records(shuffled).nodes


def test_duplicate_leaves_are_kept_and_proved_like_openzeppelin() -> None:
    leaves = [_h("05"), _h("01"), _h("05"), _h("03")]
    tree = MerkleTree.from_leaves(leaves)
    assert tree.leaf_count == 4
    assert sorted(tree.nodes[3:]) == sorted(leaves)
    # Both copies sit in the tree; the lookup picks the copy given last, at the lower index.
    copies = [i for i in range(3, 7) if tree.nodes[i] == _h("05")]
    assert copies == [3, 4]
    assert tree.tree_index(_h("05")) == 3
    assert all(verify_proof(tree.root, _h("05"), tree.proof_at(i)) for i in copies)


# --- cross-check against @openzeppelin/merkle-tree in node -------------------------------------


@pytest.fixture(scope="module")
def oracle_cases() -> list[tuple[list[tuple[bytes, bytes]], dict[str, Any]]]:
    """Random record sets of the sizes under test, plus duplicates, built by OpenZeppelin's JS."""
    rng = random.Random(20261125)
    record_sets = [_random_records(size, rng) for size in CROSS_CHECK_SIZES]
    twice = _random_records(6, rng)
    record_sets.append(twice + twice[:3] + [twice[0]])  # duplicated records
    request = {"trees": [[[_hex(s), _hex(d)] for s, d in records] for records in record_sets]}
    completed = subprocess.run(
        ["node", str(ORACLE)],
        input=json.dumps(request),
        capture_output=True,
        text=True,
        cwd=REPO,
        check=True,
        timeout=120,
    )
    answers = json.loads(completed.stdout)["trees"]
    return list(zip(record_sets, answers, strict=True))


@pytest.mark.slow
def test_roots_proofs_and_dumps_match_openzeppelin(
    oracle_cases: list[tuple[list[tuple[bytes, bytes]], dict[str, Any]]],
) -> None:
    assert [len(records) for records, _ in oracle_cases][: len(CROSS_CHECK_SIZES)] == list(CROSS_CHECK_SIZES)
    for records, answer in oracle_cases:
        tree = MerkleTree.from_records(records)
        assert _hex(tree.root) == answer["root"], len(records)
        dump = tree.render_dump()
        assert dump == answer["dump"], len(records)
        for index, entry in enumerate(dump["values"]):
            # OpenZeppelin getProof(i): the proof of the i-th value, at its own tree index.
            assert [_hex(node) for node in tree.proof_at(entry["treeIndex"])] == (answer["proofs"][index])
            # OpenZeppelin getProof(value): looked up by leaf hash.
            leaf = leaf_hash(*records[index])
            assert [_hex(node) for node in tree.proof(leaf)] == answer["proofsByValue"][index]
            assert verify_proof(tree.root, leaf, tree.proof(leaf))


@pytest.mark.slow
def test_openzeppelin_dumps_load_and_round_trip(
    oracle_cases: list[tuple[list[tuple[bytes, bytes]], dict[str, Any]]],
) -> None:
    for records, answer in oracle_cases:
        loaded = MerkleTree.from_dump(answer["dump"])
        assert loaded.nodes == MerkleTree.from_records(records).nodes
        assert loaded.render_dump() == answer["dump"]


# --- tampering: every change must fail verification --------------------------------------------


@given(distinct_leaves, st.data())
@example(ONE, None)
@example(TWO, None)
@example(THREE, None)
def test_untampered_proofs_verify(leaves: list[bytes], data: st.DataObject | None) -> None:
    tree = MerkleTree.from_leaves(leaves)
    for leaf in leaves:
        assert verify_proof(tree.root, leaf, tree.proof(leaf))
        assert process_proof(leaf, tree.proof(leaf)) == tree.root


@given(distinct_leaves, st.integers(min_value=0), st.integers(0, 31), st.integers(1, 255))
@example(ONE, 0, 0, 1)
@example(TWO, 1, 31, 0x80)
@example(THREE, 2, 15, 0xFF)
def test_changed_leaf_byte_fails(leaves: list[bytes], pick: int, position: int, mask: int) -> None:
    tree = MerkleTree.from_leaves(leaves)
    leaf = leaves[pick % len(leaves)]
    assert not verify_proof(tree.root, _flip(leaf, position, mask), tree.proof(leaf))


@given(
    st.tuples(bytes32, bytes32),
    st.lists(st.tuples(bytes32, bytes32), max_size=20),
    st.integers(0, 63),
    st.integers(1, 255),
)
@example((_h("11"), _h("22")), [], 0, 1)
@example((_h("11"), _h("22")), PINNED_RECORDS[1:], 63, 0x40)
def test_changed_salt_or_digest_byte_fails(
    record: tuple[bytes, bytes], others: list[tuple[bytes, bytes]], position: int, mask: int
) -> None:
    tree = MerkleTree.from_records([record, *others])
    proof = tree.proof(leaf_hash(*record))
    tampered = _flip(record[0] + record[1], position, mask)
    assert not verify_proof(tree.root, leaf_hash(tampered[:32], tampered[32:]), proof)


@given(
    st.lists(bytes32, min_size=2, max_size=40, unique=True),
    st.integers(min_value=0),
    st.integers(min_value=0),
    st.integers(0, 31),
    st.integers(1, 255),
)
@example(TWO, 0, 0, 0, 1)
@example(THREE, 2, 1, 31, 0x01)
def test_changed_proof_byte_fails(leaves: list[bytes], pick: int, element: int, position: int, mask: int) -> None:
    tree = MerkleTree.from_leaves(leaves)
    leaf = leaves[pick % len(leaves)]
    proof = tree.proof(leaf)
    index = element % len(proof)
    proof[index] = _flip(proof[index], position, mask)
    assert not verify_proof(tree.root, leaf, proof)


@given(distinct_leaves, st.integers(min_value=0), st.integers(0, 31), st.integers(1, 255))
@example(ONE, 0, 0, 1)
@example(THREE, 1, 31, 0x10)
def test_changed_root_byte_fails(leaves: list[bytes], pick: int, position: int, mask: int) -> None:
    tree = MerkleTree.from_leaves(leaves)
    leaf = leaves[pick % len(leaves)]
    assert not verify_proof(_flip(tree.root, position, mask), leaf, tree.proof(leaf))


@given(st.integers(3, 70), st.integers(0, 2**32), st.integers(min_value=0), st.data())
@example(3, 0, 0, None)
def test_reordered_proof_fails(count: int, seed: int, pick: int, data: st.DataObject | None) -> None:
    # Leaves derived from (seed, i): distinct, and small for hypothesis to generate and shrink.
    leaves = [reference_keccak(seed.to_bytes(8, "big") + i.to_bytes(4, "big")) for i in range(count)]
    tree = MerkleTree.from_leaves(leaves)
    leaf = leaves[pick % count]
    proof = tree.proof(leaf)
    assume(len(proof) >= 2)
    reordered = data.draw(st.permutations(proof)) if data is not None else proof[::-1]
    assume(reordered != proof)
    assert not verify_proof(tree.root, leaf, reordered)


@given(
    st.lists(bytes32, min_size=2, max_size=40, unique=True), st.integers(min_value=0), st.integers(min_value=1), bytes32
)
@example(TWO, 0, 1, _h("00"))
@example(THREE, 2, 2, _h("ff"))
def test_truncated_or_extended_proof_fails(leaves: list[bytes], pick: int, cut: int, extra: bytes) -> None:
    tree = MerkleTree.from_leaves(leaves)
    leaf = leaves[pick % len(leaves)]
    proof = tree.proof(leaf)
    truncated = proof[: len(proof) - 1 - (cut - 1) % len(proof)]
    assert not verify_proof(tree.root, leaf, truncated)
    assert not verify_proof(tree.root, leaf, [*proof, extra])  # trailing garbage
    assert not verify_proof(tree.root, leaf, [*proof, tree.root])


def test_internal_node_is_not_a_leaf_of_a_record_tree() -> None:
    # The second-preimage case: an internal node with the rest of the proof leads to the root,
    # which is why leaves are double-hashed and the verifier must compute the leaf itself.
    tree = MerkleTree.from_records(PINNED_RECORDS)
    assert verify_proof(tree.root, tree.nodes[1], [tree.nodes[2]])
    assert all(tree.nodes[1] != leaf_hash(*record) for record in PINNED_RECORDS)


# --- malformed input ---------------------------------------------------------------------------


@pytest.mark.parametrize("empty", [[], (), iter([])])
def test_empty_input_is_rejected(empty: Any) -> None:
    with pytest.raises(InputError):
        MerkleTree.from_leaves(empty)
    with pytest.raises(InputError):
        MerkleTree.from_records(empty)


@pytest.mark.parametrize("leaves", [[b"\x00" * 31], [_h("01"), b"\x00" * 33], [_h("01"), "aa" * 32], [None]])
def test_malformed_leaves_are_rejected(leaves: Any) -> None:
    with pytest.raises(InputError):
        MerkleTree.from_leaves(leaves)


@pytest.mark.parametrize(
    "records",
    [
        [(_h("01"),)],
        [(_h("01"), _h("02"), _h("03"))],
        [(_h("01"), _h("02")), (_h("01"), b"\x00" * 31)],
        [(b"\x00" * 31, b"\x00" * 33)],
        [("aa" * 32, _h("02"))],
        [7],
        ["ab"],
    ],
)
def test_malformed_records_are_rejected(records: Any) -> None:
    with pytest.raises(InputError):
        MerkleTree.from_records(records)


def test_bytes_like_and_bytes_subclasses_are_normalised() -> None:
    class HexBytesLike(bytes):
        pass

    plain = MerkleTree.from_records(PINNED_RECORDS)
    mixed = MerkleTree.from_records([(bytearray(s), HexBytesLike(d)) for s, d in PINNED_RECORDS])
    assert mixed.nodes == plain.nodes
    assert {type(node) for node in mixed.nodes} == {bytes}
    assert plain.proof(bytearray(plain.leaves[0])) == plain.proof(plain.leaves[0])


def test_unknown_leaf_and_non_leaf_index() -> None:
    tree = MerkleTree.from_records(PINNED_RECORDS)
    with pytest.raises(NotFoundError):
        tree.proof(_h("99"))
    with pytest.raises(InputError):
        tree.proof("not bytes")  # type: ignore[arg-type]
    for index in (-1, 0, 1, 5, 2**40):
        with pytest.raises(InputError):
            tree.proof_at(index)


@pytest.mark.parametrize(
    ("root", "leaf", "proof"),
    [
        (_h("01")[:31], _h("02"), []),
        (_h("01"), _h("02") + b"\x00", []),
        (_h("01"), _h("02"), [_h("03")[:16]]),
        (_h("01"), _h("02"), ["0x" + "03" * 32]),
        ("0x" + "01" * 32, _h("02"), []),
    ],
)
def test_malformed_proof_input_raises(root: Any, leaf: Any, proof: Any) -> None:
    with pytest.raises(InvalidProofError):
        verify_proof(root, leaf, proof)


# --- dumps -------------------------------------------------------------------------------------


def test_dump_round_trip_and_json_shape() -> None:
    tree = MerkleTree.from_records(_random_records(9, random.Random(3)))
    dump = json.loads(json.dumps(tree.render_dump()))
    assert list(dump) == ["format", "leafEncoding", "tree", "values"]
    assert MerkleTree.from_dump(dump).nodes == tree.nodes


def test_non_mapping_dump_is_rejected() -> None:
    with pytest.raises(InputError):
        MerkleTree.from_dump([])  # type: ignore[arg-type]


def test_leaf_tree_cannot_be_dumped() -> None:
    with pytest.raises(InputError):
        MerkleTree.from_leaves(THREE).render_dump()


@pytest.mark.parametrize(
    "tamper",
    [
        lambda d: d.update(format="simple-v1"),
        lambda d: d.update(leafEncoding=["bytes32"]),
        lambda d: d.update(tree="nope"),
        lambda d: d["tree"].__setitem__(0, "0x" + "00" * 32),
        lambda d: d["tree"].__setitem__(1, d["tree"][1].upper().replace("0X", "0x")[:-1]),
        lambda d: d["values"][0]["value"].__setitem__(0, "0x" + "00" * 32),
        lambda d: d["values"][0].update(treeIndex=d["values"][1]["treeIndex"]),
        lambda d: d["values"][0].pop("treeIndex"),
        lambda d: d["values"].pop(),
        lambda d: d["tree"].reverse(),
        lambda d: d.update(leafEncoding=7),
        lambda d: d["values"].__setitem__(0, "0x" + "00" * 32),
    ],
)
def test_tampered_dump_is_rejected(tamper: Any) -> None:
    dump = MerkleTree.from_records(PINNED_RECORDS).render_dump()
    tamper(dump)
    with pytest.raises(InputError):
        MerkleTree.from_dump(dump)


def test_os_random_trees_of_many_sizes_verify() -> None:
    for size in (4, 7, 16, 17, 31, 33, 64, 255, 257):
        records = [(os.urandom(32), os.urandom(32)) for _ in range(size)]
        tree = MerkleTree.from_records(records)
        assert list(tree.nodes) == reference_tree(list(tree.leaves))
        for record in records:
            leaf = leaf_hash(*record)
            assert verify_proof(tree.root, leaf, tree.proof(leaf))
