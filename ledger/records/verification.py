"""The one receipt verifier: its steps in order, each step's texts defined here once.

Every step is a :class:`Step` below (its name, what it checks, the text when it holds and the text
when it fails), listed in the order steps run and are reported; :data:`STEPS` is that table. The
checks themselves are small functions shared by both callers, so a step reads the same wherever
it is run:

* the local steps, no chain involved: :func:`digest_check`, :func:`leaf_check`, :func:`proof_check`;
* the chain steps, over a claim (what the receipt says about the chain) and the :class:`AnchorFacts`
  the caller read: :func:`chain_checks`.

Which steps each caller runs:

* the API (:func:`ledger.records.receipts.verify_receipt`: ``POST /v1/verify``, the demo):
  :data:`API_STEPS`, every claim the auditor checks. Its anchor comes from
  ``RecordAnchorClient.anchoring_of(anchorer, root)`` (the anchor with its ``RootAnchored``
  transaction and leaf count, remembered once deep enough) and the role from
  ``held_anchorer_role`` (the role events). A malformed receipt is refused by
  :meth:`~ledger.records.receipts.Receipt.parse` (an error worded as ``parse`` fails), not reported
  as a step. It walks the proof from the receipt's leaf.
* the auditor (:func:`ledger.auditor.verify.verify_one`, ``careledger-audit verify`` and
  ``verify-receipts``): :data:`AUDITOR_STEPS`. Its anchor facts come from
  :class:`ledger.auditor.verify.ChainFacts` (``anchorOf(anchorer, root)``, the ``RootAnchored``
  event and the role timeline, each read once). It walks the proof from the leaf it computed (so after a failed
  ``leaf`` the two may disagree on ``proof``; both call the receipt invalid).

The comparisons with the anchor a caller runs are its ``*_ANCHOR_STEPS`` (today the same for both:
:data:`API_ANCHOR_STEPS` is :data:`AUDITOR_ANCHOR_STEPS`); a fact left None fails its step.

The anchor read is the one the receipt's anchorer made: anchors are keyed by ``(anchorer, root)``
on chain, so a receipt whose anchorer was altered finds no anchor and fails as ``anchored`` (the
``anchorer`` step then compares the account the contract stored with the receipt's). Amendments
and retractions are read for the record as that account anchored it, never another account's.

The role is checked against what the receipt *claims* (account and block) before the other claims
are compared with the anchor, so a receipt naming the real anchorer at a block where it could not
have anchored fails as ``anchorer_role``, the more telling diagnosis.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Final, Protocol

from ledger.exceptions import InvalidProofError
from ledger.records.merkle import process_proof


@dataclass(frozen=True, slots=True)
class Step:
    """One verification step: its name in outcomes and reports, what it checks, and its two texts."""

    name: str
    checks: str
    holds: str
    fails: str

    def check(self, ok: bool, expected: object = None, actual: object = None) -> Check:
        """The step's outcome: its text for ``ok``, and the values compared as :func:`show` prints them."""
        return Check(self.name, ok, self.holds if ok else self.fails, show(expected), show(actual))

    def because(self, reason: str) -> str:
        """The failure text with a particular reason appended (``fails: reason``)."""
        return f"{self.fails}: {reason}"

    def failed(self, reason: str, expected: object = None, actual: object = None) -> Check:
        """The step failed for a particular reason (a malformed input, say)."""
        return Check(self.name, False, self.because(reason), show(expected), show(actual))


PARSE: Final = Step(
    "parse",
    checks="the receipt is well-formed (the auditor's parser, :mod:`ledger.auditor.receipt_format`)",
    holds="the receipt is well-formed",
    fails="malformed receipt",
)
DIGEST: Final = Step(
    "digest",
    checks="the document (or given digest) is the receipt's digest",
    holds="the document's SHA-256 digest matches the receipt",
    fails="the document does not match the receipt's digest",
)
LEAF: Final = Step(
    "leaf",
    checks="``keccak256(keccak256(salt || digest))`` is the receipt's leaf",
    holds="leaf = keccak256(keccak256(salt || digest)) matches",
    fails="the salt and digest do not give the receipt's leaf",
)
PROOF: Final = Step(
    "proof",
    checks="the Merkle path leads from the leaf to the receipt's root",
    holds="the proof leads from the leaf to the root",
    fails="the proof does not lead from the leaf to the receipt's root",
)
CHAIN: Final = Step(
    "chain",
    checks="the node is on the receipt's chain id",
    holds="the node is on the receipt's chain",
    fails="the node is on another chain than the receipt's",
)
CONTRACT: Final = Step(
    "contract",
    checks="the receipt names the RecordAnchor being checked against",
    holds="the receipt names this deployment's RecordAnchor",
    fails="the receipt names another contract",
)
ANCHORED: Final = Step(
    "anchored",
    checks="the receipt's anchorer anchored the root on chain (``anchorOf(anchorer, root)``: anchors are "
    "keyed by account, so another account's anchor of the same root never counts)",
    holds="the root is anchored on chain by the receipt's anchorer",
    fails="the root was never anchored on chain by the receipt's anchorer",
)
ANCHORER_ROLE: Final = Step(
    "anchorer_role",
    checks="the receipt's anchorer held ``ANCHORER_ROLE`` in the receipt's block",
    holds="the receipt's anchorer held ANCHORER_ROLE in the receipt's block",
    fails="the receipt's anchorer did not hold ANCHORER_ROLE in the receipt's block",
)
BLOCK: Final = Step(
    "block",
    checks="the root was anchored in the receipt's block",
    holds="anchored in the receipt's block",
    fails="anchored in another block than the receipt says",
)
ANCHORER: Final = Step(
    "anchorer",
    checks="the root was anchored by the receipt's account",
    holds="anchored by the receipt's account",
    fails="anchored by another account than the receipt says",
)
TIME: Final = Step(
    "time",
    checks="the root was anchored at the receipt's time",
    holds="anchored at the receipt's time",
    fails="anchored at another time than the receipt says",
)
TRANSACTION: Final = Step(
    "transaction",
    checks="the root was anchored in the receipt's transaction (the ``RootAnchored`` event's)",
    holds="anchored in the receipt's transaction",
    fails="the RootAnchored event is in another transaction",
)
LEAF_COUNT: Final = Step(
    "leaf_count",
    checks="the root was anchored with the receipt's leaf count (the ``RootAnchored`` event's)",
    holds="the anchored batch has the receipt's leaf count",
    fails="the RootAnchored event states another leaf count",
)
CONTRACT_VERDICT: Final = Step(
    "contract_verdict",
    checks="the contract's own ``verifyRecord`` accepts the salt, digest and proof (a call: the salt "
    "reaches the node, never the chain)",
    holds="the contract's verifyRecord accepts the salt, digest and proof",
    fails="the contract's verifyRecord rejects the salt, digest and proof",
)

STEPS: Final = (
    PARSE,
    DIGEST,
    LEAF,
    PROOF,
    CHAIN,
    CONTRACT,
    ANCHORED,
    ANCHORER_ROLE,
    BLOCK,
    ANCHORER,
    TIME,
    TRANSACTION,
    LEAF_COUNT,
    CONTRACT_VERDICT,
)
"""Every step, in the order they run."""

AUDITOR_ANCHOR_STEPS: Final = (ANCHORER_ROLE, BLOCK, ANCHORER, TIME, TRANSACTION, LEAF_COUNT)
"""The comparisons with the anchor: every claim a receipt makes about its anchoring."""
API_ANCHOR_STEPS: Final = AUDITOR_ANCHOR_STEPS
"""The API checks every claim too (its facts from the chain, cached once final)."""
API_STEPS: Final = (DIGEST, LEAF, PROOF, CHAIN, CONTRACT, ANCHORED, *API_ANCHOR_STEPS, CONTRACT_VERDICT)
"""The API's steps: ``digest`` given a document, ``contract_verdict`` unless skipped."""
AUDITOR_STEPS: Final = (PARSE, DIGEST, LEAF, PROOF, CHAIN, CONTRACT, ANCHORED, *AUDITOR_ANCHOR_STEPS)
"""The auditor's steps: ``digest`` given a document."""


# --- outcomes --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Check:
    """One verification step: what was compared, and whether it held."""

    name: str
    ok: bool
    detail: str
    expected: str | None = None
    actual: str | None = None


@dataclass
class Verification:
    """The outcome of verifying a receipt: every step, in order."""

    checks: list[Check] = field(default_factory=list)
    amended_by: str | None = None
    retraction_reason: str | None = None
    foreign_changes: list[str] = field(default_factory=list)
    """Set by the auditor: changes of the receipt's leaf that other accounts recorded under roots of
    their own, one line each (discrepancies to report; they neither change the record nor the verdict)."""

    @property
    def valid(self) -> bool:
        """All steps held (amendment or retraction does not make a receipt invalid)."""
        return bool(self.checks) and all(c.ok for c in self.checks)

    @property
    def failures(self) -> list[Check]:
        """The steps that did not hold."""
        return [c for c in self.checks if not c.ok]

    @property
    def failing_step(self) -> str | None:
        """The first step that failed (the one to report), or None."""
        return next((c.name for c in self.checks if not c.ok), None)

    @property
    def anchored(self) -> bool:
        """The chain was read and holds the receipt's root (the claims about it may still differ)."""
        return any(c.name == ANCHORED.name and c.ok for c in self.checks)


def show(value: object) -> str | None:
    """A value as outcomes and reports print it: bytes as 0x-hex, None kept, anything else as text."""
    if value is None:
        return None
    if isinstance(value, bytes):
        return "0x" + value.hex()
    return str(value)


# --- the local steps -------------------------------------------------------------------------


def digest_check(claimed: bytes, document_digest: bytes) -> Check:
    """``digest``: the document's digest is the receipt's."""
    return DIGEST.check(document_digest == claimed, claimed, document_digest)


def leaf_check(claimed: bytes, computed: bytes) -> Check:
    """``leaf``: the leaf computed from the receipt's salt and digest is the receipt's."""
    return LEAF.check(computed == claimed, claimed, computed)


def proof_fits(leaf_count: int, length: int) -> bool:
    """Whether a path of ``length`` siblings can lead from a leaf to the root of a tree of
    ``leaf_count`` leaves: in OpenZeppelin's complete tree (``2n - 1`` nodes, the leaves last) a
    leaf's depth is ``floor(log2 n)`` or ``floor(log2 (2n - 1))``."""
    if leaf_count < 1:
        return False
    return length in (leaf_count.bit_length() - 1, (2 * leaf_count - 1).bit_length() - 1)


def proof_check(leaf: bytes, proof: Sequence[bytes], root: bytes, leaf_count: int | None = None) -> Check:
    """``proof``: the path leads from ``leaf`` to the receipt's ``root`` and, given the receipt's
    ``leaf_count``, is as long as a path in a tree of that many leaves can be (a path that cannot be
    walked, a node not 32 bytes, a length no such tree has: fails with the reason)."""
    if leaf_count is not None and not proof_fits(leaf_count, len(proof)):
        return PROOF.failed(f"{len(proof)} siblings is no path in a tree of {leaf_count} leaves")
    try:
        computed = process_proof(leaf, proof)
    except InvalidProofError as err:
        return PROOF.failed(err.message)
    return PROOF.check(computed == root, root, computed)


# --- the chain steps -------------------------------------------------------------------------


class ChainClaim(Protocol):
    """What a receipt says about the chain: a :class:`~ledger.records.receipts.Receipt` is one, and
    so is the auditor's :class:`~ledger.auditor.receipt_format.ReceiptClaim`."""

    @property
    def chain_id(self) -> int: ...
    @property
    def contract(self) -> str: ...
    @property
    def root(self) -> bytes: ...
    @property
    def block_number(self) -> int: ...
    @property
    def anchorer(self) -> str: ...
    @property
    def anchored_at(self) -> int: ...
    @property
    def transaction_hash(self) -> bytes: ...
    @property
    def leaf_count(self) -> int: ...


@dataclass(frozen=True)
class AnchorFacts:
    """What the chain says about a receipt's root, as far as the caller read it.

    ``anchorer``, ``block_number`` and ``anchored_at`` are the contract's ``anchorOf(anchorer, root)``
    for the receipt's anchorer and root. The rest is
    None when not read: ``tx_hash`` and ``leaf_count`` come from the root's ``RootAnchored`` event,
    ``role_held`` is whether the receipt's anchorer held ``ANCHORER_ROLE`` in the receipt's block.
    """

    anchorer: str
    block_number: int
    anchored_at: int
    tx_hash: bytes | None = None
    leaf_count: int | None = None
    role_held: bool | None = None


def _anchorer_role(claim: ChainClaim, anchor: AnchorFacts) -> Check:
    held = anchor.role_held
    return ANCHORER_ROLE.check(
        held is True,
        f"{claim.anchorer} holding ANCHORER_ROLE at block {claim.block_number}",
        None if held is None else ("held" if held else "not held"),
    )


def _block(claim: ChainClaim, anchor: AnchorFacts) -> Check:
    return BLOCK.check(anchor.block_number == claim.block_number, claim.block_number, anchor.block_number)


def _anchorer(claim: ChainClaim, anchor: AnchorFacts) -> Check:
    return ANCHORER.check(anchor.anchorer == claim.anchorer, claim.anchorer, anchor.anchorer)


def _time(claim: ChainClaim, anchor: AnchorFacts) -> Check:
    return TIME.check(anchor.anchored_at == claim.anchored_at, claim.anchored_at, anchor.anchored_at)


def _transaction(claim: ChainClaim, anchor: AnchorFacts) -> Check:
    return TRANSACTION.check(anchor.tx_hash == claim.transaction_hash, claim.transaction_hash, anchor.tx_hash)


def _leaf_count(claim: ChainClaim, anchor: AnchorFacts) -> Check:
    return LEAF_COUNT.check(anchor.leaf_count == claim.leaf_count, claim.leaf_count, anchor.leaf_count)


ANCHOR_COMPARISONS: Final[dict[Step, Callable[[ChainClaim, AnchorFacts], Check]]] = {
    ANCHORER_ROLE: _anchorer_role,
    BLOCK: _block,
    ANCHORER: _anchorer,
    TIME: _time,
    TRANSACTION: _transaction,
    LEAF_COUNT: _leaf_count,
}
"""The steps that compare a claim with the anchor, each with its comparison."""


def chain_checks(
    claim: ChainClaim,
    *,
    chain_id: int,
    contract: str,
    read_anchor: Callable[[], AnchorFacts | None],
    compare: Sequence[Step],
) -> list[Check]:
    """The chain steps for a claim: ``chain``, ``contract``, ``anchored``, then ``compare`` in order.

    A receipt for another chain or contract stops there (nothing on this chain speaks for it); so
    does a root never anchored. ``read_anchor`` is called only once ``chain`` and ``contract`` hold.

    Args:
        claim: What the receipt says about the chain.
        chain_id: The node's chain id.
        contract: The address of the RecordAnchor checked against.
        read_anchor: The anchor the claim's anchorer made of its root, or None if it never did.
        compare: The comparisons with the anchor to run (steps of :data:`ANCHOR_COMPARISONS`).

    Raises:
        ChainError: From ``read_anchor``: the chain could not be read (could not check).
    """
    checks = [CHAIN.check(chain_id == claim.chain_id, claim.chain_id, chain_id)]
    if not checks[-1].ok:
        return checks
    checks.append(CONTRACT.check(contract == claim.contract, claim.contract, contract))
    if not checks[-1].ok:
        return checks
    anchor = read_anchor()
    checks.append(ANCHORED.check(anchor is not None, claim.root, None))
    if anchor is None:
        return checks
    checks.extend(ANCHOR_COMPARISONS[step](claim, anchor) for step in compare)
    return checks


__all__ = [
    "ANCHORED",
    "ANCHORER",
    "ANCHORER_ROLE",
    "ANCHOR_COMPARISONS",
    "API_ANCHOR_STEPS",
    "API_STEPS",
    "AUDITOR_ANCHOR_STEPS",
    "AUDITOR_STEPS",
    "BLOCK",
    "CHAIN",
    "CONTRACT",
    "CONTRACT_VERDICT",
    "DIGEST",
    "LEAF",
    "LEAF_COUNT",
    "PARSE",
    "PROOF",
    "STEPS",
    "TIME",
    "TRANSACTION",
    "AnchorFacts",
    "ChainClaim",
    "Check",
    "Step",
    "Verification",
    "chain_checks",
    "digest_check",
    "leaf_check",
    "proof_check",
    "show",
]
