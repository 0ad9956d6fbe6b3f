"""Replay every event of both contracts and compare the result with the contracts' own answers.

From the deploy block to the pinned head, the replay rebuilds:

* each consent ``(patient, grantee, scope, purpose)``: window, last change time, granted/revoked,
  exactly as ``ConsentRegistry`` stores it, then asks ``consentOf`` for every key;
* each guardian appointment, then asks ``guardianUntil``;
* every anchor (an anchorer's root, keyed as the contract keys it: two accounts may anchor the same
  root) with its leaf count, then asks ``anchorOf`` for every one (event and storage must agree)
  and totals leaf counts per anchorer;
* the break-glass accesses, amendments and retractions, and the ``ANCHORER_ROLE`` history; each
  change is checked against the one rule for changes (:func:`check_changes`: made by the record's
  anchorer, on its own anchored root, holding the role, at most once per record), then its
  ``recordStatus`` is asked.

A difference between the replay and a view function means the chain's events do not explain its
state (or the audit read the wrong contract); each is reported as a :class:`Discrepancy`. So is a
change the rule forbids: the contract refuses those, and the auditor does not take that on trust.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ledger.auditor.chain_reader import ChainReader
from ledger.auditor.logs import Progress
from ledger.auditor.record_changes import CHANGE_EVENTS, RecordChange
from ledger.chain import contracts
from ledger.chain.contracts import CONSENT_EVENTS
from ledger.chain.events import Event
from ledger.chain.roles import ROLE_EVENTS, RoleTimeline
from ledger.consent.terms import ConsentStatus
from ledger.records.anchoring import ANCHORER_ROLE
from ledger.records.verification import show
from ledger.values import decode_code

ANCHOR_EVENTS = (*contracts.ANCHOR_EVENTS, *ROLE_EVENTS)

ConsentKey = tuple[str, str, bytes, bytes]
"""``(patient, grantee, scope, purpose)`` as the contract keys a consent."""
AnchorKey = tuple[str, bytes]
"""``(anchorer, root)`` as the contract keys an anchor (the anchorer checksummed)."""


@dataclass(frozen=True)
class Discrepancy:
    """Something the chain (or the index) claims that does not hold: what, about what, and the values."""

    kind: str
    subject: str
    detail: str
    expected: str | None = None
    actual: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "subject": self.subject,
            "detail": self.detail,
            "expected": self.expected,
            "actual": self.actual,
        }


@dataclass
class ConsentFact:
    """A consent as replayed from events: what ``consentOf`` must answer."""

    valid_from: int
    valid_until: int
    updated_at: int
    status: int


@dataclass(frozen=True)
class AnchoredRoot:
    """One ``RootAnchored`` event."""

    root: bytes
    anchorer: str
    leaf_count: int
    block_number: int
    block_time: int
    tx_hash: bytes


@dataclass
class History:
    """Everything the replay rebuilt."""

    events: list[Event] = field(default_factory=list)
    consents: dict[ConsentKey, ConsentFact] = field(default_factory=dict)
    guardians: dict[tuple[str, str], int] = field(default_factory=dict)
    anchors: dict[AnchorKey, AnchoredRoot] = field(default_factory=dict)
    break_glass: list[dict[str, Any]] = field(default_factory=list)
    record_changes: list[RecordChange] = field(default_factory=list)
    roles: RoleTimeline = field(default_factory=lambda: RoleTimeline((), bytes(ANCHORER_ROLE)))

    def event_counts(self) -> dict[str, int]:
        return dict(sorted(Counter(e.name for e in self.events).items()))

    def anchors_of_root(self, root: bytes) -> list[AnchoredRoot]:
        """Every account's anchor of ``root``, in chain order."""
        return sorted((a for a in self.anchors.values() if a.root == root), key=lambda a: a.block_number)

    def changes(self) -> list[RecordChange]:
        """The amendments and retractions, in chain order."""
        return self.record_changes

    @property
    def amendments(self) -> list[dict[str, Any]]:
        """The amendments as the report lists them, in chain order."""
        return [c.to_json() for c in self.record_changes if c.kind == "amendment"]

    @property
    def retractions(self) -> list[dict[str, Any]]:
        """The retractions as the report lists them, in chain order."""
        return [c.to_json() for c in self.record_changes if c.kind == "retraction"]

    def leaves_by_anchorer(self) -> dict[str, int]:
        totals: dict[str, int] = defaultdict(int)
        for anchor in self.anchors.values():
            totals[anchor.anchorer] += anchor.leaf_count
        return dict(sorted(totals.items()))


def replay(reader: ChainReader, *, progress: Progress | None = None) -> History:
    """Read every event of both contracts up to the head and rebuild their state."""
    events = reader.events(anchor_events=ANCHOR_EVENTS, consent_events=CONSENT_EVENTS, progress=progress)
    return rebuild(events, reader.source.block_time)


def rebuild(events: list[Event], time_of: Callable[[int], int]) -> History:
    """The state both contracts' ``events`` make, in chain order (``time_of`` gives a block's time)."""
    history = History()
    history.events = sorted(events, key=lambda e: e.position)
    for event in history.events:
        _apply(history, event, time_of)
    history.roles = RoleTimeline((e for e in history.events if e.contract == "RecordAnchor"), bytes(ANCHORER_ROLE))
    return history


def _apply(history: History, event: Event, time_of: Callable[[int], int]) -> None:
    args = event.args
    when = time_of(event.block_number)
    where: dict[str, Any] = {"block": event.block_number, "transaction": show(event.tx_hash), "time": when}
    if event.name == "ConsentGranted":
        key = (args["patient"], args["grantee"], args["scope"], args["purpose"])
        history.consents[key] = ConsentFact(args["validFrom"], args["validUntil"], when, ConsentStatus.GRANTED)
    elif event.name == "ConsentRevoked":
        key = (args["patient"], args["grantee"], args["scope"], args["purpose"])
        fact = history.consents.setdefault(key, ConsentFact(0, 0, 0, 0))
        fact.status, fact.updated_at = ConsentStatus.REVOKED, when
    elif event.name == "GuardianAppointed":
        history.guardians[(args["patient"], args["guardian"])] = args["validUntil"]
    elif event.name == "GuardianRemoved":
        history.guardians[(args["patient"], args["guardian"])] = 0
    elif event.name == "EmergencyAccessRecorded":
        history.break_glass.append(
            {
                "patient": args["patient"],
                "accessor": args["accessor"],
                "scope": decode_code(args["scope"]),
                "purpose": decode_code(args["purpose"]),
                "reason": decode_code(args["reason"]),
                **where,
            }
        )
    elif event.name == "RootAnchored":
        history.anchors.setdefault(
            (args["anchorer"], args["root"]),
            AnchoredRoot(
                args["root"], args["anchorer"], int(args["leafCount"]), event.block_number, when, event.tx_hash
            ),
        )
    elif event.name in CHANGE_EVENTS:
        history.record_changes.append(RecordChange.of_event(event, when))


def compare_with_views(
    reader: ChainReader, history: History, progress: Callable[[int], None] | None = None
) -> list[Discrepancy]:
    """Ask ``consentOf``, ``guardianUntil`` and ``anchorOf`` for everything replayed; list differences."""
    found: list[Discrepancy] = []
    consents = reader.consents.contract.functions
    for key, fact in history.consents.items():
        patient, grantee, scope, purpose = key
        stored = tuple(reader.call(consents.consentOf(patient, grantee, scope, purpose)))
        replayed = (fact.valid_from, fact.valid_until, fact.updated_at, fact.status)
        if stored != replayed:
            found.append(
                Discrepancy(
                    "consent_state_mismatch",
                    f"{patient} -> {grantee} {decode_code(scope)}/{decode_code(purpose)}",
                    "consentOf (validFrom, validUntil, updatedAt, status) differs from the events",
                    str(replayed),
                    str(stored),
                )
            )
        if progress:
            progress(1)
    for (patient, guardian), until in history.guardians.items():
        stored_until = int(reader.call(consents.guardianUntil(patient, guardian)))
        if stored_until != until:
            found.append(
                Discrepancy(
                    "guardian_mismatch",
                    f"{patient} guardian {guardian}",
                    "guardianUntil differs from the events",
                    str(until),
                    str(stored_until),
                )
            )
        if progress:
            progress(1)
    for (anchorer, root), anchor in history.anchors.items():
        info = reader.anchors.anchor_of(anchorer, root, reader.head)
        actual = None if info is None else f"{info.anchorer} at block {info.block_number}"
        expected = f"{anchor.anchorer} at block {anchor.block_number}"
        if actual != expected:
            found.append(
                Discrepancy(
                    "anchor_mismatch",
                    f"{show(root)} by {anchorer}",
                    "anchorOf differs from the RootAnchored event",
                    expected,
                    actual,
                )
            )
        if not history.roles.held_at(anchor.anchorer, anchor.block_number):
            found.append(
                Discrepancy(
                    "anchorer_without_role",
                    f"{show(root)} by {anchorer}",
                    "the root was anchored by an account not holding ANCHORER_ROLE then",
                    anchor.anchorer,
                    "not held",
                )
            )
        if progress:
            progress(1)
    seen: set[tuple[str, str, str]] = set()
    for change in history.changes():
        record = (change.anchorer, change.root, change.leaf)
        if record in seen:  # a second change is reported by check_changes; the view holds the first
            continue
        seen.add(record)
        status = reader.anchors.record_status(change.anchorer, _bytes(change.root), _bytes(change.leaf), reader.head)
        replayed_change = (change.amended_leaf, change.reason)
        stored_change = (show(status.amended_by), status.retraction_reason)
        if stored_change != replayed_change:
            found.append(
                Discrepancy(
                    "change_state_mismatch",
                    change.subject,
                    "recordStatus (amended by, retraction reason) differs from the events",
                    str(replayed_change),
                    str(stored_change),
                )
            )
        if progress:
            progress(1)
    return found


def _bytes(value: str) -> bytes:
    return bytes.fromhex(value.removeprefix("0x"))


def view_checks(history: History) -> int:
    """How many view calls :func:`compare_with_views` makes (for progress bars)."""
    return len(history.consents) + len(history.guardians) + len(history.anchors) + len(history.changes())


def check_changes(history: History) -> list[Discrepancy]:
    """Every change against the one rule (``IRecordAnchor``'s NatSpec): a record is changed only by
    the account that anchored it, on a root that account anchored before, while holding
    ``ANCHORER_ROLE``, at most once (amended or retracted, not both); the amended-to record is the
    same account's own. The contract enforces it; the replayed events must show it held.

    * ``change_without_anchor``: the changed (or amended-to) root was not anchored by the change's
      account before the change;
    * ``change_without_role``: the account did not hold ``ANCHORER_ROLE`` in the change's block;
    * ``record_changed_twice``: a second change of the same ``(anchorer, root, leaf)``.

    Changes another account made of the same leaf under a root of its own are not this record's;
    that the leaf is someone else's record only an index or a receipt can tell
    (``change_by_other_account`` in :mod:`ledger.auditor.index_check` and :mod:`ledger.auditor.verify`).
    """
    found: list[Discrepancy] = []
    first_change: dict[tuple[str, str, str], RecordChange] = {}
    for change in history.changes():
        roots = [change.root] if change.amended_root is None else [change.root, change.amended_root]
        for root in roots:
            anchor = history.anchors.get((change.anchorer, _bytes(root)))
            if anchor is None or anchor.block_number > change.block:
                found.append(
                    Discrepancy(
                        "change_without_anchor",
                        change.subject,
                        f"the account had not anchored root {root} when it recorded the change",
                        f"RootAnchored({root}, {change.anchorer}) before block {change.block}",
                        None if anchor is None else f"anchored at block {anchor.block_number}",
                    )
                )
        if not history.roles.held_at(change.anchorer, change.block):
            found.append(
                Discrepancy(
                    "change_without_role",
                    change.subject,
                    "the change was recorded by an account not holding ANCHORER_ROLE then",
                    change.anchorer,
                    "not held",
                )
            )
        key = (change.anchorer, change.root, change.leaf)
        earlier = first_change.setdefault(key, change)
        if earlier is not change:
            found.append(
                Discrepancy(
                    "record_changed_twice",
                    change.subject,
                    "a record is changed at most once (amended or retracted, not both)",
                    f"only the {earlier.kind} in transaction {earlier.transaction}",
                    f"also a {change.kind} in transaction {change.transaction}",
                )
            )
    return found
