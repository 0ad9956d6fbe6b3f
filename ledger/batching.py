"""Merkle batching: many records, one anchoring transaction, one receipt each."""

from __future__ import annotations

from collections.abc import Sequence

from eth_account.signers.local import LocalAccount

from ledger.anchoring import RecordAnchorClient
from ledger.exceptions import InputError
from ledger.merkle import MerkleTree
from ledger.receipts import Receipt, issue_receipts


def anchor_batch(
    anchors: RecordAnchorClient, records: Sequence[tuple[bytes, bytes]], sender: LocalAccount
) -> list[Receipt]:
    """Seal ``(salt, digest)`` records into one tree, anchor its root, and return their receipts.

    A single record is a batch of one: its root is its leaf and its proof is empty.
    """
    if not records:
        raise InputError("a batch needs at least one record", field="records")
    tree = MerkleTree.from_records(records)
    batch = anchors.anchor(tree.root, tree.leaf_count, sender)
    return issue_receipts(tree, records, batch, chain_id=anchors.chain.chain_id, contract=anchors.address)
