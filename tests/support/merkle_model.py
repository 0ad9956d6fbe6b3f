"""OpenZeppelin's StandardMerkleTree written the plain way over eth-hash: the model the Merkle tests
check ledger.records.merkle and its C builder against (the npm package itself is the oracle too)."""

from __future__ import annotations

from eth_hash.auto import keccak


def reference_tree_and_positions(leaves: list[bytes]) -> tuple[list[bytes], list[int]]:
    """OpenZeppelin's node array over ``leaves`` and each leaf's tree index, one node at a time.

    The leaves are sorted stably (JavaScript's sort), so a duplicate given later sits at a smaller index.
    """
    order = sorted(range(len(leaves)), key=leaves.__getitem__)
    tree: list[bytes] = [b""] * (2 * len(leaves) - 1)
    positions = [0] * len(leaves)
    for rank, index in enumerate(order):
        positions[index] = len(tree) - 1 - rank
        tree[len(tree) - 1 - rank] = leaves[index]
    for i in range(len(tree) - 1 - len(leaves), -1, -1):
        low, high = sorted((tree[2 * i + 1], tree[2 * i + 2]))
        tree[i] = keccak(low + high)
    return tree, positions


def reference_tree(leaves: list[bytes]) -> list[bytes]:
    """OpenZeppelin's node array over ``leaves``, root first."""
    return reference_tree_and_positions(leaves)[0]
