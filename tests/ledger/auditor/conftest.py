"""A small ledger built once per module on the chain under test, and the tamper cases as data.

The scenario: an account is granted ``ANCHORER_ROLE`` and loses it; then an organisation's
anchorer is granted the role and anchors one batch of six raw documents; then it loses the role
too (its receipts must stay valid: it held the role when it anchored). The auditor reads the chain
(the embedded one read-only) while the ledger (the writer) stays open.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account

from ledger.auditor.chain_reader import ChainReader, open_reader
from ledger.records.hashing import digest_bytes, leaf_hash, new_salt
from ledger.records.receipts import Receipt, anchor_batch
from ledger.runtime import Ledger, open_ledger
from tests.support import paths
from tests.support.chain_under_test import ChainUnderTest

TESTDATA = paths.TESTDATA / "auditor"
DOCUMENTS = [b"%%PDF-1.7 discharge letter %d" % i for i in range(6)]


@dataclass
class Scenario:
    """The built ledger and the facts tamper cases refer to by name."""

    data_dir: Path
    ledger: Ledger
    receipts: list[Receipt]
    facts: dict[str, Any]
    rpc_url: str | None

    @property
    def chain_options(self) -> list[str]:
        """The auditor CLI's options that name this ledger's chain and deployment."""
        return ["--data-dir", str(self.data_dir), *(["--rpc-url", self.rpc_url] if self.rpc_url else [])]


def load_cases(kind: str) -> list[dict[str, Any]]:
    """Every case file of ``testdata/auditor/<kind>/``, with its file name as ``id``."""
    cases = []
    for path in sorted((TESTDATA / kind).glob("*.json")):
        case = json.loads(path.read_text("utf-8"))
        case["id"] = path.stem
        cases.append(case)
    return cases


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory, chain_under_test: ChainUnderTest) -> Iterator[Scenario]:
    data_dir = tmp_path_factory.mktemp("auditor") / "data"
    with chain_under_test.isolated(), open_ledger(chain_under_test.settings(data_dir)) as ledger:
        revoked = Account.create()
        ledger.anchors.grant_anchorer(ledger.admin, revoked.address)
        ledger.anchors.revoke_anchorer(ledger.admin, revoked.address)
        block_before_grant = ledger.chain.block_number()
        anchorer = ledger.anchorer()
        records = [(new_salt(), digest_bytes(document)) for document in DOCUMENTS]
        receipts = anchor_batch(ledger.anchors, records, anchorer)
        ledger.anchors.revoke_anchorer(ledger.admin, anchorer.address)  # after anchoring: receipts stay valid
        yield Scenario(
            data_dir,
            ledger,
            receipts,
            {"revoked_anchorer": revoked.address, "block_before_grant": block_before_grant},
            chain_under_test.rpc_url,
        )


@pytest.fixture(scope="module")
def reader(scenario: Scenario) -> Iterator[ChainReader]:
    with open_reader(rpc_url=scenario.rpc_url, data_dir=scenario.data_dir) as opened:
        yield opened


def _flip(hex_value: str, byte: int) -> str:
    raw = bytearray.fromhex(hex_value[2:])
    raw[byte] ^= 1
    return "0x" + raw.hex()


def tampered(case: dict[str, Any], scenario: Scenario, index: int = 2) -> tuple[dict[str, Any], bytes | None]:
    """The case's receipt (as JSON-ready dict) and document bytes, tampered as the case says."""
    receipt = copy.deepcopy(scenario.receipts[index].to_dict())
    for op in case["receipt"]:
        kind = op["op"]
        if kind == "flip":
            receipt[op["field"]] = _flip(receipt[op["field"]], op["byte"])
        elif kind == "flip_proof":
            receipt["proof"][op["index"]] = _flip(receipt["proof"][op["index"]], op["byte"])
        elif kind == "truncate_proof":
            receipt["proof"] = receipt["proof"][: -op["drop"]]
        elif kind == "add":
            receipt[op["field"]] += op["delta"]
        elif kind == "set":
            receipt[op["field"]] = op["value"]
        elif kind == "set_from_scenario":
            receipt[op["field"]] = scenario.facts[op["value"]]
        elif kind == "fresh_unanchored_tree":
            salt, digest = new_salt(), digest_bytes(b"never anchored")
            leaf = "0x" + leaf_hash(salt, digest).hex()
            receipt.update(
                salt="0x" + salt.hex(), digest="0x" + digest.hex(), leaf=leaf, root=leaf, proof=[], leafCount=1
            )
        else:
            raise AssertionError(f"unknown tamper op {kind!r} in case {case['id']}")
    document_spec = case.get("document")
    document = None
    if document_spec is not None:
        raw = bytearray(DOCUMENTS[index])
        if "flip_byte" in document_spec:
            raw[document_spec["flip_byte"]] ^= 1
        document = bytes(raw)
    return receipt, document
