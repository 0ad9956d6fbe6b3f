"""Tests for ledger.records._merkle_native (native/merkle_native.c) against independent models.

The keccak is checked against safe-pysha3 and eth-hash, the builders against the plain
OpenZeppelin algorithm written in Python over eth-hash (the OpenZeppelin npm package itself checks
the whole MerkleTree in test_merkle.py). Paths that random keccak outputs rarely take are forced
with crafted leaves: leaves_tree takes any 32-byte values, so buckets of leaves sharing their first
16 bits (the insertion sort's limit and the qsort beyond it) and many duplicates are built here.
"""

from __future__ import annotations

import hashlib
import os
import random
import re
import sys
import threading
import time
from typing import Any

import pytest
import sha3
from eth_hash.auto import keccak as reference_keccak
from hypothesis import example, given
from hypothesis import strategies as st

from ledger.records import _merkle_native as native
from ledger.records.hashing import leaf_hash
from tests.support import paths
from tests.support.merkle_model import reference_tree_and_positions

bytes32 = st.binary(min_size=32, max_size=32)


def _nodes(blob: bytes) -> list[bytes]:
    return [blob[start : start + 32] for start in range(0, len(blob), 32)]


def _positions(blob: bytes) -> list[int]:
    return list(memoryview(blob).cast("Q"))


# --- keccak ----------------------------------------------------------------------------------


@given(st.binary(max_size=700))
@example(b"")
@example(b"\x00" * 135)  # the padding's two bytes in one
@example(b"\x00" * 136)  # a whole block, then a block of padding
@example(b"\xff" * 272)
def test_keccak256_is_safe_pysha3s_and_eth_hashs(data: bytes) -> None:
    assert native.keccak256(data) == sha3.keccak_256(data).digest() == reference_keccak(data)


def test_keccak256_takes_any_buffer() -> None:
    data = os.urandom(100)
    expected = sha3.keccak_256(data).digest()
    assert native.keccak256(bytearray(data)) == native.keccak256(memoryview(data)) == expected


@given(st.integers(1, 200), st.integers(0, 20), st.randoms(use_true_random=False))
def test_keccak_each_hashes_every_slice(width: int, count: int, rng: random.Random) -> None:
    data = rng.randbytes(width * count)
    expected = b"".join(sha3.keccak_256(data[i : i + width]).digest() for i in range(0, len(data), width))
    assert native.keccak_each(data, width) == expected


@pytest.mark.parametrize(("data", "width"), [(b"abc", 2), (b"abcd", 0), (b"abcd", -4)])
def test_keccak_each_refuses_a_ragged_or_empty_width(data: bytes, width: int) -> None:
    with pytest.raises(ValueError, match="width-byte slices"):
        native.keccak_each(data, width)


# --- the builders ----------------------------------------------------------------------------


@given(st.lists(bytes32, min_size=1, max_size=70))
@example([b"\x00" * 32])
@example([b"\x07" * 32] * 5)
def test_leaves_tree_is_thereference_tree_and_positions(leaves: list[bytes]) -> None:
    built = native.leaves_tree(tuple(leaves))
    assert built is not None
    nodes, positions = built
    assert (_nodes(nodes), _positions(positions)) == reference_tree_and_positions(leaves)


@given(st.lists(st.tuples(bytes32, bytes32), min_size=1, max_size=50), st.data())
def test_records_tree_is_the_model_over_leaf_hashes(records: list[tuple[bytes, bytes]], data: st.DataObject) -> None:
    if data.draw(st.booleans(), label="with duplicates"):
        records += data.draw(st.lists(st.sampled_from(records), max_size=10), label="duplicates")
    as_lists = data.draw(st.booleans(), label="records as lists")
    given_records: Any = [list(record) for record in records] if as_lists else records
    built = native.records_tree(tuple(given_records) if data.draw(st.booleans(), label="tuple") else given_records)
    assert built is not None
    nodes, positions, leaves, salts, digests = built
    expected_leaves = [leaf_hash(salt, digest) for salt, digest in records]
    assert list(leaves) == expected_leaves
    assert (_nodes(nodes), _positions(positions)) == reference_tree_and_positions(expected_leaves)
    assert salts == tuple(salt for salt, _ in records)
    assert digests == tuple(digest for _, digest in records)
    assert all(kept is given for kept, (given, _) in zip(salts, records, strict=True))  # kept, not copied


@pytest.mark.parametrize("bucket", [2, 32, 33, 500])
def test_leaves_sharing_their_first_bits_sort_by_the_whole_hash(bucket: int) -> None:
    # 4,000 leaves: the sort buckets on the first 12 bits; ``bucket`` of them share those bits
    # (and more: the first 4 bytes), so that bucket takes the insertion sort (up to 32) or qsort.
    rng = random.Random(bucket)
    shared = [b"\x12\x34\x56\x78" + rng.randbytes(28) for _ in range(bucket)]
    leaves = shared + [rng.randbytes(32) for _ in range(4000 - bucket)]
    rng.shuffle(leaves)
    built = native.leaves_tree(tuple(leaves))
    assert built is not None
    assert (_nodes(built[0]), _positions(built[1])) == reference_tree_and_positions(leaves)


def test_many_duplicates_keep_the_order_given() -> None:
    # 300 copies of one leaf among others: the qsort path, whose ties fall back to the position,
    # so each copy's tree index is the stable sort's (the last copy given at the smallest index).
    rng = random.Random(7)
    copy = rng.randbytes(32)
    leaves = [copy] * 300 + [rng.randbytes(32) for _ in range(700)]
    rng.shuffle(leaves)
    built = native.leaves_tree(tuple(leaves))
    assert built is not None
    nodes, positions = built
    assert (_nodes(nodes), _positions(positions)) == reference_tree_and_positions(leaves)
    copies = [position for leaf, position in zip(leaves, _positions(positions), strict=True) if leaf == copy]
    assert copies == sorted(copies, reverse=True)


@given(st.lists(bytes32, min_size=1, max_size=40))
def test_proof_is_the_siblings_up_to_the_root(leaves: list[bytes]) -> None:
    built = native.leaves_tree(tuple(leaves))
    assert built is not None
    tree, _ = reference_tree_and_positions(leaves)
    for index in range(len(tree)):
        expected = []
        i = index
        while i > 0:
            expected.append(tree[i + 1 if i & 1 else i - 1])
            i = (i - 1) >> 1
        assert native.proof(built[0], index) == expected


@pytest.mark.parametrize("index", [-1, 3, 2**62])
def test_proof_refuses_an_index_outside_the_array(index: int) -> None:
    built = native.leaves_tree((bytes(32), b"\x01" * 32))
    assert built is not None
    with pytest.raises(IndexError):
        native.proof(built[0], index)


def test_proof_needs_a_bytes_node_array() -> None:
    with pytest.raises(TypeError):
        native.proof(bytearray(96), 1)  # type: ignore[arg-type]


class Bytes(bytes):
    """A bytes subclass, as HexBytes is."""


@pytest.mark.parametrize(
    "leaves",
    [
        (),
        [b"\x01" * 32],  # a list, not a tuple
        (b"\x01" * 31,),
        (b"\x01" * 33,),
        (bytearray(32),),
        (memoryview(bytes(32)),),
        (Bytes(32),),
        (b"\x01" * 32, "0x" + "01" * 32),
        (None,),
    ],
)
def test_leaves_tree_leaves_other_shapes_to_python(leaves: Any) -> None:
    assert native.leaves_tree(leaves) is None


@pytest.mark.parametrize(
    "records",
    [
        [],
        (),
        iter([(bytes(32), bytes(32))]),
        [(bytes(32),)],
        [(bytes(32), bytes(32), bytes(32))],
        [(bytes(32), bytes(31))],
        [(bytearray(32), bytes(32))],
        [(bytes(32), Bytes(32))],
        [(bytes(32), bytes(32)), None],
        [b"\x00" * 64],
        [{"salt": bytes(32), "digest": bytes(32)}],
    ],
)
def test_records_tree_leaves_other_shapes_to_python(records: Any) -> None:
    assert native.records_tree(records) is None


def test_one_record_tree_is_its_leaf() -> None:
    salt, digest = os.urandom(32), os.urandom(32)
    built = native.records_tree([(salt, digest)])
    assert built is not None
    nodes, positions, leaves, _, _ = built
    assert nodes == leaves[0] == leaf_hash(salt, digest)
    assert _positions(positions) == [0]


def test_a_build_lets_other_threads_run() -> None:
    # The hashing and the sort run with the GIL released: a Python thread keeps counting while a
    # 300,000-leaf build is in C, near the rate it counts while the main thread sleeps (a fifth
    # of that rate is asked, for a loaded machine). Were the GIL held, it would count only in the
    # switch intervals around the call (set to 1 ms): a build of this code holding the GIL
    # measured about 1% of the rate here.
    leaves = tuple(os.urandom(32) for _ in range(300_000))
    counted = 0
    stop = threading.Event()

    def count() -> None:
        nonlocal counted
        while not stop.is_set():
            counted += 1

    interval = sys.getswitchinterval()
    sys.setswitchinterval(0.001)
    counter = threading.Thread(target=count)
    counter.start()
    try:
        time.sleep(0.02)
        before, start = counted, time.perf_counter()
        time.sleep(0.1)
        alone = (counted - before) / (time.perf_counter() - start)
        before, start = counted, time.perf_counter()
        native.leaves_tree(leaves)
        seconds = time.perf_counter() - start
        during = counted - before
    finally:
        stop.set()
        counter.join()
        sys.setswitchinterval(interval)
    assert seconds > 0.02
    assert during > 0.2 * alone * seconds, f"{during} increments in {seconds:.3f} s of build, {alone:,.0f}/s alone"


def test_the_vendored_xkcp_files_are_the_ones_taken() -> None:
    # native/xkcp/README.md lists the SHA-256 of each file as taken from safe-pysha3 1.0.7's
    # sdist; an edit to a vendored file must show up here, not slip in.
    folder = paths.REPO / "native" / "xkcp"
    listed = dict(
        reversed(line.split())
        for line in (folder / "README.md").read_text().splitlines()
        if re.fullmatch(r"[0-9a-f]{64}  \S+", line)
    )
    present = {path.name for path in folder.iterdir() if path.name != "README.md"}
    assert set(listed) == present
    for name, digest in listed.items():
        assert hashlib.sha256((folder / name).read_bytes()).hexdigest() == digest, name
