"""Tests for RecordAnchor (through RecordAnchorClient): anchoring, proofs, amendments, retractions.

Every revert is asserted by custom-error name and arguments, and every rejected call is checked to
have left the chain as it was: nothing mined (so no event) and the contract state unchanged.
Anchors are keyed by ``(anchorer, root)`` and changes by the record as anchored ``(anchorer, root,
leaf)``: the attacks of issue 12 (another member retracting or amending a record through a tree of
its own, or anchoring a root first) are tests here.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from eth_account.signers.local import LocalAccount
from hexbytes import HexBytes
from web3 import Web3
from web3.types import TxReceipt

from ledger.exceptions import InvalidCodeError, TransactionFailedError
from ledger.records.anchoring import ANCHORER_ROLE, UNCHANGED, AnchorInfo, RecordInBatch, RecordStatus
from ledger.records.hashing import commitment, digest_bytes, keccak256, leaf_hash
from ledger.records.merkle import MerkleTree, verify_proof
from ledger.runtime import Ledger
from ledger.values import encode_code
from tests.support.chain_events import address_topic, reverts, single_event, topics_of

Record = tuple[bytes, bytes]
NewAccount = Callable[[], LocalAccount]

ZERO32 = bytes(32)
ZERO_ADDRESS = "0x" + "00" * 20
REASON = "ENTERED_IN_ERROR"


# --- helpers ---------------------------------------------------------------------------------


def make_records(count: int, tag: str = "batch") -> list[Record]:
    """``count`` deterministic ``(salt, digest)`` records, distinct per ``tag``."""
    return [
        (
            hashlib.sha256(f"salt/{tag}/{i}".encode()).digest(),
            digest_bytes(f"record {tag} #{i}".encode()),
        )
        for i in range(count)
    ]


@dataclass(frozen=True)
class Batch:
    """A batch of records and its tree (the tree alone does not expose the records' commitments)."""

    records: list[Record]
    tree: MerkleTree

    @classmethod
    def of(cls, count: int, tag: str) -> Batch:
        """The batch of ``count`` deterministic records tagged ``tag``."""
        records = make_records(count, tag)
        return cls(records, MerkleTree.from_records(records))

    @property
    def root(self) -> bytes:
        """The batch's Merkle root."""
        return self.tree.root

    def record(self, index: int) -> RecordInBatch:
        """The record at ``index`` (constructor order), named by its commitment, with its proof."""
        salt, digest = self.records[index]
        proof = self.tree.proof(self.tree.leaves[index])
        return RecordInBatch(self.tree.root, commitment(salt, digest), tuple(proof))


def anchored_batch(ledger: Ledger, anchorer: LocalAccount, count: int, tag: str) -> Batch:
    """Build a batch of ``count`` records and anchor its root as ``anchorer``."""
    batch = Batch.of(count, tag)
    ledger.anchors.anchor(batch.root, batch.tree.leaf_count, anchorer)
    return batch


def leaf_of(record: RecordInBatch) -> bytes:
    """The leaf the contract computes from a record's commitment (what events and status use)."""
    return keccak256(record.commitment)


def receipt_of(ledger: Ledger, tx_hash: str) -> TxReceipt:
    """The receipt of a mined transaction."""
    return ledger.chain.w3.eth.get_transaction_receipt(HexBytes(tx_hash))


def tampered_proofs(proof: list[bytes]) -> dict[str, list[bytes]]:
    """Named tamperings of a valid proof; none of them may verify."""
    cases: dict[str, list[bytes]] = {"trailing garbage": [*proof, b"\x42" * 32]}
    for i, element in enumerate(proof):
        flipped = bytes([element[0] ^ 0x01]) + element[1:]
        cases[f"element {i} flipped"] = [*proof[:i], flipped, *proof[i + 1 :]]
    if proof:
        cases["truncated"] = proof[:-1]
        cases["first element dropped"] = proof[1:]
    if len(proof) > 1:
        cases["reversed"] = proof[::-1]
    return cases


def status_of(ledger: Ledger, anchorer: LocalAccount, record: RecordInBatch) -> tuple[bytes, bytes, bytes]:
    """The raw ``recordStatus`` of a record as ``anchorer`` anchored it: (amendedRoot, amendedLeaf, reason)."""
    fn = ledger.anchors.contract.functions.recordStatus(anchorer.address, record.root, leaf_of(record))
    amended_root, amended_leaf, reason = ledger.chain.call(fn)
    return bytes(amended_root), bytes(amended_leaf), bytes(reason)


UNTOUCHED = (ZERO32, ZERO32, ZERO32)


def status(ledger: Ledger, anchorer: LocalAccount, record: RecordInBatch) -> RecordStatus:
    """The client's view of a record's status as ``anchorer`` anchored it."""
    return ledger.anchors.record_status(anchorer.address, record.root, leaf_of(record))


def in_tree(record: RecordInBatch, tree: MerkleTree) -> RecordInBatch:
    """The same record (its commitment) as a leaf of another tree, with its proof there."""
    return RecordInBatch(tree.root, record.commitment, tuple(tree.proof(leaf_of(record))))


# --- anchoring -------------------------------------------------------------------------------


def test_anchor_emits_root_anchored_and_stores_the_anchor(ledger: Ledger) -> None:
    anchorer = ledger.anchorer()
    tree = MerkleTree.from_records(make_records(7))
    block_before = ledger.chain.block_number()

    batch = ledger.anchors.anchor(tree.root, tree.leaf_count, anchorer)

    receipt = receipt_of(ledger, batch.tx_hash)
    assert receipt["blockNumber"] == block_before + 1 == batch.block_number
    event = single_event(ledger.anchors.contract.events.RootAnchored(), receipt)
    assert event == {"root": tree.root, "anchorer": anchorer.address, "leafCount": 7}
    assert topics_of(receipt) == [tree.root, address_topic(anchorer.address)]

    block_time = ledger.chain.block_timestamp(receipt["blockNumber"])
    raw = ledger.chain.call(ledger.anchors.contract.functions.anchorOf(anchorer.address, tree.root))
    assert tuple(raw) == (anchorer.address, receipt["blockNumber"], block_time)
    assert ledger.anchors.anchor_of(anchorer.address, tree.root) == AnchorInfo(
        tree.root, anchorer.address, receipt["blockNumber"], block_time
    )
    assert batch.anchored_at == block_time
    assert batch.leaf_count == 7 and batch.anchorer == anchorer.address


def test_an_anchor_belongs_to_its_anchorer_only(ledger: Ledger) -> None:
    anchorer, other = ledger.anchorer(), ledger.anchorer("org-b")
    tree = MerkleTree.from_records(make_records(3))
    ledger.anchors.anchor(tree.root, 3, anchorer)
    raw = ledger.chain.call(ledger.anchors.contract.functions.anchorOf(other.address, tree.root))
    assert tuple(raw) == (ZERO_ADDRESS, 0, 0)
    assert ledger.anchors.anchor_of(other.address, tree.root) is None


def test_anchor_of_an_unknown_root_is_all_zero(ledger: Ledger) -> None:
    anchorer = ledger.anchorer()
    root = MerkleTree.from_records(make_records(3)).root
    raw = ledger.chain.call(ledger.anchors.contract.functions.anchorOf(anchorer.address, root))
    assert tuple(raw) == (ZERO_ADDRESS, 0, 0)
    assert ledger.anchors.anchor_of(anchorer.address, root) is None


def test_anchor_rejects_a_zero_root(ledger: Ledger) -> None:
    anchorer = ledger.anchorer()
    with reverts(ledger, "RecordAnchorZeroRoot"):
        ledger.anchors.anchor(ZERO32, 1, anchorer)
    assert ledger.anchors.anchor_of(anchorer.address, ZERO32) is None


def test_anchor_rejects_an_empty_batch(ledger: Ledger) -> None:
    anchorer = ledger.anchorer()
    root = MerkleTree.from_records(make_records(2)).root
    with reverts(ledger, "RecordAnchorEmptyBatch"):
        ledger.anchors.anchor(root, 0, anchorer)
    assert ledger.anchors.anchor_of(anchorer.address, root) is None


def test_anchor_rejects_a_root_the_caller_anchored_before(ledger: Ledger) -> None:
    first = ledger.anchorer()
    tree = MerkleTree.from_records(make_records(4))
    batch = ledger.anchors.anchor(tree.root, 4, first)
    before = ledger.anchors.anchor_of(first.address, tree.root)

    for count in (4, 5):
        with reverts(
            ledger,
            "RecordAnchorRootAlreadyAnchored",
            root=tree.root,
            anchorer=first.address,
            blockNumber=batch.block_number,
        ):
            ledger.anchors.anchor(tree.root, count, first)

    assert ledger.anchors.anchor_of(first.address, tree.root) == before


def test_a_member_anchoring_a_root_first_neither_blocks_nor_is_credited(ledger: Ledger) -> None:
    """Issue 12, point 2: B sees A's root in the transaction pool and anchors it first. A anchors it
    all the same, as its own; each anchor names its own account and block; A's records verify
    against A's anchor, and their changes are A's alone (B's anchoring gives B nothing over them)."""
    org_a, org_b = ledger.anchorer(), ledger.anchorer("org-b")
    batch = Batch.of(4, "a")
    hijack = ledger.anchors.anchor(batch.root, 4, org_b)

    own = ledger.anchors.anchor(batch.root, 4, org_a)

    event = single_event(ledger.anchors.contract.events.RootAnchored(), receipt_of(ledger, own.tx_hash))
    assert event == {"root": batch.root, "anchorer": org_a.address, "leafCount": 4}
    anchor_a = ledger.anchors.anchor_of(org_a.address, batch.root)
    anchor_b = ledger.anchors.anchor_of(org_b.address, batch.root)
    assert anchor_a is not None and (anchor_a.anchorer, anchor_a.block_number) == (org_a.address, own.block_number)
    assert anchor_b is not None and (anchor_b.anchorer, anchor_b.block_number) == (org_b.address, hijack.block_number)
    record = batch.record(1)
    assert ledger.anchors.verify_commitment(org_a.address, record.root, record.commitment, list(record.proof))
    # B's retraction of its own anchoring of the root is about B's anchoring, never A's record;
    # A retracts its record itself.
    ledger.anchors.retract(record, REASON, org_b)
    assert status(ledger, org_a, record) == UNCHANGED
    ledger.anchors.retract(record, "DUPLICATE", org_a)
    assert status(ledger, org_a, record) == RecordStatus(None, "DUPLICATE")
    assert status(ledger, org_b, record) == RecordStatus(None, REASON)


def test_a_duplicate_anchor_sent_anyway_fails_on_chain_without_event(ledger: Ledger) -> None:
    anchorer = ledger.anchorer()
    tree = MerkleTree.from_records(make_records(4))
    ledger.anchors.anchor(tree.root, 4, anchorer)
    before = ledger.anchors.anchor_of(anchorer.address, tree.root)

    with pytest.raises(TransactionFailedError) as caught:  # gas given: no estimate, so it is mined
        ledger.chain.transact(ledger.anchors.contract.functions.anchor(tree.root, 4), anchorer, gas=200_000)

    receipt = receipt_of(ledger, caught.value.details["tx_hash"])
    assert receipt["status"] == 0 and receipt["logs"] == []
    assert ledger.anchors.anchor_of(anchorer.address, tree.root) == before


def test_anchor_requires_the_anchorer_role(ledger: Ledger, new_account: NewAccount) -> None:
    outsider = new_account()
    root = MerkleTree.from_records(make_records(2)).root
    role = bytes(ledger.chain.call(ledger.anchors.contract.functions.ANCHORER_ROLE()))
    assert role == bytes(ANCHORER_ROLE) == Web3.keccak(text="ANCHORER_ROLE")

    with reverts(ledger, "AccessControlUnauthorizedAccount", account=outsider.address, neededRole=role):
        ledger.anchors.anchor(root, 2, outsider)
    assert ledger.anchors.anchor_of(outsider.address, root) is None


def test_anchor_fails_after_the_role_is_revoked(ledger: Ledger) -> None:
    anchorer = ledger.anchorer()
    earlier = anchored_batch(ledger, anchorer, 3, "earlier")
    earlier_anchor = ledger.anchors.anchor_of(anchorer.address, earlier.root)

    ledger.anchors.revoke_anchorer(ledger.admin, anchorer.address)
    assert not ledger.anchors.has_anchorer_role(anchorer.address)

    later = MerkleTree.from_records(make_records(3, "later"))
    with reverts(ledger, "AccessControlUnauthorizedAccount", account=anchorer.address, neededRole=bytes(ANCHORER_ROLE)):
        ledger.anchors.anchor(later.root, 3, anchorer)
    assert ledger.anchors.anchor_of(anchorer.address, later.root) is None
    # What was anchored before the revocation stays anchored and verifiable.
    assert ledger.anchors.anchor_of(anchorer.address, earlier.root) == earlier_anchor
    record = earlier.record(0)
    assert ledger.anchors.verify_commitment(anchorer.address, record.root, record.commitment, list(record.proof))


# --- proofs ----------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [1, 2, 7, 64])
def test_every_record_of_an_anchored_batch_verifies(ledger: Ledger, size: int) -> None:
    records = make_records(size)
    tree = MerkleTree.from_records(records)
    anchorer = ledger.anchorer()
    ledger.anchors.anchor(tree.root, size, anchorer)

    for salt, digest in records:
        proof = tree.proof(leaf_hash(salt, digest))
        assert ledger.anchors.verify_commitment(anchorer.address, tree.root, commitment(salt, digest), proof)
        assert ledger.anchors.verify_record(anchorer.address, tree.root, salt, digest, proof)


@pytest.mark.parametrize("size", [1, 2, 7, 64])
def test_unanchored_roots_wrong_leaves_and_tampered_proofs_fail(ledger: Ledger, size: int) -> None:
    records = make_records(size)
    tree = MerkleTree.from_records(records)
    anchorer, other = ledger.anchorer(), ledger.anchorer("org-b")
    ledger.anchors.anchor(tree.root, size, anchorer)
    salt, digest = records[-1]
    leaf, record_commitment = leaf_hash(salt, digest), commitment(salt, digest)
    proof = tree.proof(leaf)
    assert ledger.anchors.verify_commitment(anchorer.address, tree.root, record_commitment, proof)  # the control

    # The anchored root, but named as another account's, which never anchored it.
    assert not ledger.anchors.verify_commitment(other.address, tree.root, record_commitment, proof)
    assert not ledger.anchors.verify_record(other.address, tree.root, salt, digest, proof)

    # A root that was never anchored, with a proof that is valid in its own tree.
    other_records = make_records(size, "never-anchored")
    other_tree = MerkleTree.from_records(other_records)
    other_salt, other_digest = other_records[0]
    other_leaf, other_commitment = leaf_hash(other_salt, other_digest), commitment(other_salt, other_digest)
    other_proof = other_tree.proof(other_leaf)
    assert verify_proof(other_tree.root, other_leaf, other_proof)
    assert not ledger.anchors.verify_commitment(anchorer.address, other_tree.root, other_commitment, other_proof)
    assert not ledger.anchors.verify_record(anchorer.address, other_tree.root, other_salt, other_digest, other_proof)

    # Wrong commitments against the anchored root with a valid proof: another record's, and the
    # record's leaf passed where its commitment belongs (hashed once more, it is no leaf).
    assert not ledger.anchors.verify_commitment(anchorer.address, tree.root, other_commitment, proof)
    assert not ledger.anchors.verify_commitment(anchorer.address, tree.root, leaf, proof)
    assert not ledger.anchors.verify_record(anchorer.address, tree.root, other_salt, digest, proof)
    assert not ledger.anchors.verify_record(anchorer.address, tree.root, salt, digest_bytes(b"tampered"), proof)

    for name, tampered in tampered_proofs(proof).items():
        assert not ledger.anchors.verify_commitment(anchorer.address, tree.root, record_commitment, tampered), name
        assert not ledger.anchors.verify_record(anchorer.address, tree.root, salt, digest, tampered), name


def test_a_single_record_is_a_batch_of_one(ledger: Ledger) -> None:
    anchorer = ledger.anchorer()
    [(salt, digest)] = make_records(1, "single")
    leaf = leaf_hash(salt, digest)
    tree = MerkleTree.from_records([(salt, digest)])
    assert tree.root == leaf
    assert tree.proof(leaf) == []

    batch = ledger.anchors.anchor(leaf, 1, anchorer)
    event = single_event(ledger.anchors.contract.events.RootAnchored(), receipt_of(ledger, batch.tx_hash))
    assert event == {"root": leaf, "anchorer": anchorer.address, "leafCount": 1}
    assert ledger.anchors.verify_commitment(anchorer.address, leaf, commitment(salt, digest), [])
    assert ledger.anchors.verify_record(anchorer.address, leaf, salt, digest, [])
    assert not ledger.anchors.verify_commitment(anchorer.address, leaf, leaf, [])  # the root is no record of its own

    # Amend and retract work on it with the empty proof (the correction is a record of its own).
    single = RecordInBatch(leaf, commitment(salt, digest), ())
    corrected = anchored_batch(ledger, anchorer, 1, "single-corrected").record(0)
    ledger.anchors.amend(single, corrected, anchorer)
    ledger.anchors.retract(corrected, REASON, anchorer)
    assert status_of(ledger, anchorer, single) == (corrected.root, corrected.root, ZERO32)
    assert status_of(ledger, anchorer, corrected) == (ZERO32, ZERO32, encode_code(REASON))


def test_python_merkle_tree_equals_contract_for_1000_records(ledger: Ledger) -> None:
    """Every proof of a 1,000-record Python tree verifies with OpenZeppelin's MerkleProof."""
    records = make_records(1000, "large")
    tree = MerkleTree.from_records(records)
    anchorer = ledger.anchorer()
    ledger.anchors.anchor(tree.root, tree.leaf_count, anchorer)
    verify_commitment = ledger.anchors.contract.functions.verifyCommitment

    for (salt, digest), leaf in zip(records, tree.leaves, strict=True):
        assert leaf == leaf_hash(salt, digest)
        # A plain call with an explicit sender: the client's call is the same request, but web3
        # then asks the node for a default sender each time, which doubles the cost here.
        proof = tree.proof(leaf)
        call = verify_commitment(anchorer.address, tree.root, commitment(salt, digest), proof)
        assert call.call({"from": anchorer.address})


def test_a_root_or_internal_node_is_never_accepted_as_a_record(ledger: Ledger) -> None:
    """The contract hashes a commitment into the leaf itself, so no node of a tree passes as a record."""
    anchorer = ledger.anchorer()
    batch = anchored_batch(ledger, anchorer, 4, "nodes")
    root, internal, sibling = batch.tree.nodes[:3]  # a 4-record tree: root, then its two internal nodes
    record = batch.record(0)
    verify = ledger.anchors.verify_commitment
    assert verify(anchorer.address, root, record.commitment, list(record.proof))  # the control case
    # Taken as leaves, both nodes would pass a bare MerkleProof check: that is the forgery refused here.
    assert verify_proof(root, root, []) and verify_proof(root, internal, [sibling])

    assert not verify(anchorer.address, root, root, [])
    assert not verify(anchorer.address, root, internal, [sibling])
    assert not verify(anchorer.address, root, sibling, [internal])

    root_as_record = RecordInBatch(root, root, ())
    node_as_record = RecordInBatch(root, internal, (sibling,))
    with reverts(ledger, "RecordAnchorInvalidProof", root=root, leaf=keccak256(root)):
        ledger.anchors.retract(root_as_record, REASON, anchorer)
    with reverts(ledger, "RecordAnchorInvalidProof", root=root, leaf=keccak256(internal)):
        ledger.anchors.retract(node_as_record, REASON, anchorer)
    with reverts(ledger, "RecordAnchorInvalidProof", root=root, leaf=keccak256(internal)):
        ledger.anchors.amend(node_as_record, record, anchorer)
    with reverts(ledger, "RecordAnchorInvalidProof", root=root, leaf=keccak256(root)):
        ledger.anchors.amend(record, root_as_record, anchorer)

    for leaf in (root, internal, keccak256(root), keccak256(internal), leaf_of(record)):
        assert ledger.anchors.record_status(anchorer.address, root, leaf) == UNCHANGED


# --- amendments and retractions --------------------------------------------------------------


def test_amend_emits_record_amended_and_sets_status(ledger: Ledger) -> None:
    anchorer = ledger.anchorer()
    original_batch = anchored_batch(ledger, anchorer, 7, "v1")
    corrected_batch = anchored_batch(ledger, anchorer, 2, "v2")
    original, amended = original_batch.record(3), corrected_batch.record(1)

    tx_hash = ledger.anchors.amend(original, amended, anchorer)

    receipt = receipt_of(ledger, tx_hash)
    event = single_event(ledger.anchors.contract.events.RecordAmended(), receipt)
    assert event == {
        "originalLeaf": leaf_of(original),
        "amendedLeaf": leaf_of(amended),
        "anchorer": anchorer.address,
        "originalRoot": original.root,
        "amendedRoot": amended.root,
    }
    assert topics_of(receipt) == [leaf_of(original), leaf_of(amended), address_topic(anchorer.address)]
    assert status_of(ledger, anchorer, original) == (amended.root, leaf_of(amended), ZERO32)
    assert status(ledger, anchorer, original) == RecordStatus(leaf_of(amended), None, amended.root)
    # Neither the corrected record nor the original's batch neighbours changed.
    assert status(ledger, anchorer, amended) == UNCHANGED
    assert status(ledger, anchorer, original_batch.record(0)) == UNCHANGED


def test_retract_emits_record_retracted_and_sets_status(ledger: Ledger) -> None:
    anchorer = ledger.anchorer()
    batch = anchored_batch(ledger, anchorer, 7, "v1")
    record = batch.record(5)

    tx_hash = ledger.anchors.retract(record, REASON, anchorer)

    receipt = receipt_of(ledger, tx_hash)
    event = single_event(ledger.anchors.contract.events.RecordRetracted(), receipt)
    assert event == {
        "leaf": leaf_of(record),
        "reason": encode_code(REASON),
        "anchorer": anchorer.address,
        "root": record.root,
    }
    assert topics_of(receipt) == [leaf_of(record), encode_code(REASON), address_topic(anchorer.address)]
    assert status_of(ledger, anchorer, record) == (ZERO32, ZERO32, encode_code(REASON))
    assert status(ledger, anchorer, record) == RecordStatus(None, REASON)
    assert status(ledger, anchorer, batch.record(0)) == UNCHANGED


def test_a_record_is_changed_at_most_once_amended_or_retracted_not_both(ledger: Ledger) -> None:
    """The one rule: an amended record cannot be retracted, a retracted one cannot be amended
    (``RecordAnchorAlreadyChanged`` naming the record), and nothing is emitted or changed."""
    anchorer = ledger.anchorer()
    amended = anchored_batch(ledger, anchorer, 3, "amended").record(0)
    retracted = anchored_batch(ledger, anchorer, 3, "retracted").record(1)
    corrections = anchored_batch(ledger, anchorer, 3, "corrections")
    ledger.anchors.amend(amended, corrections.record(0), anchorer)
    ledger.anchors.retract(retracted, REASON, anchorer)

    with reverts(
        ledger, "RecordAnchorAlreadyChanged", anchorer=anchorer.address, root=amended.root, leaf=leaf_of(amended)
    ):
        ledger.anchors.retract(amended, REASON, anchorer)
    for reason in (REASON, "DUPLICATE"):
        with reverts(
            ledger,
            "RecordAnchorAlreadyChanged",
            anchorer=anchorer.address,
            root=retracted.root,
            leaf=leaf_of(retracted),
        ):
            ledger.anchors.retract(retracted, reason, anchorer)
    with reverts(
        ledger, "RecordAnchorAlreadyChanged", anchorer=anchorer.address, root=retracted.root, leaf=leaf_of(retracted)
    ):
        ledger.anchors.amend(retracted, corrections.record(1), anchorer)

    assert status(ledger, anchorer, amended) == RecordStatus(leaf_of(corrections.record(0)), None, corrections.root)
    assert status(ledger, anchorer, retracted) == RecordStatus(None, REASON)
    assert status(ledger, anchorer, corrections.record(1)) == UNCHANGED


def test_amend_rejects_self_amendment(ledger: Ledger) -> None:
    anchorer = ledger.anchorer()
    record = anchored_batch(ledger, anchorer, 3, "v1").record(1)
    with reverts(ledger, "RecordAnchorSelfAmendment", leaf=leaf_of(record)):
        ledger.anchors.amend(record, record, anchorer)
    assert status_of(ledger, anchorer, record) == UNTOUCHED


def test_amend_and_retract_reject_roots_the_caller_never_anchored(ledger: Ledger) -> None:
    anchorer = ledger.anchorer()
    anchored = anchored_batch(ledger, anchorer, 3, "anchored").record(0)
    unknown = Batch.of(3, "unknown").record(0)

    with reverts(ledger, "RecordAnchorUnknownRoot", anchorer=anchorer.address, root=unknown.root):
        ledger.anchors.amend(unknown, anchored, anchorer)
    with reverts(ledger, "RecordAnchorUnknownRoot", anchorer=anchorer.address, root=unknown.root):
        ledger.anchors.amend(anchored, unknown, anchorer)
    with reverts(ledger, "RecordAnchorUnknownRoot", anchorer=anchorer.address, root=unknown.root):
        ledger.anchors.retract(unknown, REASON, anchorer)

    for record in (anchored, unknown):
        assert status_of(ledger, anchorer, record) == UNTOUCHED


def test_another_member_cannot_amend_or_retract_under_a_root_it_did_not_anchor(ledger: Ledger) -> None:
    org_a, org_b = ledger.anchorer(), ledger.anchorer("org-b")
    record_a = anchored_batch(ledger, org_a, 4, "a").record(2)
    record_b = anchored_batch(ledger, org_b, 4, "b").record(2)

    with reverts(ledger, "RecordAnchorUnknownRoot", anchorer=org_b.address, root=record_a.root):
        ledger.anchors.retract(record_a, REASON, org_b)
    with reverts(ledger, "RecordAnchorUnknownRoot", anchorer=org_b.address, root=record_a.root):
        ledger.anchors.amend(record_a, record_b, org_b)
    # Nor may an organisation point its own record at another's correction.
    with reverts(ledger, "RecordAnchorUnknownRoot", anchorer=org_a.address, root=record_b.root):
        ledger.anchors.amend(record_a, record_b, org_a)

    assert status_of(ledger, org_a, record_a) == status_of(ledger, org_b, record_b) == UNTOUCHED


def test_another_member_cannot_change_a_record_through_a_tree_of_its_own(ledger: Ledger) -> None:
    """Issue 12, point 1: B takes A's receipts (salt and digest are in them), anchors its own tree
    ``[leafA1, leafA2, leafB]`` and retracts A1 and amends A2 to its own record against that root.
    The contract lets B say so about B's own anchoring (the events name B and B's root), but A's
    records stay untouched, and A can still change them itself."""
    org_a, org_b = ledger.anchorer(), ledger.anchorer("org-b")
    batch_a = anchored_batch(ledger, org_a, 4, "a")
    a1, a2 = batch_a.record(0), batch_a.record(1)
    own_b = Batch.of(1, "b").record(0)
    tree_b = MerkleTree.from_leaves([leaf_of(a1), leaf_of(a2), leaf_of(own_b)])
    ledger.anchors.anchor(tree_b.root, tree_b.leaf_count, org_b)

    retracted = receipt_of(ledger, ledger.anchors.retract(in_tree(a1, tree_b), REASON, org_b))
    amended = receipt_of(ledger, ledger.anchors.amend(in_tree(a2, tree_b), in_tree(own_b, tree_b), org_b))

    assert single_event(ledger.anchors.contract.events.RecordRetracted(), retracted) == {
        "leaf": leaf_of(a1),
        "reason": encode_code(REASON),
        "anchorer": org_b.address,
        "root": tree_b.root,
    }
    assert single_event(ledger.anchors.contract.events.RecordAmended(), amended) == {
        "originalLeaf": leaf_of(a2),
        "amendedLeaf": leaf_of(own_b),
        "anchorer": org_b.address,
        "originalRoot": tree_b.root,
        "amendedRoot": tree_b.root,
    }
    assert status_of(ledger, org_a, a1) == status_of(ledger, org_a, a2) == UNTOUCHED
    assert status(ledger, org_b, in_tree(a1, tree_b)) == RecordStatus(None, REASON)  # B's anchoring, B's word
    # A changes its own records as it sees fit: B's claims did not use up A's one change.
    ledger.anchors.amend(a1, batch_a.record(2), org_a)
    ledger.anchors.retract(a2, "DUPLICATE", org_a)
    assert status(ledger, org_a, a1) == RecordStatus(leaf_of(batch_a.record(2)), None, batch_a.root)
    assert status(ledger, org_a, a2) == RecordStatus(None, "DUPLICATE")


def test_amend_and_retract_reject_invalid_proofs(ledger: Ledger) -> None:
    anchorer = ledger.anchorer()
    batch = anchored_batch(ledger, anchorer, 7, "v1")
    record, neighbour = batch.record(4), batch.record(5)
    corrected = anchored_batch(ledger, anchorer, 7, "v2").record(0)
    flipped = (bytes([record.proof[0][0] ^ 1]) + record.proof[0][1:], *record.proof[1:])
    tampered = RecordInBatch(record.root, record.commitment, flipped)
    wrong_proof = RecordInBatch(record.root, record.commitment, neighbour.proof)
    wrong_root = RecordInBatch(corrected.root, record.commitment, record.proof)

    for bad in (tampered, wrong_proof):
        with reverts(ledger, "RecordAnchorInvalidProof", root=record.root, leaf=leaf_of(record)):
            ledger.anchors.retract(bad, REASON, anchorer)
        with reverts(ledger, "RecordAnchorInvalidProof", root=record.root, leaf=leaf_of(record)):
            ledger.anchors.amend(bad, corrected, anchorer)
    with reverts(ledger, "RecordAnchorInvalidProof", root=corrected.root, leaf=leaf_of(record)):
        ledger.anchors.retract(wrong_root, REASON, anchorer)
    bad_correction = RecordInBatch(corrected.root, corrected.commitment, record.proof)
    with reverts(ledger, "RecordAnchorInvalidProof", root=corrected.root, leaf=leaf_of(corrected)):
        ledger.anchors.amend(record, bad_correction, anchorer)

    for unchanged in (record, corrected):
        assert status_of(ledger, anchorer, unchanged) == UNTOUCHED


def test_a_record_is_amended_only_once(ledger: Ledger) -> None:
    anchorer = ledger.anchorer()
    original = anchored_batch(ledger, anchorer, 3, "v1").record(0)
    first = anchored_batch(ledger, anchorer, 3, "v2").record(0)
    second = anchored_batch(ledger, anchorer, 3, "v3").record(0)
    ledger.anchors.amend(original, first, anchorer)

    for correction in (second, first):
        with reverts(
            ledger, "RecordAnchorAlreadyChanged", anchorer=anchorer.address, root=original.root, leaf=leaf_of(original)
        ):
            ledger.anchors.amend(original, correction, anchorer)
    assert status_of(ledger, anchorer, original) == (first.root, leaf_of(first), ZERO32)


def test_amend_refuses_a_replacement_already_retracted_or_amended(ledger: Ledger) -> None:
    """A correction must itself be current: pointing at a retracted or superseded record is refused."""
    anchorer = ledger.anchorer()
    original = anchored_batch(ledger, anchorer, 3, "v1").record(0)
    retracted = anchored_batch(ledger, anchorer, 3, "retracted").record(1)
    superseded = anchored_batch(ledger, anchorer, 3, "superseded").record(2)
    latest = anchored_batch(ledger, anchorer, 3, "latest").record(0)
    ledger.anchors.retract(retracted, REASON, anchorer)
    ledger.anchors.amend(superseded, latest, anchorer)

    with reverts(
        ledger, "RecordAnchorAlreadyChanged", anchorer=anchorer.address, root=retracted.root, leaf=leaf_of(retracted)
    ):
        ledger.anchors.amend(original, retracted, anchorer)
    with reverts(
        ledger, "RecordAnchorAlreadyChanged", anchorer=anchorer.address, root=superseded.root, leaf=leaf_of(superseded)
    ):
        ledger.anchors.amend(original, superseded, anchorer)

    assert status_of(ledger, anchorer, original) == UNTOUCHED
    assert status_of(ledger, anchorer, retracted) == (ZERO32, ZERO32, encode_code(REASON))
    assert status_of(ledger, anchorer, superseded) == (latest.root, leaf_of(latest), ZERO32)
    # The current version is accepted.
    tx_hash = ledger.anchors.amend(original, latest, anchorer)
    event = single_event(ledger.anchors.contract.events.RecordAmended(), receipt_of(ledger, tx_hash))
    assert event == {
        "originalLeaf": leaf_of(original),
        "amendedLeaf": leaf_of(latest),
        "anchorer": anchorer.address,
        "originalRoot": original.root,
        "amendedRoot": latest.root,
    }
    assert status_of(ledger, anchorer, original) == (latest.root, leaf_of(latest), ZERO32)


def test_retract_requires_a_reason(ledger: Ledger) -> None:
    anchorer = ledger.anchorer()
    record = anchored_batch(ledger, anchorer, 3, "v1").record(0)
    fn = ledger.anchors.contract.functions.retract(record.root, record.commitment, list(record.proof), ZERO32)
    with reverts(ledger, "RecordAnchorMissingReason"):
        ledger.chain.transact(fn, anchorer)
    with pytest.raises(InvalidCodeError):  # the client refuses before anything reaches the chain
        ledger.anchors.retract(record, "", anchorer)
    assert status_of(ledger, anchorer, record) == UNTOUCHED


def test_a_revoked_anchorer_can_neither_amend_nor_retract(ledger: Ledger) -> None:
    anchorer = ledger.anchorer()
    original = anchored_batch(ledger, anchorer, 3, "v1").record(0)
    correction = anchored_batch(ledger, anchorer, 3, "v2").record(0)
    ledger.anchors.revoke_anchorer(ledger.admin, anchorer.address)

    expected = {"account": anchorer.address, "neededRole": bytes(ANCHORER_ROLE)}
    with reverts(ledger, "AccessControlUnauthorizedAccount", **expected):
        ledger.anchors.amend(original, correction, anchorer)
    with reverts(ledger, "AccessControlUnauthorizedAccount", **expected):
        ledger.anchors.retract(original, REASON, anchorer)
    assert status_of(ledger, anchorer, original) == UNTOUCHED
