"""Where an organisation's records with a digest stand, from this service's store (no receipt at hand).

The store says which registered records have the digest and which batch each went into; the chain
event index adds later amendments and retractions, those the batch's anchorer recorded against the
batch's root (nobody else's). Only final batches (anchored and confirmed deep enough) count as
anchored; the others are still on their way.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from ledger.records.anchoring import UNCHANGED, RecordStatus
from ledger.store.apps import organisation_by_address
from ledger.store.chain_index import changes_of_leaf
from ledger.store.database import Connection
from ledger.store.records import get_batch, records_by_digest


@dataclass(frozen=True)
class Waiting:
    """A record with the digest not anchored for good yet: ``pending`` (not sent) or ``confirming``
    (sent, not yet as deep as the configured confirmations require)."""

    status: Literal["pending", "confirming"]


@dataclass(frozen=True)
class Anchored:
    """A record with the digest in a final batch: where its root went, and what happened since."""

    organisation: str
    anchorer: str
    anchored_at: int
    block_number: int
    transaction_hash: bytes
    root: bytes
    amended_by: bytes | None
    retraction_reason: str | None


def anchorings(
    conn: Connection, digest: bytes, organisation_id: int, organisation_name: Callable[[int], str]
) -> list[Anchored | Waiting]:
    """Each of the organisation's records registered with ``digest``, oldest first: where it was
    anchored, or how far it got. Other organisations' records are never looked at: a digest is
    only ever confirmed to the organisation that registered it (or to a holder of its receipt).

    Args:
        conn: The store.
        digest: The SHA-256 digest looked up.
        organisation_id: Whose records are searched.
        organisation_name: The name of an organisation by id (a caller may keep them cached).
    """
    found: list[Anchored | Waiting] = []
    for record in records_by_digest(conn, digest, organisation_id):
        batch = get_batch(conn, record.batch_id) if record.batch_id is not None else None
        if batch is None or not batch.final:
            found.append(Waiting("confirming" if batch is not None and batch.anchored else "pending"))
            continue
        assert batch.anchorer is not None and batch.anchored_at is not None
        assert batch.block_number is not None and batch.tx_hash is not None
        status = indexed_record_status(conn, batch.anchorer, batch.root, record.leaf)
        found.append(
            Anchored(
                organisation=organisation_name(record.organisation_id),
                anchorer=batch.anchorer,
                anchored_at=batch.anchored_at,
                block_number=batch.block_number,
                transaction_hash=batch.tx_hash,
                root=batch.root,
                amended_by=status.amended_by,
                retraction_reason=status.retraction_reason,
            )
        )
    return found


def anchorer_organisation(conn: Connection, anchorer: str) -> str | None:
    """The name of the organisation whose chain account is ``anchorer``, if it is one of this service's."""
    organisation = organisation_by_address(conn, anchorer)
    return organisation.name if organisation else None


def indexed_record_status(conn: Connection, anchorer: str, root: bytes, leaf: bytes) -> RecordStatus:
    """The amendment or retraction ``anchorer`` recorded of its record ``leaf`` in ``root``, as far as
    the index has read the chain.

    Only that account's changes against that root count: a ``RecordAmended`` or ``RecordRetracted``
    naming the same leaf from another account (which may anchor a tree of its own holding the leaf)
    or another root is about another anchoring, never this record.
    """
    wanted_anchorer, wanted_root = anchorer.lower(), "0x" + root.hex()
    for event, values in changes_of_leaf(conn, leaf):
        changed_root = values["originalRoot"] if event == "RecordAmended" else values["root"]
        if values["anchorer"].lower() != wanted_anchorer or changed_root != wanted_root:
            continue  # another account's change, or the same leaf in another root
        if event == "RecordAmended":  # a record is changed at most once: the first change is the change
            return RecordStatus(
                bytes.fromhex(values["amendedLeaf"][2:]), None, bytes.fromhex(values["amendedRoot"][2:])
            )
        return RecordStatus(None, values["reason"])
    return UNCHANGED
