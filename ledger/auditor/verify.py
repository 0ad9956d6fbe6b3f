"""Verify one receipt as the auditor does, and the chain facts receipts are checked against (read once).

The steps are :data:`ledger.records.verification.AUDITOR_STEPS`, named and worded in
:mod:`ledger.records.verification` (which also gives their order, and why the role comes first).
:class:`ChainFacts` reads each anchor (an anchorer's anchor of a root) once and the role history
once, so verifying a hundred thousand receipts of 25 batches costs 25 ``anchorOf`` calls and one
log read. Amendments and retractions are read for the record as the receipt's anchorer anchored
it: no other account's change counts. Changes another account recorded of the same leaf (under a
root of its own, where it anchored a copy of the leaf) are listed as discrepancies
(:attr:`~ledger.records.verification.Verification.foreign_changes`): they do not change the
record or its verdict, but they are someone's attempt to, and an auditor is told.
"""

from __future__ import annotations

import dataclasses

from ledger.auditor.chain_reader import ChainReader
from ledger.auditor.receipt_format import Failure, ReceiptClaim, parse_receipt
from ledger.auditor.record_changes import CHANGE_EVENTS, RecordChange
from ledger.chain.roles import ROLE_EVENTS, RoleTimeline
from ledger.exceptions import InvalidProofError
from ledger.records.anchoring import ANCHORER_ROLE
from ledger.records.hashing import leaf_hash
from ledger.records.verification import (
    ANCHORED,
    AUDITOR_ANCHOR_STEPS,
    CHAIN,
    CONTRACT,
    PARSE,
    AnchorFacts,
    Check,
    Verification,
    chain_checks,
    digest_check,
    leaf_check,
    proof_check,
    show,
)

"""The events that change a record (read to find other accounts' changes of a receipt's leaf)."""
_WHAT = {
    ("retraction", "changed"): "a retraction of",
    ("amendment", "changed"): "an amendment of",
    ("amendment", "amended-to"): "an amendment to",
}
"""How a foreign change's line names what it did to the receipt's leaf."""
CHAIN_STEPS = tuple(step.name for step in (CHAIN, CONTRACT, ANCHORED, *AUDITOR_ANCHOR_STEPS))
"""Steps that need the chain, in order."""


class ChainFacts:
    """Chain reads for receipt checks, each made once: anchors per root, role history once."""

    def __init__(self, reader: ChainReader) -> None:
        self.reader = reader
        self._anchors: dict[tuple[str, bytes], AnchorFacts | None] = {}
        self._roles: RoleTimeline | None = None
        self._claims: dict[ReceiptClaim, list[Check]] = {}
        self._changes: dict[str, list[RecordChange]] | None = None
        self.anchor_reads = 0

    def anchor(self, anchorer: str, root: bytes) -> AnchorFacts | None:
        """``anchorer``'s anchor of ``root`` at the pinned head, or None if that account never anchored it."""
        key = (anchorer, root)
        if key in self._anchors:
            return self._anchors[key]
        self.anchor_reads += 1
        info = self.reader.anchors.anchor_of(anchorer, root, self.reader.head)
        facts = None
        if info is not None:
            events = [
                e
                for e in self.reader.events(
                    anchor_events=("RootAnchored",), first=info.block_number, last=info.block_number
                )
                if e.args["root"] == root and e.args["anchorer"] == info.anchorer
            ]
            event = events[0] if events else None
            facts = AnchorFacts(
                info.anchorer,
                info.block_number,
                info.anchored_at,
                tx_hash=event.tx_hash if event else None,
                leaf_count=int(event.args["leafCount"]) if event else None,
            )
        self._anchors[key] = facts
        return facts

    def roles(self) -> RoleTimeline:
        """The RecordAnchor's ``ANCHORER_ROLE`` history up to the head (read once)."""
        if self._roles is None:
            self._roles = RoleTimeline(self.reader.events(anchor_events=ROLE_EVENTS), bytes(ANCHORER_ROLE))
        return self._roles

    def changes_naming(self, leaf: bytes) -> list[RecordChange]:
        """Every amendment and retraction naming ``leaf`` (as the changed or the amended-to record),
        whoever recorded it (all change events read once, up to the head)."""
        if self._changes is None:
            self._changes = {}
            for event in self.reader.events(anchor_events=CHANGE_EVENTS):
                change = RecordChange.of_event(event)
                for named in {n.leaf for n in change.named_leaves()}:
                    self._changes.setdefault(named, []).append(change)
        return self._changes.get(show(leaf) or "", [])

    def foreign_changes(self, claim: ReceiptClaim, leaf: bytes) -> list[str]:
        """The changes naming ``leaf`` that another account than the claim's anchorer, or another
        root than the claim's, recorded: each described in a line."""
        found = []
        claimed = (claim.anchorer.lower(), show(claim.root))
        for change in self.changes_naming(leaf):
            named = next(n for n in change.named_leaves() if n.leaf == show(leaf))
            if (change.anchorer.lower(), named.root) != claimed:
                what = _WHAT[(change.kind, named.role)]
                found.append(
                    f"{change.anchorer} recorded {what} this record's leaf under its own root {named.root} "
                    f"(block {change.block}, transaction {change.transaction}); it does not count"
                )
        return found

    def check(self, claim: ReceiptClaim) -> list[Check]:
        """The chain steps for one claim (memoised: receipts of a batch share their claim)."""
        cached = self._claims.get(claim)
        if cached is None:
            cached = self._claims[claim] = self._check(claim)
        return cached

    def first_failure(self, claim: ReceiptClaim) -> Failure | None:
        """The first chain step that fails for ``claim``, or None."""
        return first_failure(Verification(self.check(claim)))

    def _check(self, claim: ReceiptClaim) -> list[Check]:
        def read_anchor() -> AnchorFacts | None:
            anchor = self.anchor(claim.anchorer, claim.root)
            if anchor is None:
                return None
            return dataclasses.replace(anchor, role_held=self.roles().held_at(claim.anchorer, claim.block_number))

        return chain_checks(
            claim,
            chain_id=self.reader.chain_id,
            contract=self.reader.target.record_anchor,
            read_anchor=read_anchor,
            compare=AUDITOR_ANCHOR_STEPS,
        )


def verify_one(
    receipt_text: bytes | str, *, document_digest: bytes | None = None, facts: ChainFacts | None = None
) -> Verification:
    """Verify one receipt (JSON text): locally, then against the chain when ``facts`` is given.

    A malformed receipt yields a single failed ``parse`` step. Amendments and retractions (those the
    receipt's anchorer recorded against its root) are reported, not failures.

    Raises:
        ChainError: The chain could not be read (neither valid nor invalid: could not check).
    """
    try:
        receipt = parse_receipt(receipt_text)
    except InvalidProofError as err:  # the parser's message is the step's failure text with its reason
        return Verification([Check(PARSE.name, False, err.message, None, show(err.details.get("field")))])
    outcome = Verification([PARSE.check(True)])
    if document_digest is not None:
        outcome.checks.append(digest_check(receipt.digest, document_digest))
    leaf = leaf_hash(receipt.salt, receipt.digest)
    outcome.checks.append(leaf_check(receipt.leaf, leaf))
    outcome.checks.append(
        proof_check(leaf, receipt.proof, receipt.claim.root, receipt.claim.leaf_count)
    )  # from the leaf computed here
    if facts is not None:
        outcome.checks.extend(facts.check(receipt.claim))
        if outcome.anchored:
            claim, reader = receipt.claim, facts.reader
            status = reader.anchors.record_status(claim.anchorer, claim.root, leaf, reader.head)
            outcome.amended_by = show(status.amended_by)
            outcome.retraction_reason = status.retraction_reason
            outcome.foreign_changes = facts.foreign_changes(claim, leaf)
    return outcome


def first_failure(outcome: Verification) -> Failure | None:
    """The first failed step of an outcome as a report entry."""
    return next((Failure.of(check) for check in outcome.checks if not check.ok), None)
