"""Portable receipts: everything needed to check a record against any node of the chain.

A receipt is a small JSON document (camelCase keys) holding the record's digest and salt, its leaf
and Merkle proof, the anchored root, and where the root went on chain (chain id, contract,
transaction, block, time, anchoring account). Anyone holding the record and its receipt can
recompute the digest, the leaf and the root, then ask any node whether that account anchored that
root in that block (anchors are keyed by account: ``anchorOf(anchorer, root)``), without trusting
CareLedger's server.

The salt is in the receipt but never on chain: without it, the published root reveals nothing
about the record and cannot be confirmed by guessing candidate documents.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Annotated, Any, Literal

from eth_account.signers.local import LocalAccount
from pydantic import BaseModel, ConfigDict, Field, ValidationError, WithJsonSchema
from pydantic.alias_generators import to_camel

from ledger.exceptions import InputError, InvalidProofError
from ledger.records.anchoring import AnchoredBatch, RecordAnchorClient, RecordStatus
from ledger.records.hashing import leaf_hash
from ledger.records.merkle import LEAF_ENCODING, MerkleTree
from ledger.records.strict_json import EXACT_INTEGER_BOUND
from ledger.records.verification import (
    API_ANCHOR_STEPS,
    CONTRACT_VERDICT,
    PARSE,
    AnchorFacts,
    Verification,
    chain_checks,
    digest_check,
    leaf_check,
    proof_check,
    show,
)
from ledger.values import Address, Bytes32

RECEIPT_TYPE = "careledger-receipt"
RECEIPT_VERSION = 2
"""Version 2: anchors are keyed by their anchoring account (the contracts of issue 12); a version 1
receipt names an anchor of contracts this ledger no longer runs."""
OLD_VERSION_PROBLEM = (
    "receipt version 1 was issued for contracts this ledger no longer runs (anchors are now keyed by "
    "their anchoring account); ask the issuer for a version 2 receipt"
)
SCHEMA_FILE = "receipt.schema.json"
"""The receipt's JSON Schema, shipped beside this module and served at ``/v1/receipts/schema``."""
TREE_FORMAT = "openzeppelin-standard-merkle-tree"
DIGEST_ALGORITHM = "sha-256"


class Receipt(BaseModel):
    """A record's proof of anchoring. Field names serialise in camelCase."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True, alias_generator=to_camel)

    type: Literal["careledger-receipt"] = "careledger-receipt"
    version: Literal[2] = 2
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
    leaf_encoding: Annotated[
        tuple[Literal["bytes32"], Literal["bytes32"]],
        # the same pair without `prefixItems`, which JSON Schema drafts before 2020-12 (and tools reading
        # them) spell differently: "two items, each bytes32" reads alike in every draft
        WithJsonSchema(
            {"type": "array", "items": {"const": "bytes32", "type": "string"}, "minItems": 2, "maxItems": 2}
        ),
    ] = LEAF_ENCODING

    def to_json(self) -> str:
        """The receipt as compact JSON text."""
        return self.model_dump_json(by_alias=True)

    def to_dict(self) -> dict[str, Any]:
        """The receipt as a JSON-ready dict."""
        return self.model_dump(mode="json", by_alias=True)

    @classmethod
    def parse(cls, data: str | bytes | dict[str, Any], *, strict: bool = False) -> Receipt:
        """Parse and validate a receipt; raise :class:`InvalidProofError` naming the bad fields.

        ``strict``: numbers must be JSON numbers of at most :data:`EXACT_INTEGER_BOUND` (what every
        JSON reader holds exactly), as the API's schema says; the model's lax mode also takes
        ``true`` or ``"5"`` (``7.0`` is the integer 7 in JSON Schema, and here)."""
        try:
            parsed = data if isinstance(data, dict) else json.loads(data)
            if isinstance(parsed, dict) and parsed.get("version") == 1:
                raise InvalidProofError(
                    PARSE.because(OLD_VERSION_PROBLEM), errors=[{"field": "version", "problem": OLD_VERSION_PROBLEM}]
                )
            if strict:
                _require_numbers(parsed)
            return cls.model_validate(parsed)
        except InvalidProofError:
            raise
        except (ValidationError, ValueError) as err:
            raise InvalidProofError(PARSE.because(str(err)), errors=_errors(err)) from err


_NUMBER_FIELDS = ("version", "chainId", "blockNumber", "anchoredAt", "leafCount")


def _require_numbers(parsed: Any) -> None:
    if not isinstance(parsed, dict):
        return  # the model says what it expected
    problem = f"must be a JSON number of at most {EXACT_INTEGER_BOUND}"
    wrong = [
        {"field": name, "problem": problem}
        for name in _NUMBER_FIELDS
        if isinstance(value := parsed.get(name), (bool, str))
        or (isinstance(value, (int, float)) and abs(value) > EXACT_INTEGER_BOUND)
    ]
    if wrong:
        raise InvalidProofError(PARSE.because(f"{wrong[0]['field']} {problem}"), errors=wrong)


def receipt_schema() -> dict[str, Any]:
    """The JSON Schema of this receipt version (what ``receipt.schema.json`` holds)."""
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"urn:careledger:receipt:v{RECEIPT_VERSION}",
        **Receipt.model_json_schema(by_alias=True),
    }


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


def verify_receipt(
    receipt: Receipt,
    *,
    document_digest: bytes | None = None,
    anchors: RecordAnchorClient | None = None,
    contract_verdict: bool = True,
    status_of: Callable[[str, bytes, bytes], RecordStatus] | None = None,
) -> Verification:
    """Check a receipt step by step, locally and (given ``anchors``) against the chain: the API's
    steps, :data:`ledger.records.verification.API_STEPS`.

    Local steps: the document's digest (when given) is the receipt's; ``leaf_hash(salt, digest)``
    is the receipt's leaf; the proof leads from the receipt's leaf to its root. Chain steps: the
    node's chain id is the receipt's; the root is anchored in the receipt's contract, in the
    receipt's block, by the receipt's anchorer, at the receipt's time; the contract's own
    ``verifyRecord`` agrees (a call: the salt is sent to the node but never published on chain).
    Later amendments and retractions are reported, not counted as failures: those the receipt's
    anchorer recorded against the receipt's root (``status_of(anchorer, root, leaf)``), nobody else's.

    ``contract_verdict=False`` skips the ``verifyRecord`` call: the local proof against a root the
    chain says is anchored already decides; the call is a second opinion from the contract's own
    code (an auditor wants it; a busy API can spare it). ``status_of`` reads amendments and
    retractions from elsewhere (an event index) instead of a contract call per receipt.

    Raises:
        ChainError: The chain could not be read (the receipt is then neither valid nor invalid).
    """
    result = Verification()
    if document_digest is not None:
        result.checks.append(digest_check(receipt.digest, document_digest))
    result.checks.append(leaf_check(receipt.leaf, leaf_hash(receipt.salt, receipt.digest)))
    result.checks.append(proof_check(receipt.leaf, receipt.proof, receipt.root, receipt.leaf_count))
    if anchors is not None:
        _verify_on_chain(receipt, anchors, result, contract_verdict, status_of or anchors.record_status)
    return result


def _verify_on_chain(
    receipt: Receipt,
    anchors: RecordAnchorClient,
    result: Verification,
    contract_verdict: bool,
    status_of: Callable[[str, bytes, bytes], RecordStatus],
) -> None:
    def read_anchor() -> AnchorFacts | None:
        # A ChainError here means "could not check", never "invalid".
        anchored = anchors.anchoring_of(receipt.anchorer, receipt.root)
        if anchored is None:
            return None
        return AnchorFacts(
            anchored.anchorer,
            anchored.block_number,
            anchored.anchored_at,
            tx_hash=anchored.tx_hash,
            leaf_count=anchored.leaf_count,
            role_held=anchors.held_anchorer_role(receipt.anchorer, receipt.block_number),
        )

    result.checks.extend(
        chain_checks(
            receipt,
            chain_id=anchors.chain.chain_id,
            contract=anchors.address,
            read_anchor=read_anchor,
            compare=API_ANCHOR_STEPS,
        )
    )
    if not result.anchored:
        return
    if contract_verdict:
        on_chain = anchors.verify_record(receipt.anchorer, receipt.root, receipt.salt, receipt.digest, receipt.proof)
        result.checks.append(CONTRACT_VERDICT.check(on_chain))
    status = status_of(receipt.anchorer, receipt.root, receipt.leaf)
    result.amended_by = show(status.amended_by)
    result.retraction_reason = status.retraction_reason
