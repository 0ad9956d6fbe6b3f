"""The amendments and retractions the chain recorded, as the auditor reads them: one shape for every check.

A ``RecordAmended`` or ``RecordRetracted`` event becomes a :class:`RecordChange` (the replay's
history, the index check and ``verify``'s other accounts' changes all read that), and
:meth:`RecordChange.named_leaves` says once which records a change names: the changed leaf under
the root it was changed in and, for an amendment, the amended-to leaf under its root.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final, Literal

from ledger.chain.events import Event
from ledger.records.verification import show
from ledger.values import decode_code

CHANGE_EVENTS: Final = ("RecordAmended", "RecordRetracted")

LeafRole = Literal["changed", "amended-to"]


@dataclass(frozen=True)
class NamedLeaf:
    """A leaf a change names, the root it names it under, and how (changed, or amended to)."""

    leaf: str
    root: str
    role: LeafRole


@dataclass(frozen=True)
class RecordChange:
    """One ``RecordAmended`` or ``RecordRetracted`` event: which record (as its anchorer anchored it:
    ``(anchorer, root, leaf)``) and, for an amendment, the record that superseded it. Hashes as
    0x-hex (:func:`~ledger.records.verification.show`); ``time`` the block's time when known."""

    kind: str
    """``"amendment"`` or ``"retraction"``."""
    anchorer: str
    root: str
    leaf: str
    block: int
    transaction: str
    time: int | None = None
    amended_root: str | None = None
    amended_leaf: str | None = None
    reason: str | None = None

    @classmethod
    def of_event(cls, event: Event, time: int | None = None) -> RecordChange:
        """The change a ``RecordAmended`` or ``RecordRetracted`` event records."""
        args, block, transaction = event.args, event.block_number, show(event.tx_hash) or ""
        if event.name == "RecordAmended":
            original_root, original_leaf = show(args["originalRoot"]) or "", show(args["originalLeaf"]) or ""
            return cls(
                "amendment", args["anchorer"], original_root, original_leaf, block, transaction, time,
                amended_root=show(args["amendedRoot"]), amended_leaf=show(args["amendedLeaf"]),
            )  # fmt: skip
        if event.name == "RecordRetracted":
            root, leaf = show(args["root"]) or "", show(args["leaf"]) or ""
            return cls("retraction", args["anchorer"], root, leaf, block, transaction, time,
                       reason=decode_code(args["reason"]))  # fmt: skip
        raise ValueError(f"{event.name} is not a record change")

    @property
    def subject(self) -> str:
        return f"{self.kind} of leaf {self.leaf} in {self.root} by {self.anchorer}"

    def named_leaves(self) -> list[NamedLeaf]:
        """The records this change names: the changed one, and for an amendment the amended-to one."""
        named = [NamedLeaf(self.leaf, self.root, "changed")]
        if self.amended_leaf is not None:
            named.append(NamedLeaf(self.amended_leaf, self.amended_root or "", "amended-to"))
        return named

    def to_json(self) -> dict[str, Any]:
        """The change as the audit report lists it (``amendments`` or ``retractions``)."""
        where = {"anchorer": self.anchorer, "block": self.block, "transaction": self.transaction, "time": self.time}
        if self.kind == "amendment":
            return {
                "originalRoot": self.root,
                "originalLeaf": self.leaf,
                "amendedRoot": self.amended_root,
                "amendedLeaf": self.amended_leaf,
                **where,
            }
        return {"root": self.root, "leaf": self.leaf, "reason": self.reason, **where}
