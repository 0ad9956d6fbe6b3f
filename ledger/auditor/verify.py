"""Verify one receipt step by step, and the chain facts receipts are checked against (read once).

The steps, in order, each named in the output and the reports:

========================  =====================================================================
``parse``                 the receipt is well-formed (:mod:`ledger.auditor.receipt_format`)
``digest``                the document (or given digest) is the receipt's digest
``leaf``                  ``keccak256(keccak256(salt || digest))`` is the receipt's leaf
``proof``                 the Merkle path leads from the leaf to the receipt's root
``chain``                 the node is on the receipt's chain id
``contract``              the receipt names the audited RecordAnchor
``anchored``              the root is anchored on chain (``anchorOf``)
``anchorer_role``         the receipt's anchorer held ``ANCHORER_ROLE`` in the receipt's block
``block``                 the root was anchored in the receipt's block
``anchorer``              ... by the receipt's account
``time``                  ... at the receipt's time
``transaction``           ... in the receipt's transaction (the ``RootAnchored`` event's)
``leaf_count``            ... with the receipt's leaf count (the ``RootAnchored`` event's)
========================  =====================================================================

The role is checked against what the receipt *claims* (account and block) before the claims are
compared with the anchor, so a receipt naming an account that could not have anchored then fails
as ``anchorer_role``, the more telling diagnosis. :class:`ChainFacts` reads each root's anchor
once and the role history once, so verifying a hundred thousand receipts of 25 batches costs 25
``anchorOf`` calls and one log read.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ledger.auditor.chain_reader import ChainReader
from ledger.auditor.receipt_format import Failure, ReceiptClaim, parse_receipt, show
from ledger.auditor.roles import ROLE_EVENTS, RoleTimeline
from ledger.exceptions import InvalidProofError
from ledger.records.hashing import leaf_hash
from ledger.records.merkle import process_proof
from ledger.records.receipts import Check, Verification

CHAIN_STEPS = (
    "chain",
    "contract",
    "anchored",
    "anchorer_role",
    "block",
    "anchorer",
    "time",
    "transaction",
    "leaf_count",
)
"""Steps that need the chain, in order."""


@dataclass(frozen=True)
class AnchorFacts:
    """What the chain holds about an anchored root: ``anchorOf`` and its ``RootAnchored`` event."""

    root: bytes
    anchorer: str
    block_number: int
    anchored_at: int
    tx_hash: bytes | None
    leaf_count: int | None


class ChainFacts:
    """Chain reads for receipt checks, each made once: anchors per root, role history once."""

    def __init__(self, reader: ChainReader) -> None:
        self.reader = reader
        self._anchors: dict[bytes, AnchorFacts | None] = {}
        self._roles: RoleTimeline | None = None
        self._claims: dict[ReceiptClaim, list[Check]] = {}
        self.anchor_reads = 0

    def anchor(self, root: bytes) -> AnchorFacts | None:
        """The root's anchor at the pinned head, or None if it was never anchored."""
        if root in self._anchors:
            return self._anchors[root]
        self.anchor_reads += 1
        info = self.reader.anchors.anchor_of(root, self.reader.head)
        facts = None
        if info is not None:
            events = [
                e
                for e in self.reader.events(
                    anchor_events=("RootAnchored",), first=info.block_number, last=info.block_number
                )
                if e.args["root"] == root
            ]
            event = events[0] if events else None
            facts = AnchorFacts(
                root,
                info.anchorer,
                info.block_number,
                info.anchored_at,
                event.tx_hash if event else None,
                int(event.args["leafCount"]) if event else None,
            )
        self._anchors[root] = facts
        return facts

    def roles(self) -> RoleTimeline:
        """The RecordAnchor's ``ANCHORER_ROLE`` history up to the head (read once)."""
        if self._roles is None:
            self._roles = RoleTimeline(self.reader.events(anchor_events=ROLE_EVENTS))
        return self._roles

    def check(self, claim: ReceiptClaim) -> list[Check]:
        """The chain steps for one claim (memoised: receipts of a batch share their claim)."""
        cached = self._claims.get(claim)
        if cached is None:
            cached = self._claims[claim] = self._check(claim)
        return cached

    def first_failure(self, claim: ReceiptClaim) -> Failure | None:
        """The first chain step that fails for ``claim``, or None."""
        for check in self.check(claim):
            if not check.ok:
                return Failure(check.name, check.detail, check.expected, check.actual)
        return None

    def _check(self, claim: ReceiptClaim) -> list[Check]:
        checks = _Checks()
        chain_id = self.reader.chain_id
        if not checks.add(
            "chain",
            chain_id == claim.chain_id,
            "the node is on the receipt's chain",
            "the node is on another chain than the receipt's",
            claim.chain_id,
            chain_id,
        ):
            return checks.items
        contract = self.reader.target.record_anchor
        if not checks.add(
            "contract",
            contract == claim.contract,
            "the receipt names the audited RecordAnchor",
            "the receipt names another contract",
            claim.contract,
            contract,
        ):
            return checks.items
        anchor = self.anchor(claim.root)
        if not checks.add(
            "anchored",
            anchor is not None,
            "the root is anchored on chain",
            "the root was never anchored on chain",
            claim.root,
            None,
        ):
            return checks.items
        assert anchor is not None
        held = self.roles().held_at(claim.anchorer, claim.block_number)
        checks.add(
            "anchorer_role",
            held,
            "the receipt's anchorer held ANCHORER_ROLE in the receipt's block",
            "the receipt's anchorer did not hold ANCHORER_ROLE in the receipt's block",
            f"{claim.anchorer} holding ANCHORER_ROLE at block {claim.block_number}",
            "held" if held else "not held",
        )
        checks.add(
            "block",
            anchor.block_number == claim.block_number,
            "anchored in the receipt's block",
            "anchored in another block than the receipt says",
            claim.block_number,
            anchor.block_number,
        )
        checks.add(
            "anchorer",
            anchor.anchorer == claim.anchorer,
            "anchored by the receipt's account",
            "anchored by another account than the receipt says",
            claim.anchorer,
            anchor.anchorer,
        )
        checks.add(
            "time",
            anchor.anchored_at == claim.anchored_at,
            "anchored at the receipt's time",
            "anchored at another time than the receipt says",
            claim.anchored_at,
            anchor.anchored_at,
        )
        checks.add(
            "transaction",
            anchor.tx_hash == claim.transaction_hash,
            "anchored in the receipt's transaction",
            "the RootAnchored event is in another transaction",
            claim.transaction_hash,
            anchor.tx_hash,
        )
        checks.add(
            "leaf_count",
            anchor.leaf_count == claim.leaf_count,
            "the anchored batch has the receipt's leaf count",
            "the RootAnchored event states another leaf count",
            claim.leaf_count,
            anchor.leaf_count,
        )
        return checks.items


@dataclass
class _Checks:
    items: list[Check] = field(default_factory=list)

    def add(self, name: str, ok: bool, good: str, bad: str, expected: object = None, actual: object = None) -> bool:
        self.items.append(Check(name, ok, good if ok else bad, show(expected), show(actual)))
        return ok


def verify_one(
    receipt_text: bytes | str, *, document_digest: bytes | None = None, facts: ChainFacts | None = None
) -> Verification:
    """Verify one receipt (JSON text): locally, then against the chain when ``facts`` is given.

    A malformed receipt yields a single failed ``parse`` step. Amendments and retractions are
    reported, not failures.

    Raises:
        ChainError: The chain could not be read (neither valid nor invalid: could not check).
    """
    checks = _Checks()
    try:
        receipt = parse_receipt(receipt_text)
    except InvalidProofError as err:
        checks.add("parse", False, "", err.message, None, err.details.get("field"))
        return Verification(checks.items)
    checks.add("parse", True, "the receipt is well-formed", "")
    if document_digest is not None:
        checks.add(
            "digest",
            document_digest == receipt.digest,
            "the document's SHA-256 digest matches the receipt",
            "the document does not match the receipt's digest",
            receipt.digest,
            document_digest,
        )
    leaf = leaf_hash(receipt.salt, receipt.digest)
    checks.add(
        "leaf",
        leaf == receipt.leaf,
        "leaf = keccak256(keccak256(salt || digest)) matches",
        "the salt and digest do not give the receipt's leaf",
        receipt.leaf,
        leaf,
    )
    root = process_proof(leaf, receipt.proof)
    checks.add(
        "proof",
        root == receipt.claim.root,
        "the proof leads from the leaf to the root",
        "the proof does not lead from the leaf to the receipt's root",
        receipt.claim.root,
        root,
    )
    outcome = Verification(checks.items)
    if facts is not None:
        chain_checks = facts.check(receipt.claim)
        outcome.checks.extend(chain_checks)
        if all(c.ok for c in chain_checks if c.name in ("chain", "contract", "anchored")):
            status = facts.reader.anchors.record_status(leaf)
            outcome.amended_by = show(status.amended_by)
            outcome.retraction_reason = status.retraction_reason
    return outcome


def first_failure(outcome: Verification) -> Failure | None:
    """The first failed step of an outcome as a report entry."""
    for check in outcome.checks:
        if not check.ok:
            return Failure(check.name, check.detail, check.expected, check.actual)
    return None
