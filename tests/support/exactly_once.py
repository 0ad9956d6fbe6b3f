"""The independent check behind every durability test: each acknowledged record anchored exactly once.

Nothing here goes through the service under test: the chain is read by a client of its own (a
fresh web3 connection to the node, or a read-only view of the embedded chain's files), the store by
a connection of its own (the SQLite file opened read-only, or PostgreSQL), and the deployment from
the data directory's record. Then:

* every acknowledged record's receipt carries its acknowledged digest, names the deployment's
  chain and contract, and verifies against that chain (the contract's own verdict included);
* every acknowledged record is stored and sealed in a batch whose root is its receipt's root;
* the raw ``RootAnchored`` logs of the deployment's RecordAnchor name each stored batch's root
  exactly once, and no other root;
* leaf counts add up: each batch holds as many records as it says, and the chain's leaf counts sum
  to the number of stored records (no record in two batches, none in none).
"""

from __future__ import annotations

import sqlite3
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from web3 import HTTPProvider, Web3

from ledger.chain.client import Chain
from ledger.chain.contracts import RECORD_ANCHOR, load_artifact
from ledger.chain.deployment import Deployment
from ledger.chain.embedded.backend import open_embedded_web3
from ledger.records.anchoring import RecordAnchorClient
from ledger.records.receipts import Receipt, verify_receipt
from ledger.store.database import STORE_FILE


@dataclass(frozen=True)
class ServedLedger:
    """Where a served process keeps its ledger, as its environment says.

    Attributes:
        data_dir: The data directory (the deployment record; the embedded chain and the SQLite
            store unless the next two say otherwise).
        rpc_url: The node, or None for the embedded chain in ``data_dir``.
        database_url: The PostgreSQL store, or None for SQLite in ``data_dir``.
    """

    data_dir: Path
    rpc_url: str | None
    database_url: str | None

    @classmethod
    def of(cls, env: Mapping[str, str]) -> ServedLedger:
        """The ledger of a process started with ``env`` (``CARELEDGER_*`` variables)."""
        return cls(
            Path(env["CARELEDGER_DATA_DIR"]),
            env.get("CARELEDGER_RPC_URL") or None,
            env.get("CARELEDGER_DATABASE_URL") or None,
        )


@contextmanager
def independent_chain(ledger: ServedLedger) -> Iterator[Chain]:
    """A chain client of the test's own: a new connection to the node, or a read-only view of the
    embedded chain's store (opened now, so it sees every block mined so far)."""
    if ledger.rpc_url is not None:
        with Chain(Web3(HTTPProvider(ledger.rpc_url))) as chain:
            yield chain
        return
    embedded = open_embedded_web3(ledger.data_dir, read_only=True)
    with Chain(embedded.w3, close=embedded.close, serialize=True) as chain:
        yield chain


def stored_rows(ledger: ServedLedger) -> tuple[list[tuple[str, int | None]], list[tuple[int, bytes, int, str]]]:
    """``(record id, batch id)`` of every stored record and ``(id, root, leaf count, state)`` of every
    batch, read through a connection of the test's own."""
    records_sql = "SELECT record_id, batch_id FROM records"
    batches_sql = "SELECT id, root, leaf_count, state FROM batches"
    rows: tuple[list[Any], list[Any]]
    if ledger.database_url is not None:
        with psycopg.connect(ledger.database_url) as db:
            rows = db.execute(records_sql).fetchall(), db.execute(batches_sql).fetchall()
    else:
        path = (ledger.data_dir / STORE_FILE).resolve()
        with closing(sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True)) as db:
            rows = db.execute(records_sql).fetchall(), db.execute(batches_sql).fetchall()
    records = [(str(record_id), batch_id) for record_id, batch_id in rows[0]]
    batches = [(int(i), bytes(root), int(count), str(state)) for i, root, count, state in rows[1]]
    return records, batches


def root_anchored_logs(chain: Chain, deployment: Deployment) -> list[dict[str, Any]]:
    """The arguments of every raw ``RootAnchored`` log of the deployment's RecordAnchor, in chain order
    (``eth_getLogs``, decoded with web3 from the ABI)."""
    contract = chain.contract(load_artifact(RECORD_ANCHOR), deployment.record_anchor)
    event = contract.events.RootAnchored()
    entries = chain.get_logs(
        {
            "address": Web3.to_checksum_address(deployment.record_anchor),
            "fromBlock": deployment.deploy_block,
            "toBlock": "latest",
            "topics": [event.topic],
        }
    )
    return [dict(event.process_log(entry)["args"]) for entry in entries]


def assert_anchored_exactly_once(
    ledger: ServedLedger, acknowledged: Sequence[tuple[str, str]], receipts: Sequence[Receipt]
) -> set[str]:
    """Check that every acknowledged ``(record id, digest)``, whose receipts the service gave in the
    same order, is anchored exactly once (see the module docstring). Returns the ids of every
    stored record, for tests that know more about what must be stored."""
    assert acknowledged, "nothing was acknowledged: the check would be empty"
    assert len(receipts) == len(acknowledged)
    for (record_id, digest), receipt in zip(acknowledged, receipts, strict=True):
        assert "0x" + receipt.digest.hex() == digest, (record_id, digest, receipt.digest.hex())

    deployment = Deployment.load(ledger.data_dir)
    with independent_chain(ledger) as chain:
        deployment.check_against(chain)  # the chain read is the one the deployment is on
        anchors = RecordAnchorClient(chain, deployment.record_anchor, deployment.deploy_block)
        for (record_id, digest), receipt in zip(acknowledged, receipts, strict=True):
            assert (receipt.chain_id, receipt.contract) == (deployment.chain_id, deployment.record_anchor), record_id
            verdict = verify_receipt(receipt, document_digest=bytes.fromhex(digest[2:]), anchors=anchors)
            assert verdict.valid, (record_id, verdict)
        logs = root_anchored_logs(chain, deployment)

    records, batches = stored_rows(ledger)
    batch_of = dict(records)
    assert len(batch_of) == len(records), "a record id stored twice"
    root_of = {batch_id: root for batch_id, root, _, _ in batches}
    for (record_id, _), receipt in zip(acknowledged, receipts, strict=True):
        assert record_id in batch_of, f"acknowledged record {record_id} is not stored"
        batch_id = batch_of[record_id]
        assert batch_id is not None, f"acknowledged record {record_id} was never sealed"
        assert root_of[batch_id] == receipt.root, f"record {record_id}: its receipt names another batch"
    assert {state for _, _, _, state in batches} == {"anchored"}, Counter(state for *_, state in batches)

    chain_roots = [bytes(args["root"]) for args in logs]
    assert len(chain_roots) == len(set(chain_roots)), "a root anchored twice"
    stored_roots = set(root_of.values())
    assert sorted(chain_roots) == sorted(root_of.values()), (
        f"the chain's {len(chain_roots)} roots are not the store's {len(root_of)} batches: "
        f"{len(set(chain_roots) - stored_roots)} on chain only, {len(stored_roots - set(chain_roots))} stored only"
    )
    members = Counter(batch_id for _, batch_id in records)
    assert None not in members, f"{members[None]} stored records were never sealed"
    for batch_id, _, leaf_count, _ in batches:
        assert members[batch_id] == leaf_count, f"batch {batch_id} says {leaf_count} leaves, holds {members[batch_id]}"
    on_chain = sum(int(args["leafCount"]) for args in logs)
    assert on_chain == sum(count for _, _, count, _ in batches) == len(records)
    return set(batch_of)
