"""The auditor's replay checks every amendment and retraction against the one rule for changes.

The contract refuses a change that breaks the rule, so a chain running today's RecordAnchor never
shows one; the auditor does not take that on trust. These tests feed the replay the events a
contract with the old semantics (changes keyed by leaf alone, "own record" meaning any root the
caller anchored) emitted, and check each broken rule is reported by name. What a real chain shows
when another member changes a copy of someone's leaf is in
``tests/api/test_record_integrity_api.py``.
"""

from __future__ import annotations

from typing import Any

from ledger.auditor.replay import check_changes, rebuild
from ledger.chain.events import Event
from ledger.records.anchoring import ANCHORER_ROLE
from ledger.values import encode_code

A = "0x" + "aa" * 20
B = "0x" + "bb" * 20
ROOT_A, ROOT_B = b"\x0a" * 32, b"\x0b" * 32
LEAF_1, LEAF_2 = b"\x01" * 32, b"\x02" * 32
ADMIN = "0x" + "00" * 19 + "01"


def event(name: str, block: int, **args: Any) -> Event:
    return Event("RecordAnchor", name, args, block, 0, block.to_bytes(32, "big"))


def granted(account: str, block: int = 1) -> Event:
    return event("RoleGranted", block, role=bytes(ANCHORER_ROLE), account=account, sender=ADMIN)


def anchored(account: str, root: bytes, block: int) -> Event:
    return event("RootAnchored", block, root=root, anchorer=account, leafCount=2)


def retracted(account: str, root: bytes, leaf: bytes, block: int) -> Event:
    return event(
        "RecordRetracted", block, leaf=leaf, reason=encode_code("ENTERED_IN_ERROR"), anchorer=account, root=root
    )


def amended(account: str, root: bytes, leaf: bytes, new_root: bytes, new_leaf: bytes, block: int) -> Event:
    return event(
        "RecordAmended",
        block,
        originalLeaf=leaf,
        amendedLeaf=new_leaf,
        anchorer=account,
        originalRoot=root,
        amendedRoot=new_root,
    )


def kinds(*events: Event) -> list[str]:
    return [d.kind for d in check_changes(rebuild(list(events), lambda block: 1_000 + block))]


def test_changes_by_the_anchorer_of_its_own_roots_hold() -> None:
    assert (
        kinds(
            granted(A),
            anchored(A, ROOT_A, 2),
            anchored(A, ROOT_B, 3),
            retracted(A, ROOT_A, LEAF_1, 4),
            amended(A, ROOT_A, LEAF_2, ROOT_B, LEAF_1, 5),
        )
        == []
    )


def test_a_change_against_a_root_the_account_never_anchored_is_reported() -> None:
    """The old semantics: B's change names A's root (or its own, before anchoring it)."""
    assert kinds(granted(A), granted(B), anchored(A, ROOT_A, 2), retracted(B, ROOT_A, LEAF_1, 3)) == [
        "change_without_anchor"
    ]
    assert kinds(granted(B), retracted(B, ROOT_B, LEAF_1, 3), anchored(B, ROOT_B, 4)) == ["change_without_anchor"]
    # amended to a record in a root of another account's
    assert kinds(
        granted(A),
        granted(B),
        anchored(A, ROOT_A, 2),
        anchored(B, ROOT_B, 2),
        amended(B, ROOT_B, LEAF_1, ROOT_A, LEAF_2, 3),
    ) == ["change_without_anchor"]


def test_a_change_by_an_account_without_the_role_is_reported() -> None:
    revoked = event("RoleRevoked", 3, role=bytes(ANCHORER_ROLE), account=A, sender=ADMIN)
    assert kinds(granted(A), anchored(A, ROOT_A, 2), revoked, retracted(A, ROOT_A, LEAF_1, 4)) == [
        "change_without_role"
    ]


def test_a_record_changed_twice_is_reported_once_per_extra_change() -> None:
    """Amended then retracted (the race of issue 12, point 4, as the old contract let it end)."""
    found = check_changes(
        rebuild(
            [
                granted(A),
                anchored(A, ROOT_A, 2),
                amended(A, ROOT_A, LEAF_1, ROOT_A, LEAF_2, 3),
                retracted(A, ROOT_A, LEAF_1, 4),
                retracted(A, ROOT_A, LEAF_1, 5),
            ],
            lambda block: block,
        )
    )
    assert [d.kind for d in found] == ["record_changed_twice", "record_changed_twice"]
    assert "amendment" in (found[0].expected or "") and "retraction" in (found[0].actual or "")


def test_the_same_leaf_changed_by_two_accounts_in_their_own_roots_is_not_this_rule() -> None:
    """Two anchorings of one leaf are two records to the chain: the rule holds for each. Which of
    them is the real record only an index or a receipt says (``change_by_other_account``)."""
    assert (
        kinds(
            granted(A),
            granted(B),
            anchored(A, ROOT_A, 2),
            anchored(B, ROOT_B, 3),
            retracted(B, ROOT_B, LEAF_1, 4),
            retracted(A, ROOT_A, LEAF_1, 5),
        )
        == []
    )
