"""Who held a role when, replayed from the contract's ``RoleGranted``/``RoleRevoked`` events.

A receipt claims its root was anchored by an account in a block; its verifiers (the API and the
auditor) check that account held ``ANCHORER_ROLE`` then. Replaying role events answers that the
same way on every node (no historical state needed: a pruned node serves logs, not old state),
costs one log read, and also yields the role history the auditor's report shows.

"Held at block N" means held when block N started, or granted within block N: the contract refuses
``anchor`` from an account without the role, so an anchor in block N by an account granted in that
very block is legitimate, while an account whose role ended before block N could not have anchored.
"""

from __future__ import annotations

from bisect import bisect_left
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from ledger.chain.events import Event

ROLE_EVENTS = ("RoleGranted", "RoleRevoked")


@dataclass(frozen=True)
class RoleChange:
    """One grant or revocation of the role, in chain order."""

    account: str
    granted: bool
    block_number: int
    log_index: int
    sender: str


class RoleTimeline:
    """The history of one role on one contract."""

    def __init__(self, events: Iterable[Event], role: bytes) -> None:
        self.role = role
        self._changes: dict[str, list[RoleChange]] = defaultdict(list)
        for event in sorted(events, key=lambda e: e.position):
            if event.name not in ROLE_EVENTS or event.args["role"] != role:
                continue
            change = RoleChange(
                event.args["account"],
                event.name == "RoleGranted",
                event.block_number,
                event.log_index,
                event.args["sender"],
            )
            self._changes[change.account].append(change)

    def changes(self) -> list[RoleChange]:
        """Every change, in chain order."""
        return sorted((c for cs in self._changes.values() for c in cs), key=lambda c: (c.block_number, c.log_index))

    def held_at(self, account: str, block: int) -> bool:
        """Whether ``account`` held the role when ``block`` started, or was granted it within ``block``."""
        changes = self._changes.get(account)
        if not changes:
            return False
        blocks = [c.block_number for c in changes]
        before = bisect_left(blocks, block)
        if before and changes[before - 1].granted:
            return True
        return any(c.granted for c in changes[before:] if c.block_number == block)

    def holders(self) -> list[str]:
        """Accounts holding the role after the last change."""
        return sorted(a for a, cs in self._changes.items() if cs[-1].granted)
