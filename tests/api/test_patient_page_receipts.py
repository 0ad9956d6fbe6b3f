"""The patient page's receipt checks (``api/static/patient/receipts.js``, run in node with the pinned
ethers) against ``@openzeppelin/merkle-tree`` and this library: the same leaves, proofs, verdicts
on tampered proofs, canonical JSON and digests."""

from __future__ import annotations

import hashlib
import json
import random
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from api.routes.patient_page import ETHERS_FILE, STATIC_DIR
from ledger.records.hashing import canonical_json, leaf_hash
from ledger.records.merkle import MerkleTree
from ledger.records.verification import proof_fits
from tests.support import paths

pytestmark = pytest.mark.slow

ORACLE = paths.TESTS / "js" / "page_receipts.mjs"
SIZES = (1, 2, 3, 5, 8, 13, 33)
DOCUMENTS: list[Any] = [
    {"type": "careledger/access-event", "version": 1, "organisation": {"name": '<b>Clinic</b> & "Sons"'}},
    {"z": 1, "a": [1.5, -0.0, 1e21, 5e-324, 123456789012, 0.1], "é": "é", "\u00e4": None, "A": True},
    {"\U0001f600": "emoji key", "\uffff": "after every BMP letter in code points, before it in UTF-16"},
    {"text": 'line\u2028separator, tab\t, control \u0001, quote " backslash \\ slash /, \u007f'},
    [],
    {"nested": {"b": {"y": [{}], "x": []}, "a": 0}},
]


def _hex(value: bytes) -> str:
    return "0x" + value.hex()


@pytest.fixture(scope="module")
def page_module(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The page's module as the browser gets it: beside ``vendor/ethers.js``, the pinned copy."""
    folder = tmp_path_factory.mktemp("patient-page")
    (folder / "vendor").mkdir()
    shutil.copy(ETHERS_FILE, folder / "vendor" / "ethers.js")
    return Path(shutil.copy(STATIC_DIR / "receipts.js", folder / "receipts.js"))


def run_page(module: Path, request: dict[str, Any]) -> dict[str, Any]:
    completed = subprocess.run(
        ["node", str(ORACLE), str(module)],
        input=json.dumps(request),
        capture_output=True,
        text=True,
        cwd=paths.REPO,
        check=True,
        timeout=120,
    )
    answer: dict[str, Any] = json.loads(completed.stdout)
    return answer


def _tampered_proofs(proof: list[str], rng: random.Random) -> list[list[str]]:
    """A proof with a sibling flipped, truncated, extended, reordered, emptied (those that differ)."""
    flipped = [("0x" + ("%064x" % (int(p, 16) ^ 1))) if i == 0 else p for i, p in enumerate(proof)]
    cases = [flipped, proof[:-1], [*proof, _hex(rng.randbytes(32))], list(reversed(proof)), []]
    return [case for case in cases if case != proof]


def test_leaves_proofs_and_tampered_proofs_match_openzeppelin(page_module: Path) -> None:
    rng = random.Random(20261202)
    record_sets = [[(rng.randbytes(32), rng.randbytes(32)) for _ in range(size)] for size in SIZES]
    trees = [MerkleTree.from_records(records) for records in record_sets]
    tampered: list[list[Any]] = []
    for t, (records, tree) in enumerate(zip(record_sets, trees, strict=True)):
        for i, (salt, digest) in enumerate(records):
            proof = [_hex(node) for node in tree.proof(leaf_hash(salt, digest))]
            tampered.append([t, i, proof])  # untouched: both accept
            tampered += [[t, i, case] for case in _tampered_proofs(proof, rng)]
    answer = run_page(
        page_module,
        {
            "trees": [[[_hex(s), _hex(d)] for s, d in records] for records in record_sets],
            "tampered": tampered,
            "documents": [],
            "fits": [],
        },
    )
    for records, tree, built in zip(record_sets, trees, answer["trees"], strict=True):
        assert built["root"] == _hex(tree.root), len(records)
        assert built["pageLeaves"] == built["leaves"] == [_hex(leaf_hash(s, d)) for s, d in records]
        assert built["pageRoots"] == [built["root"]] * len(records)
    verdicts = [(v["oz"], v["page"]) for v in answer["tampered"]]
    differ = [case for case, (oz, page) in zip(tampered, verdicts, strict=True) if oz != page]
    assert not differ, differ
    assert sum(oz for oz, _ in verdicts) == sum(SIZES)  # exactly the untouched proofs verify


def test_canonical_json_and_digests_match_the_library(page_module: Path) -> None:
    answer = run_page(page_module, {"trees": [], "tampered": [], "documents": DOCUMENTS, "fits": []})
    for document, got in zip(DOCUMENTS, answer["documents"], strict=True):
        assert got["canonical"].encode("utf-8") == canonical_json(document), document
        assert got["digest"] == _hex(hashlib.sha256(canonical_json(document)).digest())


def test_proof_lengths_fit_as_in_the_library(page_module: Path) -> None:
    pairs = [[count, length] for count in range(0, 70) for length in range(0, 9)]
    answer = run_page(page_module, {"trees": [], "tampered": [], "documents": [], "fits": pairs})
    assert answer["fits"] == [proof_fits(count, length) for count, length in pairs]
