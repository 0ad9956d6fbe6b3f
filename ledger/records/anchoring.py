"""The RecordAnchor client: anchor batch roots, read anchors, amend and retract records.

An anchor belongs to the account that made it: every read names the anchorer with the root
(``anchor_of(anchorer, root)``), and a record's amendment or retraction is read for the record as
that account anchored it (``record_status(anchorer, root, leaf)``), so that nothing another
account does with the same root or leaf can be mistaken for it.
"""

from __future__ import annotations

from dataclasses import dataclass

from eth_account.signers.local import LocalAccount
from web3 import Web3
from web3.types import BlockIdentifier

from ledger.chain.client import DEFAULT_CONFIRMATIONS, Chain
from ledger.chain.contracts import RECORD_ANCHOR, load_artifact
from ledger.chain.events import decode_log, raw_log, topics_of
from ledger.chain.roles import ROLE_EVENTS, RoleTimeline
from ledger.values import checksum, decode_code, encode_code

ANCHORER_ROLE = Web3.keccak(text="ANCHORER_ROLE")


@dataclass(frozen=True)
class AnchorInfo:
    """What the contract stores for an anchored root."""

    root: bytes
    anchorer: str
    block_number: int
    anchored_at: int


@dataclass(frozen=True)
class AnchoredBatch:
    """The result of anchoring one batch root: where and when it went on chain, and its cost."""

    root: bytes
    leaf_count: int
    anchorer: str
    tx_hash: bytes
    block_number: int
    anchored_at: int
    gas_used: int
    block_hash: bytes | None = None


@dataclass(frozen=True)
class RecordInBatch:
    """A record's commitment and its leaf's proof in an anchored root: what amend and retract need."""

    root: bytes
    commitment: bytes
    proof: tuple[bytes, ...]


@dataclass(frozen=True)
class RecordStatus:
    """What its anchorer later recorded about a record: the leaf (and root) of the record that
    superseded it, or why it was retracted; at most one of the two (a record is changed once)."""

    amended_by: bytes | None
    retraction_reason: str | None
    amended_in: bytes | None = None
    """The root (anchored by the same account) holding the record that superseded it."""


UNCHANGED = RecordStatus(None, None)
"""The status of a record neither amended nor retracted."""


class RecordAnchorClient:
    """Reads and writes one RecordAnchor deployment."""

    def __init__(
        self, chain: Chain, address: str, deploy_block: int = 0, *, confirmations: int = DEFAULT_CONFIRMATIONS
    ) -> None:
        self.chain = chain
        self.confirmations = confirmations
        self.address = checksum(address)
        self.deploy_block = deploy_block
        self.contract = chain.contract(load_artifact(RECORD_ANCHOR), self.address)
        self._anchored: dict[tuple[str, bytes], AnchorInfo] = {}  # an anchor, once on chain, never changes
        self._anchorings: dict[tuple[str, bytes], AnchoredBatch] = {}  # likewise its transaction and event
        self._roles: RoleTimeline | None = None  # ANCHORER_ROLE's history up to block _roles_to
        self._roles_to = -1

    def anchor(self, root: bytes, leaf_count: int, sender: LocalAccount) -> AnchoredBatch:
        """Anchor a batch root in one transaction."""
        receipt = self.chain.transact(self.contract.functions.anchor(root, leaf_count), sender)
        block = receipt["blockNumber"]
        return AnchoredBatch(
            root=root,
            leaf_count=leaf_count,
            anchorer=sender.address,
            tx_hash=bytes(receipt["transactionHash"]),
            block_number=block,
            anchored_at=self.chain.block_timestamp(block),
            gas_used=receipt["gasUsed"],
            block_hash=bytes(receipt["blockHash"]),
        )

    def anchor_of(self, anchorer: str, root: bytes, block: BlockIdentifier = "latest") -> AnchorInfo | None:
        """When ``anchorer`` anchored ``root``, or None if that account never did (whoever else may have).

        Anchors found at the newest block are remembered once they are ``confirmations`` blocks deep
        (the contract never changes one; only a reorganisation of the newest blocks can undo it).
        """
        key = (checksum(anchorer), root)
        if block == "latest" and key in self._anchored:
            return self._anchored[key]
        stored, block_number, anchored_at = self.chain.call(self.contract.functions.anchorOf(key[0], root), block)
        if int(stored, 16) == 0:
            return None
        info = AnchorInfo(root, checksum(stored), block_number, anchored_at)
        if block == "latest" and (
            self.confirmations == 0 or block_number + self.confirmations <= self.chain.block_number()
        ):
            self._anchored[key] = info
        return info

    def anchoring_of(self, anchorer: str, root: bytes) -> AnchoredBatch | None:
        """``anchorer``'s anchoring of a root already on chain, rebuilt from its ``RootAnchored`` event and
        transaction (for a process that died after sending, a root that moved block, or checking a
        receipt's every claim). The leaf count is the event's; None if the account never anchored the
        root or its event is not found. Remembered, as :meth:`anchor_of`'s answers are, once deep enough."""
        key = (checksum(anchorer), root)
        cached = self._anchorings.get(key)
        if cached is not None and key in self._anchored:
            return cached
        info = self.anchor_of(anchorer, root)
        if info is None:
            return None
        with self.chain.io():
            logs = self.contract.events.RootAnchored.get_logs(
                from_block=info.block_number,
                to_block=info.block_number,
                argument_filters={"root": root, "anchorer": info.anchorer},
            )
        if not logs:
            return None
        receipt = self.chain.transaction_receipt(bytes(logs[0]["transactionHash"]))
        anchored = AnchoredBatch(
            root=root,
            leaf_count=int(logs[0]["args"]["leafCount"]),
            anchorer=info.anchorer,
            tx_hash=bytes(logs[0]["transactionHash"]),
            block_number=info.block_number,
            anchored_at=info.anchored_at,
            gas_used=int(receipt["gasUsed"]),
            block_hash=bytes(receipt["blockHash"]),
        )
        if key in self._anchored:  # deep enough that no reorganisation takes it back
            self._anchorings[key] = anchored
        return anchored

    def forget(self, anchorer: str, root: bytes) -> None:
        """Drop a remembered anchor (a reorganisation may have undone it)."""
        self._anchored.pop((checksum(anchorer), root), None)
        self._anchorings.pop((checksum(anchorer), root), None)

    def verify_commitment(self, anchorer: str, root: bytes, commitment: bytes, proof: list[bytes]) -> bool:
        """The contract's own verdict on a record commitment and proof in a root ``anchorer`` anchored."""
        fn = self.contract.functions.verifyCommitment(checksum(anchorer), root, commitment, proof)
        return bool(self.chain.call(fn))

    def verify_record(self, anchorer: str, root: bytes, salt: bytes, digest: bytes, proof: list[bytes]) -> bool:
        """The contract's own verdict on a record's salt and digest in a root ``anchorer`` anchored (a
        call: the salt is not published)."""
        fn = self.contract.functions.verifyRecord(checksum(anchorer), root, salt, digest, proof)
        return bool(self.chain.call(fn))

    def amend(self, original: RecordInBatch, amended: RecordInBatch, sender: LocalAccount) -> bytes:
        """Record that ``original`` was superseded by ``amended`` (both in roots ``sender`` anchored);
        returns the transaction hash."""
        fn = self.contract.functions.amend(
            original.root,
            original.commitment,
            list(original.proof),
            amended.root,
            amended.commitment,
            list(amended.proof),
        )
        return bytes(self.chain.transact(fn, sender)["transactionHash"])

    def retract(self, record: RecordInBatch, reason: str, sender: LocalAccount) -> bytes:
        """Record that a record (in a root ``sender`` anchored) was entered in error, with a reason
        code; returns the transaction hash."""
        fn = self.contract.functions.retract(record.root, record.commitment, list(record.proof), encode_code(reason))
        return bytes(self.chain.transact(fn, sender)["transactionHash"])

    def record_status(self, anchorer: str, root: bytes, leaf: bytes, block: BlockIdentifier = "latest") -> RecordStatus:
        """Whether ``anchorer`` amended or retracted its record ``leaf`` of ``root`` (changes any
        other account recorded, against any root, are not this record's)."""
        amended_in, amended_by, reason = self.chain.call(
            self.contract.functions.recordStatus(checksum(anchorer), root, leaf), block
        )
        if any(amended_by):
            return RecordStatus(bytes(amended_by), None, bytes(amended_in))
        return RecordStatus(None, decode_code(reason)) if any(reason) else UNCHANGED

    def held_anchorer_role(self, account: str, block: int) -> bool:
        """Whether ``account`` held ``ANCHORER_ROLE`` in ``block`` (when it started, or granted within
        it), from the contract's role events: any node answers, pruned ones too (no historical state).
        The history is read once and again only for a block past what was read."""
        if self._roles is None or block > self._roles_to:
            head = self.chain.block_number()
            entries = self.chain.get_logs(
                {
                    "fromBlock": self.deploy_block,
                    "toBlock": head,
                    "address": self.address,
                    "topics": [["0x" + t.hex() for t in sorted(topics_of(*ROLE_EVENTS))]],
                }
            )
            events = [e for e in (decode_log(raw_log(entry), RECORD_ANCHOR) for entry in entries) if e is not None]
            self._roles, self._roles_to = RoleTimeline(events, bytes(ANCHORER_ROLE)), head
        return self._roles.held_at(checksum(account), block)

    def has_anchorer_role(self, account: str, block: BlockIdentifier = "latest") -> bool:
        """Whether ``account`` held ``ANCHORER_ROLE`` at ``block``."""
        return bool(self.chain.call(self.contract.functions.hasRole(ANCHORER_ROLE, checksum(account)), block))

    def grant_anchorer(self, admin: LocalAccount, account: str) -> None:
        """Give an organisation's account the right to anchor (the admin holds the admin role)."""
        if not self.has_anchorer_role(account):
            self.chain.transact(self.contract.functions.grantRole(ANCHORER_ROLE, checksum(account)), admin)

    def revoke_anchorer(self, admin: LocalAccount, account: str) -> None:
        """Take the right to anchor away from an account."""
        if self.has_anchorer_role(account):
            self.chain.transact(self.contract.functions.revokeRole(ANCHORER_ROLE, checksum(account)), admin)
