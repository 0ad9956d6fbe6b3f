"""Reconcile a copy of the API's SQLite index with the chain, in both directions.

The index (``ledger.sqlite3``) is opened READ-ONLY. What it claims that the chain does not back:

* ``batch_not_anchored``: a batch marked anchored whose root is not anchored on chain;
* ``batch_anchor_mismatch``: ... anchored in another block or transaction, or only by another
  account than the index says (anchors are keyed by account: the index's anchorer is looked up
  first);
* ``batch_leaf_count_mismatch``: ... with another leaf count than its ``RootAnchored`` event;
* ``batch_leaves_mismatch``: the batch's stored leaves do not build its root;
* ``record_leaf_mismatch``: a record whose salt and digest do not give its stored leaf;
* ``record_not_in_batch``: a record whose leaf is not among its anchored batch's leaves;
* ``index_event_not_on_chain`` / ``index_event_mismatch``: an indexed event the chain does not
  have, or has with other values;
* ``break_glass_not_on_chain``: an access logged as break-glass whose transaction holds no
  ``EmergencyAccessRecorded``;
* ``change_by_other_account``: an amendment or retraction naming the leaf of one of the index's
  anchored records, recorded by another account than the record's anchorer: another member
  anchored a copy of the record's leaf to change it. It does not change the
  record (changes count only as its anchorer made them), but it is an attempt worth reporting.

And what the chain has that the index misses:

* ``chain_root_missing_from_index``: a root anchored by an organisation's account that no batch has;
* ``index_event_missing``: a chain event, in the range the index says it covers, not indexed;
* ``leaf_total_mismatch``: per organisation account, anchored leaves on chain differ from the
  index's anchored batches.

Batches anchored after the audited head are skipped (counted), not reported: the chain view is
older than the index copy.
"""

from __future__ import annotations

import json
import sqlite3
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ledger.auditor.receipt_format import leaf_of
from ledger.auditor.replay import AnchoredRoot, Discrepancy, History
from ledger.chain.contracts import ANCHOR_EVENTS, CONSENT_EVENTS
from ledger.chain.events import Event
from ledger.exceptions import InputError, NotFoundError
from ledger.records.merkle import MerkleTree
from ledger.records.verification import show
from ledger.store.chain_index import readable


@dataclass
class IndexSummary:
    """What the index holds, as counted by the reconciliation."""

    path: str
    batches_anchored: int = 0
    batches_beyond_head: int = 0
    records_checked: int = 0
    events_checked: int = 0
    indexed_to: int | None = None
    leaves_by_organisation: dict[str, int] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "batchesAnchored": self.batches_anchored,
            "batchesBeyondHead": self.batches_beyond_head,
            "recordsChecked": self.records_checked,
            "eventsChecked": self.events_checked,
            "indexedTo": self.indexed_to,
            "leavesByOrganisation": self.leaves_by_organisation,
        }


def open_index(path: Path) -> sqlite3.Connection:
    """Open the index read-only (``mode=ro``: nothing can be written, even by mistake)."""
    path = Path(path)
    if not path.is_file():
        raise NotFoundError(f"no index file {path}", path=str(path))
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        conn.execute("SELECT 1 FROM batches LIMIT 1")
    except sqlite3.Error as err:
        raise InputError(f"{path} is not a CareLedger index: {err}", path=str(path)) from err
    return conn


def reconcile(path: Path, history: History, head: int) -> tuple[list[Discrepancy], IndexSummary]:
    """Compare the index at ``path`` with the replayed chain ``history`` (read up to ``head``)."""
    conn = open_index(path)
    try:
        summary = IndexSummary(str(path))
        found: list[Discrepancy] = []
        organisations = {a.lower(): a for (a,) in conn.execute("SELECT address FROM organisations")}
        batch_leaves = _check_batches(conn, history, head, summary, found)
        _check_records(conn, batch_leaves, summary, found)
        _check_events(conn, history, head, summary, found)
        _check_break_glass(conn, history, found)
        _check_foreign_changes(conn, history, found)
        _check_missing_roots(conn, history, organisations, found)
        _check_leaf_totals(conn, history, organisations, summary, found)
        return found, summary
    except sqlite3.Error as err:
        raise InputError(f"cannot read the index {path}: {err}", path=str(path)) from err
    finally:
        conn.close()


def _check_batches(
    conn: sqlite3.Connection, history: History, head: int, summary: IndexSummary, found: list[Discrepancy]
) -> dict[int, set[bytes]]:
    leaves_of: dict[int, set[bytes]] = {}
    rows = conn.execute(
        "SELECT b.id, b.root, b.leaf_count, b.leaves, b.tx_hash, b.block_number, b.anchorer, o.address "
        "FROM batches b LEFT JOIN organisations o ON o.id = b.organisation_id "
        "WHERE b.state = 'anchored' ORDER BY b.id"
    )
    for batch_id, root, leaf_count, leaves, tx_hash, block_number, anchorer, organisation in rows:
        subject = f"batch {batch_id} root {show(bytes(root))}"
        if block_number is not None and block_number > head:
            summary.batches_beyond_head += 1
            continue
        summary.batches_anchored += 1
        anchor = _anchor_for(history, bytes(root), anchorer, organisation)
        if anchor is None:
            found.append(
                Discrepancy(
                    "batch_not_anchored",
                    subject,
                    "the index marks the batch anchored; the root was never anchored on chain",
                    f"anchored at block {block_number}",
                    None,
                )
            )
        else:
            claimed = (block_number, (anchorer or "").lower(), bytes(tx_hash or b""))
            actual = (anchor.block_number, anchor.anchorer.lower(), anchor.tx_hash)
            if claimed != actual:
                found.append(
                    Discrepancy(
                        "batch_anchor_mismatch",
                        subject,
                        "block, anchorer or transaction differ from the chain's",
                        _triple(claimed),
                        _triple(actual),
                    )
                )
            if anchor.leaf_count != leaf_count:
                found.append(
                    Discrepancy(
                        "batch_leaf_count_mismatch",
                        subject,
                        "leaf count differs from the RootAnchored event",
                        str(leaf_count),
                        str(anchor.leaf_count),
                    )
                )
        blob = bytes(leaves)
        leaf_list = [blob[i : i + 32] for i in range(0, len(blob), 32)]
        built = MerkleTree.from_leaves(leaf_list).root if leaf_list and len(blob) % 32 == 0 else None
        if built != bytes(root) or len(leaf_list) != leaf_count:
            found.append(
                Discrepancy(
                    "batch_leaves_mismatch",
                    subject,
                    "the stored leaves do not build the root",
                    show(bytes(root)),
                    show(built),
                )
            )
        if anchor is not None:  # records of a batch the chain never saw are covered by the batch's entry
            leaves_of[batch_id] = set(leaf_list)
    return leaves_of


def _anchor_for(history: History, root: bytes, *accounts: str | None) -> AnchoredRoot | None:
    """The chain's anchor of ``root`` to compare a batch with: the first of ``accounts`` (the index's
    anchorer, then its organisation's account) that anchored it, else any account's (a mismatch)."""
    anchors = history.anchors_of_root(root)
    for account in accounts:
        found = [a for a in anchors if account is not None and a.anchorer.lower() == account.lower()]
        if found:
            return found[0]
    return anchors[0] if anchors else None


def _triple(values: tuple[Any, str, bytes]) -> str:
    return f"block {values[0]}, anchorer {values[1]}, transaction {show(values[2])}"


def _check_records(
    conn: sqlite3.Connection, batch_leaves: dict[int, set[bytes]], summary: IndexSummary, found: list[Discrepancy]
) -> None:
    rows = conn.execute("SELECT record_id, salt, digest, leaf, batch_id FROM records WHERE batch_id IS NOT NULL")
    for record_id, salt, digest, leaf, batch_id in rows:
        leaves = batch_leaves.get(batch_id)
        if leaves is None:  # the batch is sealed, not anchored, or beyond the audited head
            continue
        summary.records_checked += 1
        leaf = bytes(leaf)
        computed = leaf_of(bytes(salt), bytes(digest))
        if computed != leaf:
            found.append(
                Discrepancy(
                    "record_leaf_mismatch",
                    f"record {record_id}",
                    "salt and digest do not give the stored leaf",
                    show(leaf),
                    show(computed),
                )
            )
        if leaf not in leaves:
            found.append(
                Discrepancy(
                    "record_not_in_batch",
                    f"record {record_id}",
                    f"the leaf is not in anchored batch {batch_id} as the chain knows it",
                    show(leaf),
                    None,
                )
            )


def _check_foreign_changes(conn: sqlite3.Connection, history: History, found: list[Discrepancy]) -> None:
    """A change naming a record's leaf is the record's own when made by the batch's anchorer or its
    organisation's account (the accounts :func:`_anchor_for` accepts; a batch naming another
    anchorer than the chain's is ``batch_anchor_mismatch`` already). One account's changes under
    another root of its own (a leaf it anchored twice) are its own business, not another's attempt."""
    changed_leaves = {named.leaf for change in history.changes() for named in change.named_leaves()}
    if not changed_leaves:
        return
    anchored_as: dict[str, tuple[str, str, set[str]]] = {}
    rows = conn.execute(
        "SELECT r.record_id, r.leaf, b.root, b.anchorer, o.address FROM records r "
        "JOIN batches b ON b.id = r.batch_id LEFT JOIN organisations o ON o.id = b.organisation_id "
        "WHERE b.state = 'anchored'"
    )
    for record_id, leaf, root, anchorer, organisation in rows:
        shown_leaf = show(bytes(leaf)) or ""
        if shown_leaf in changed_leaves:
            accounts = {a.lower() for a in (anchorer, organisation) if a}
            anchored_as[shown_leaf] = (record_id, show(bytes(root)) or "", accounts)
    for change in history.changes():
        for named in change.named_leaves():
            record = anchored_as.get(named.leaf)
            if record is None:
                continue
            record_id, root, accounts = record
            if change.anchorer.lower() not in accounts:
                found.append(
                    Discrepancy(
                        "change_by_other_account",
                        f"record {record_id}",
                        f"{change.anchorer} recorded a {change.kind} naming the record's leaf ({named.role}) "
                        f"under its own root {named.root} in transaction {change.transaction}; it does not "
                        "change the record",
                        f"changes by {' or '.join(sorted(accounts))} in root {root} only",
                        f"{change.kind} by {change.anchorer.lower()} in root {named.root}",
                    )
                )


def _render(event: Event) -> tuple[str | None, dict[str, Any]]:
    """An event's patient and fields exactly as :mod:`ledger.chain.indexer` stores them."""
    args = dict(event.args)
    patient = args.pop("patient", None)
    fields = {name: readable(name, value) for name, value in args.items()}
    return (str(patient).lower() if patient is not None else None), fields


def _check_events(
    conn: sqlite3.Connection, history: History, head: int, summary: IndexSummary, found: list[Discrepancy]
) -> None:
    state = conn.execute("SELECT last_block FROM chain_index_state WHERE id = 1").fetchone()
    indexed_to = min(int(state[0]), head) if state else None
    summary.indexed_to = int(state[0]) if state else None
    kinds = set(ANCHOR_EVENTS) | set(CONSENT_EVENTS)
    chain = {(e.block_number, e.log_index): e for e in history.events if e.name in kinds}
    seen: set[tuple[int, int]] = set()
    rows = conn.execute(
        "SELECT block_number, log_index, tx_hash, event, patient, fields FROM chain_events "
        "WHERE block_number <= ? ORDER BY block_number, log_index",
        (head,),
    )
    for block_number, log_index, tx_hash, name, patient, fields in rows:
        summary.events_checked += 1
        position = (block_number, log_index)
        seen.add(position)
        event = chain.get(position)
        subject = f"{name} at block {block_number} log {log_index}"
        if event is None:
            found.append(
                Discrepancy(
                    "index_event_not_on_chain",
                    subject,
                    "the index holds an event the chain does not have",
                    fields,
                    None,
                )
            )
            continue
        chain_patient, chain_fields = _render(event)
        claimed = (tx_hash, name, patient, json.loads(fields))
        actual = (show(event.tx_hash), event.name, chain_patient, chain_fields)
        if claimed != actual:
            found.append(
                Discrepancy(
                    "index_event_mismatch",
                    subject,
                    "the indexed event differs from the chain's",
                    json.dumps(claimed, sort_keys=True),
                    json.dumps(actual, sort_keys=True),
                )
            )
    if indexed_to is None:
        return
    for position, event in chain.items():
        if position[0] <= indexed_to and position not in seen:
            found.append(
                Discrepancy(
                    "index_event_missing",
                    f"{event.name} at block {position[0]} log {position[1]}",
                    "a chain event in the indexed range is not in the index",
                    json.dumps(_render(event)[1], sort_keys=True),
                    None,
                )
            )


def _check_break_glass(conn: sqlite3.Connection, history: History, found: list[Discrepancy]) -> None:
    on_chain = {e["transaction"] for e in history.break_glass}
    rows = conn.execute("SELECT id, patient, chain_tx FROM access_events WHERE decision = 'break_glass'")
    for access_id, patient, chain_tx in rows:
        tx = show(bytes(chain_tx)) if chain_tx else None
        if tx not in on_chain:
            found.append(
                Discrepancy(
                    "break_glass_not_on_chain",
                    f"access event {access_id} about {patient}",
                    "logged as break-glass, but no EmergencyAccessRecorded in its transaction",
                    tx,
                    None,
                )
            )


def _check_missing_roots(
    conn: sqlite3.Connection, history: History, organisations: dict[str, str], found: list[Discrepancy]
) -> None:
    indexed = {bytes(r) for (r,) in conn.execute("SELECT root FROM batches")}
    for (_, root), anchor in history.anchors.items():
        if anchor.anchorer.lower() in organisations and root not in indexed:
            found.append(
                Discrepancy(
                    "chain_root_missing_from_index",
                    show(root) or "",
                    "a root anchored by an organisation's account is in no index batch",
                    f"{anchor.leaf_count} leaves by {anchor.anchorer} at block {anchor.block_number}",
                    None,
                )
            )


def _check_leaf_totals(
    conn: sqlite3.Connection,
    history: History,
    organisations: dict[str, str],
    summary: IndexSummary,
    found: list[Discrepancy],
) -> None:
    index_totals: dict[str, int] = defaultdict(int)
    rows = conn.execute(
        "SELECT o.address, b.leaf_count, b.root FROM batches b JOIN organisations o "
        "ON o.id = b.organisation_id WHERE b.state = 'anchored'"
    )
    anchored = {(anchorer.lower(), root) for anchorer, root in history.anchors}
    for address, leaf_count, root in rows:
        if (address.lower(), bytes(root)) in anchored:  # batches off chain are reported on their own
            index_totals[address.lower()] += leaf_count
    chain_totals: dict[str, int] = defaultdict(int)
    for anchor in history.anchors.values():
        if anchor.anchorer.lower() in organisations:
            chain_totals[anchor.anchorer.lower()] += anchor.leaf_count
    summary.leaves_by_organisation = {organisations[a]: n for a, n in sorted(index_totals.items())}
    for address in sorted(set(index_totals) | set(chain_totals)):
        if index_totals[address] != chain_totals[address]:
            found.append(
                Discrepancy(
                    "leaf_total_mismatch",
                    organisations.get(address, address),
                    "anchored leaves on chain differ from the index's anchored batches",
                    str(index_totals[address]),
                    str(chain_totals[address]),
                )
            )
