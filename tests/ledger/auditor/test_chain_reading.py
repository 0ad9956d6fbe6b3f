"""Both log sources read the same events; role history answers "held at block N" as documented."""

from __future__ import annotations

import pytest

from ledger.auditor.chain_reader import ChainReader
from ledger.auditor.logs import EmbeddedLogSource, Web3LogSource, read_logs
from ledger.auditor.replay import ANCHOR_EVENTS, replay
from ledger.chain.contracts import CONSENT_EVENTS
from ledger.chain.events import Event
from ledger.chain.roles import RoleTimeline
from tests.ledger.auditor.conftest import Scenario

A, B = "0x" + "aa" * 20, "0x" + "bb" * 20
ROLE = b"\x01" * 32


@pytest.mark.embedded_only  # the embedded chain's own log source
def test_embedded_and_json_rpc_sources_agree(scenario: Scenario, reader: ChainReader) -> None:
    assert isinstance(reader.source, EmbeddedLogSource)
    addresses = [reader.target.record_anchor, reader.target.consent_registry]
    embedded = list(read_logs(reader.source, 0, reader.head, addresses, chunk_blocks=7))
    web3 = list(read_logs(Web3LogSource(reader.chain), 0, reader.head, addresses, chunk_blocks=5))
    assert embedded == web3 and len(embedded) >= 6
    assert {reader.source.block_time(n) for n in range(reader.head + 1)} == {
        Web3LogSource(reader.chain).block_time(n) for n in range(reader.head + 1)
    }


def test_replay_reads_role_and_anchor_history(scenario: Scenario, reader: ChainReader) -> None:
    history = replay(reader)
    assert history.event_counts() == {"RoleGranted": 3, "RoleRevoked": 2, "RootAnchored": 1}  # + admin's own role
    assert set(ANCHOR_EVENTS) & set(CONSENT_EVENTS) == set()
    (anchor,) = history.anchors.values()
    assert anchor.leaf_count == len(scenario.receipts) and anchor.block_number == scenario.receipts[0].block_number


def _role(name: str, account: str, block: int, index: int = 0) -> Event:
    return Event("RecordAnchor", name, {"role": ROLE, "account": account, "sender": B}, block, index, b"")


def test_held_at_means_at_the_start_of_the_block_or_granted_within_it() -> None:
    timeline = RoleTimeline(
        [
            _role("RoleGranted", A, 5),
            _role("RoleRevoked", A, 9, 1),
            _role("RoleGranted", A, 9, 3),
            _role("RoleRevoked", A, 12),
        ],
        role=ROLE,
    )
    assert [timeline.held_at(A, n) for n in (4, 5, 6, 9, 10, 12, 13)] == [False, True, True, True, True, True, False]
    assert not timeline.held_at(B, 6)
    assert timeline.holders() == []
    assert RoleTimeline([_role("RoleGranted", A, 5)], role=b"\x02" * 32).changes() == []
