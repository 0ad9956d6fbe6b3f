"""How fast ledger.merkle builds OpenZeppelin-format trees, against straightforward baselines.

Prints leaves/s for building a tree from (salt, digest) records (leaf hashing, sort, internal
nodes) at 10k, 100k and 1M records, beside:

* the same OpenZeppelin algorithm written the plain way (one function call per leaf and per node)
  with ``eth_hash.auto.keccak`` (its pycryptodome backend), the way one would write it first;
* pymerkle 7 (``InmemoryTree``, keccak_256, RFC 9162 layout, so a different root), for sizes it
  builds in a few seconds.

Also: proofs for every leaf (by leaf hash in input order, as receipts are made, and by tree
position; the first is slower from cache misses over the node array), peak traced memory of a build
(measured in a separate run, since tracemalloc slows allocation), and the hard target of
300k leaves/s at 100k records with PASS/FAIL. The machine has 2 noisy cores: sizes up to 100k
take the best of 3 runs, 1M a single run.

Run: ``.venv/bin/python bench/merkle_rate.py [--sizes 10000,100000,1000000] [--check]``.
"""

from __future__ import annotations

import argparse
import gc
import os
import resource
import sys
import time
import tracemalloc
from collections.abc import Callable, Sequence
from functools import partial
from typing import TypeVar

from eth_hash.auto import keccak as eth_keccak
from pymerkle import InmemoryTree
from rich.console import Console
from rich.table import Table

from ledger.records.hashing import leaf_hash
from ledger.records.merkle import MerkleTree, verify_proof

TARGET_LEAVES_PER_S = 300_000
TARGET_SIZE = 100_000
PYMERKLE_MAX_SIZE = 100_000  # ~1 s at 100k; 1M would take over 10 s
BEST_OF_MAX_SIZE = 100_000

Record = tuple[bytes, bytes]
T = TypeVar("T")


def plain_oz_tree(records: Sequence[Record]) -> list[bytes]:
    """OpenZeppelin StandardMerkleTree the straightforward way, with eth-hash's keccak."""

    def leaf(salt: bytes, digest: bytes) -> bytes:
        return eth_keccak(eth_keccak(salt + digest))

    def node(a: bytes, b: bytes) -> bytes:
        return eth_keccak(a + b) if a < b else eth_keccak(b + a)

    leaves = sorted(leaf(salt, digest) for salt, digest in records)
    tree: list[bytes] = [b""] * (2 * len(leaves) - 1)
    for i, value in enumerate(leaves):
        tree[len(tree) - 1 - i] = value
    for i in range(len(tree) - 1 - len(leaves), -1, -1):
        tree[i] = node(tree[2 * i + 1], tree[2 * i + 2])
    return tree


def pymerkle_root(records: Sequence[Record]) -> bytes:
    """pymerkle 7's in-memory tree over the 64-byte records (a different layout: speed only)."""
    tree = InmemoryTree(algorithm="keccak_256")
    for salt, digest in records:
        tree.append_entry(salt + digest)
    root: bytes = tree.get_root()
    return root


def timed(function: Callable[[], T], repeats: int) -> tuple[float, T]:
    """Best wall time of ``repeats`` runs (GC collected before each) and the last result."""
    best = float("inf")
    result: T | None = None
    for _ in range(repeats):
        gc.collect()
        start = time.perf_counter()
        result = function()
        best = min(best, time.perf_counter() - start)
    assert result is not None
    return best, result


def traced_peak(function: Callable[[], object]) -> int:
    """Peak bytes allocated while ``function`` runs, inputs excluded (tracemalloc)."""
    gc.collect()
    tracemalloc.start()
    try:
        kept = function()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    del kept
    return peak


def rate(count: int, seconds: float) -> str:
    return f"{count / seconds / 1000:,.0f}k/s"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000,1000000", help="comma-separated record counts")
    parser.add_argument("--check", action="store_true", help="exit 1 if the 100k target fails")
    args = parser.parse_args(argv)
    sizes = [int(size) for size in args.sizes.split(",")]

    console = Console(width=max(Console().width, 150))  # the tables are wide; do not wrap cells when piped
    build = Table(title="Building an OpenZeppelin StandardMerkleTree from (salt, digest) records")
    for column in ("records", "runs", "ledger.records.merkle", "plain OZ + eth-hash", "ratio", "pymerkle 7", "ratio"):
        build.add_column(column, justify="right")
    build.add_column(f"target {TARGET_LEAVES_PER_S // 1000}k/s", justify="center")
    extra = Table(title="Proofs for every leaf, and memory of one build")
    for column in (
        "records",
        "all proofs by leaf hash",
        "proofs/s",
        "by position",
        "proofs/s",
        "peak traced (build)",
        "per record",
    ):
        extra.add_column(column, justify="right")

    verdict: bool | None = None
    for size in sizes:
        records = [(os.urandom(32), os.urandom(32)) for _ in range(size)]
        repeats = 3 if size <= BEST_OF_MAX_SIZE else 1
        console.print(f"[dim]{size:,} records: building ({repeats} run(s) each)...[/dim]")

        ours_s, tree = timed(partial(MerkleTree.from_records, records), repeats)
        plain_s, plain = timed(partial(plain_oz_tree, records), repeats)
        if plain != list(tree.nodes):
            raise SystemExit(f"ledger.records.merkle and the plain build disagree at {size} records")
        if size <= PYMERKLE_MAX_SIZE:
            pym_s, _ = timed(partial(pymerkle_root, records), repeats)
            pym_cells = (rate(size, pym_s), f"{pym_s / ours_s:.1f}x")
        else:
            pym_cells = ("skipped", "-")

        ours_rate = size / ours_s
        passed = ours_rate >= TARGET_LEAVES_PER_S
        if size == TARGET_SIZE:
            verdict = passed
        status = ("[green]PASS[/green]" if passed else "[red]FAIL[/red]") + ("" if size == TARGET_SIZE else " (info)")
        build.add_row(
            f"{size:,}",
            str(repeats),
            f"{rate(size, ours_s)} ({ours_s:.3f} s)",
            f"{rate(size, plain_s)} ({plain_s:.2f} s)",
            f"{plain_s / ours_s:.1f}x",
            *pym_cells,
            status,
        )
        del plain

        start = time.perf_counter()
        proofs = [tree.proof(leaf) for leaf in tree.leaves]
        proofs_s = time.perf_counter() - start
        step = max(1, size // 1000)
        if not all(verify_proof(tree.root, leaf_hash(*records[i]), proofs[i]) for i in range(0, size, step)):
            raise SystemExit(f"a proof failed to verify at {size} records")
        del proofs
        start = time.perf_counter()
        by_position = [tree.proof_at(index) for index in range(size - 1, 2 * size - 1)]
        by_position_s = time.perf_counter() - start
        del by_position, tree

        peak = traced_peak(partial(MerkleTree.from_records, records))
        extra.add_row(
            f"{size:,}",
            f"{proofs_s:.2f} s",
            rate(size, proofs_s),
            f"{by_position_s:.2f} s",
            rate(size, by_position_s),
            f"{peak / 2**20:,.0f} MiB",
            f"{peak / size:,.0f} B",
        )
        del records

    console.print(build)
    console.print(extra)
    max_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    console.print(f"process max RSS: {max_rss:,.0f} MiB (inputs, trees and proofs together)")
    if verdict is not None:
        console.print(
            f"target {TARGET_LEAVES_PER_S:,} leaves/s at {TARGET_SIZE:,} records: "
            + ("[green]PASS[/green]" if verdict else "[red]FAIL[/red]")
        )
    return 1 if args.check and verdict is False else 0


if __name__ == "__main__":
    sys.exit(main())
