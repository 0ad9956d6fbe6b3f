"""Portable receipts: everything needed to check a record against any node of the chain.

A receipt is a small JSON document (camelCase keys) holding the record's digest and salt, its leaf
and Merkle proof, the anchored root, and where the root went on chain (chain id, contract,
transaction, block, time, anchoring account). Anyone holding the record and its receipt can
recompute the digest, the leaf and the root, then ask any node whether that root was anchored in
that block by that account, without trusting CareLedger's server.

The salt is in the receipt but never on chain: without it, the published root reveals nothing
about the record and cannot be confirmed by guessing candidate documents.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from eth_account.signers.local import LocalAccount
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic.alias_generators import to_camel

from ledger.exceptions import InputError, InvalidProofError
from ledger.records.anchoring import AnchoredBatch, RecordAnchorClient, RecordStatus
from ledger.records.hashing import leaf_hash
from ledger.records.merkle import LEAF_ENCODING, MerkleTree, process_proof
from ledger.values import Address, Bytes32

RECEIPT_TYPE = "careledger-receipt"
RECEIPT_VERSION = 1
TREE_FORMAT = "openzeppelin-standard-merkle-tree"
DIGEST_ALGORITHM = "sha-256"


class Receipt(BaseModel):
    """A record's proof of anchoring. Field names serialise in camelCase."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True, alias_generator=to_camel)

    type: Literal["careledger-receipt"] = "careledger-receipt"
    version: Literal[1] = 1
    chain_id: int = Field(gt=0)
    contract: Address
    transaction_hash: Bytes32
    block_number: int = Field(ge=0)
    anchored_at: int = Field(ge=0)
    anchorer: Address
    root: Bytes32
    leaf_count: int = Field(ge=1)
    leaf: Bytes32
    proof: list[Bytes32] = Field(max_length=64)
    digest_algorithm: Literal["sha-256"] = "sha-256"
    digest: Bytes32
    salt: Bytes32
    tree_format: Literal["openzeppelin-standard-merkle-tree"] = "openzeppelin-standard-merkle-tree"
    leaf_encoding: tuple[Literal["bytes32"], Literal["bytes32"]] = LEAF_ENCODING

    def to_json(self) -> str:
        """The receipt as compact JSON text."""
        return self.model_dump_json(by_alias=True)

    def to_dict(self) -> dict[str, Any]:
        """The receipt as a JSON-ready dict."""
        return self.model_dump(mode="json", by_alias=True)

    @classmethod
    def parse(cls, data: str | bytes | dict[str, Any]) -> Receipt:
        """Parse and validate a receipt; raise :class:`InvalidProofError` naming the bad fields."""
        try:
            if isinstance(data, dict):
                return cls.model_validate(data)
            return cls.model_validate(json.loads(data))
        except (ValidationError, ValueError) as err:
            raise InvalidProofError(f"malformed receipt: {err}", errors=_errors(err)) from err


def _errors(err: Exception) -> list[dict[str, Any]]:
    if isinstance(err, ValidationError):
        return [{"field": ".".join(str(p) for p in e["loc"]), "problem": e["msg"]} for e in err.errors()]
    return [{"field": "", "problem": str(err)}]


def issue_receipts(
    tree: MerkleTree,
    records: Sequence[tuple[bytes, bytes]],
    batch: AnchoredBatch,
    *,
    chain_id: int,
    contract: str,
) -> list[Receipt]:
    """One receipt per ``(salt, digest)`` record of an anchored tree, in the order given."""
    if batch.root != tree.root:
        raise InvalidProofError("the anchored root is not this tree's root")
    common: dict[str, Any] = {
        "chain_id": chain_id,
        "contract": contract,
        "transaction_hash": batch.tx_hash,
        "block_number": batch.block_number,
        "anchored_at": batch.anchored_at,
        "anchorer": batch.anchorer,
        "root": tree.root,
        "leaf_count": tree.leaf_count,
    }
    receipts = []
    for salt, digest in records:
        leaf = leaf_hash(salt, digest)
        receipts.append(Receipt(leaf=leaf, proof=tree.proof(leaf), digest=digest, salt=salt, **common))
    return receipts


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


# --- verification ----------------------------------------------------------------------------


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

    def add(self, name: str, ok: bool, detail: str, expected: Any = None, actual: Any = None) -> bool:
        self.checks.append(Check(name, ok, detail, _show(expected), _show(actual)))
        return ok


def _show(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bytes):
        return "0x" + value.hex()
    return str(value)


def verify_receipt(
    receipt: Receipt,
    *,
    document_digest: bytes | None = None,
    anchors: RecordAnchorClient | None = None,
    contract_verdict: bool = True,
    status_of: Callable[[bytes], RecordStatus] | None = None,
) -> Verification:
    """Check a receipt step by step, locally and (given ``anchors``) against the chain.

    Local steps: the document's digest (when given) is the receipt's; ``leaf_hash(salt, digest)``
    is the receipt's leaf; the proof leads from the leaf to the receipt's root. Chain steps: the
    node's chain id is the receipt's; the root is anchored in the receipt's contract, in the
    receipt's block, by the receipt's anchorer; the contract's own ``verifyRecord`` agrees (a call:
    the salt is sent to the node but never published on chain). Later
    amendments and retractions are reported, not counted as failures.

    ``contract_verdict=False`` skips the ``verifyRecord`` call: the local proof against a root the
    chain says is anchored already decides; the call is a second opinion from the contract's own
    code (an auditor wants it; a busy API can spare it). ``status_of`` reads amendments and
    retractions from elsewhere (an event index) instead of a contract call per receipt.

    Raises:
        ChainError: The chain could not be read (the receipt is then neither valid nor invalid).
    """
    result = Verification()
    if document_digest is not None:
        result.add(
            "digest",
            document_digest == receipt.digest,
            "the document's SHA-256 digest matches the receipt"
            if document_digest == receipt.digest
            else "the document does not match the receipt's digest",
            receipt.digest,
            document_digest,
        )
    leaf = leaf_hash(receipt.salt, receipt.digest)
    result.add(
        "leaf",
        leaf == receipt.leaf,
        "leaf = keccak256(keccak256(salt || digest)) matches"
        if leaf == receipt.leaf
        else "the salt and digest do not give the receipt's leaf",
        receipt.leaf,
        leaf,
    )
    try:
        computed_root = process_proof(receipt.leaf, receipt.proof)
    except InvalidProofError as err:
        result.add("proof", False, f"malformed proof: {err.message}")
    else:
        result.add(
            "proof",
            computed_root == receipt.root,
            "the proof leads from the leaf to the root"
            if computed_root == receipt.root
            else "the proof does not lead from the leaf to the receipt's root",
            receipt.root,
            computed_root,
        )
    if anchors is not None:
        _verify_on_chain(receipt, anchors, result, contract_verdict, status_of or anchors.record_status)
    return result


def _verify_on_chain(
    receipt: Receipt,
    anchors: RecordAnchorClient,
    result: Verification,
    contract_verdict: bool,
    status_of: Callable[[bytes], RecordStatus],
) -> None:
    chain_id = anchors.chain.chain_id
    if not result.add(
        "chain",
        chain_id == receipt.chain_id,
        "the node is on the receipt's chain"
        if chain_id == receipt.chain_id
        else "the node is on another chain than the receipt's",
        receipt.chain_id,
        chain_id,
    ):
        return
    if not result.add(
        "contract",
        anchors.address == receipt.contract,
        "the receipt names this deployment's RecordAnchor"
        if anchors.address == receipt.contract
        else "the receipt names another contract",
        receipt.contract,
        anchors.address,
    ):
        return
    anchor = anchors.anchor_of(receipt.root)  # a ChainError means "could not check", not "invalid"
    if not result.add(
        "anchored",
        anchor is not None,
        "the root is anchored on chain" if anchor else "the root was never anchored on chain",
        receipt.root,
        None,
    ):
        return
    assert anchor is not None
    result.add(
        "block",
        anchor.block_number == receipt.block_number,
        "anchored in the receipt's block"
        if anchor.block_number == receipt.block_number
        else "anchored in another block than the receipt says",
        receipt.block_number,
        anchor.block_number,
    )
    result.add(
        "anchorer",
        anchor.anchorer == receipt.anchorer,
        "anchored by the receipt's account"
        if anchor.anchorer == receipt.anchorer
        else "anchored by another account than the receipt says",
        receipt.anchorer,
        anchor.anchorer,
    )
    result.add(
        "time",
        anchor.anchored_at == receipt.anchored_at,
        "anchored at the receipt's time"
        if anchor.anchored_at == receipt.anchored_at
        else "anchored at another time than the receipt says",
        receipt.anchored_at,
        anchor.anchored_at,
    )
    if contract_verdict:
        on_chain = anchors.verify_record(receipt.root, receipt.salt, receipt.digest, receipt.proof)
        result.add(
            "contract_verdict",
            on_chain,
            "the contract's verifyRecord accepts the salt, digest and proof"
            if on_chain
            else "the contract's verifyRecord rejects the salt, digest and proof",
        )
    status = status_of(receipt.leaf)
    result.amended_by = _show(status.amended_by)
    result.retraction_reason = status.retraction_reason
