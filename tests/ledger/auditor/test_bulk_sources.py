"""Bulk verification reads folders and zip archives the fast way and still names every failure.

The zip reader cuts a chunk's members out of one large read; each member must come out exactly as
``zipfile`` gives it, and a damaged member (its bytes changed inside the archive, or its local
header naming another file) must be reported as unreadable, not trusted. The fast parser remembers
a batch's validated chain claim; lookalike numbers (``true`` for 1, ``7.0`` for 7) must not ride on it.
"""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path

import pytest

from ledger.auditor.bulk import verify_receipts
from ledger.auditor.chain_reader import ChainReader
from ledger.auditor.receipt_format import Failure, ReceiptClaim, parse_receipt
from ledger.auditor.verify import ChainFacts
from ledger.auditor.zip_members import ZipMembers
from ledger.exceptions import ChainUnavailableError, InvalidProofError
from tests.ledger.auditor.conftest import DOCUMENTS, Scenario


def _members(scenario: Scenario) -> dict[str, bytes]:
    """Every receipt of the scenario with its raw document; ``rec0``'s salt tampered (fails at leaf),
    ``rec1`` with a FHIR-like JSON document instead (fails at digest: not the anchored bytes)."""
    members: dict[str, bytes] = {}
    for index, receipt in enumerate(scenario.receipts):
        data = receipt.to_dict()
        if index == 0:
            data["salt"] = "0x" + "00" * 32
        members[f"inner/rec{index}.receipt.json"] = json.dumps(data).encode()
        if index == 1:
            members[f"inner/rec{index}.json"] = b'{"resourceType": "Observation", "id": "1"}'
        else:
            members[f"inner/rec{index}.bin"] = DOCUMENTS[index]
    return members


def _write_zip(path: Path, members: dict[str, bytes], compression: int) -> None:
    with zipfile.ZipFile(path, "w", compression) as archive:
        for name, data in members.items():
            archive.writestr(name, data)


def _corrupt_member(path: Path, name: str, new_name: bytes | None = None) -> None:
    """Flip a byte of a stored member's content in place, or rename it in its local header only."""
    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo(name)
    raw = bytearray(path.read_bytes())
    name_length = int.from_bytes(raw[info.header_offset + 26 : info.header_offset + 28], "little")
    extra_length = int.from_bytes(raw[info.header_offset + 28 : info.header_offset + 30], "little")
    if new_name is not None:
        assert len(new_name) == name_length
        raw[info.header_offset + 30 : info.header_offset + 30 + name_length] = new_name
    else:
        raw[info.header_offset + 30 + name_length + extra_length + 5] ^= 1
    path.write_bytes(bytes(raw))


@pytest.mark.parametrize("compression", [zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED], ids=["stored", "deflated"])
def test_zip_members_come_out_as_zipfile_reads_them(scenario: Scenario, tmp_path: Path, compression: int) -> None:
    members = _members(scenario)
    _write_zip(tmp_path / "r.zip", members, compression)
    reader = ZipMembers(str(tmp_path / "r.zip"))
    try:
        names = sorted(members)
        reader.load([*names[1::2], "inner/missing.bin"])  # part of them loaded, the rest read one by one
        assert sorted(reader._loaded) == names[1::2]  # cut from one read, not left to zipfile
        assert {name: reader.read(name) for name in names} == members
        with pytest.raises(KeyError):
            reader.read("inner/missing.bin")
    finally:
        reader.close()


@pytest.mark.parametrize("workers", [1, 2])
def test_damaged_zip_members_are_unreadable_and_the_others_checked(
    scenario: Scenario, reader: ChainReader, tmp_path: Path, workers: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("ledger.auditor.bulk.IN_PROCESS_BELOW", 0)  # workers even for a handful of receipts
    path = tmp_path / "r.zip"
    _write_zip(path, _members(scenario), zipfile.ZIP_STORED)
    _corrupt_member(path, "inner/rec2.receipt.json")  # content changed: CRC-32 no longer matches
    _corrupt_member(path, "inner/rec3.bin")  # the document: also unreadable, so is its receipt's check
    _corrupt_member(path, "inner/rec4.receipt.json", new_name=b"inner/recX.receipt.json")
    report = verify_receipts(path, ChainFacts(reader), workers=workers)
    failures = {name: failure for name, failure in report.failures}
    assert {name: f.step for name, f in failures.items()} == {
        "inner/rec0.receipt.json": "leaf",
        "inner/rec1.receipt.json": "digest",
        "inner/rec2.receipt.json": "parse",
        "inner/rec3.receipt.json": "parse",
        "inner/rec4.receipt.json": "parse",
    }
    for name in ("inner/rec2.receipt.json", "inner/rec3.receipt.json", "inner/rec4.receipt.json"):
        assert failures[name].detail.startswith("cannot read the file"), failures[name]
    assert report.total == 6 and report.valid == 1 and report.with_documents == 6


def test_folders_are_walked_without_following_links(scenario: Scenario, reader: ChainReader, tmp_path: Path) -> None:
    folder = tmp_path / "r"
    (folder / "a" / "b").mkdir(parents=True)
    (folder / "a" / "b" / "one.receipt.json").write_text(scenario.receipts[0].to_json())
    (folder / "a" / "b" / "one.bin").write_bytes(DOCUMENTS[0])
    (folder / "two.receipt.json").write_text(scenario.receipts[1].to_json())
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "three.receipt.json").write_text("not even JSON")
    os.symlink(elsewhere, folder / "link")
    report = verify_receipts(folder, ChainFacts(reader), workers=1)
    assert (report.total, report.valid, report.with_documents, report.failures) == (2, 2, 1, [])


@pytest.mark.parametrize(
    ("field", "value"), [("chainId", True), ("blockNumber", 7.0), ("leafCount", 6.0), ("anchoredAt", False)]
)
def test_a_remembered_claim_does_not_admit_lookalike_numbers(scenario: Scenario, field: str, value: object) -> None:
    data = {**scenario.receipts[0].to_dict(), "chainId": 1, "blockNumber": 7, "leafCount": 6, "anchoredAt": 0}
    parse_receipt(json.dumps(data))  # valid: its claim is now remembered
    assert parse_receipt(json.dumps(data)).claim.chain_id == 1
    with pytest.raises(InvalidProofError) as caught:
        parse_receipt(json.dumps({**data, field: value}))
    assert caught.value.details["field"] == field


def test_keys_in_any_order_parse_alike(scenario: Scenario) -> None:
    data = scenario.receipts[0].to_dict()
    reordered = dict(reversed(list(data.items())))
    assert parse_receipt(json.dumps(reordered)) == parse_receipt(json.dumps(data))
    with pytest.raises(InvalidProofError) as caught:  # a bad record field after a remembered claim is still named
        parse_receipt(json.dumps({**reordered, "salt": "0x" + "zz" * 32}))
    assert caught.value.details["field"] == "salt"


def test_hex_fields_that_only_line_up_together_are_refused(scenario: Scenario) -> None:
    """A 67-character leaf and a 65-character digest make the same joined text as two good fields."""
    data = scenario.receipts[0].to_dict()
    forged = {**data, "leaf": data["leaf"] + "0", "digest": "x" + data["digest"][2:]}
    assert len("".join((forged["leaf"], forged["digest"]))) == 2 * 66
    with pytest.raises(InvalidProofError) as caught:
        parse_receipt(json.dumps(forged))
    assert caught.value.details["field"] == "leaf"


def test_the_embedded_reader_names_its_caller_once(scenario: Scenario, reader: ChainReader) -> None:
    """Calls come from the account web3 would pick before every call (eth-tester's first)."""
    if scenario.rpc_url is not None:
        pytest.skip("a JSON-RPC node picks its own caller")
    w3 = reader.chain.w3
    assert w3.eth.default_account == w3.eth.accounts[0]


@pytest.mark.parametrize(
    ("field", "value"),
    [("root", ["0x" + "11" * 32]), ("contract", {"address": "0x0"}), ("chainId", [1]), ("leafCount", {"n": 6})],
)
def test_containers_in_claim_fields_are_named_not_crashed_on(scenario: Scenario, field: str, value: object) -> None:
    data = scenario.receipts[0].to_dict()
    parse_receipt(json.dumps(data))
    with pytest.raises(InvalidProofError) as caught:
        parse_receipt(json.dumps({**data, field: value}))
    assert caught.value.details["field"] == field


def test_a_chain_error_while_workers_run_stops_the_run(
    scenario: Scenario, reader: ChainReader, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Claims are checked on chain while the workers still check receipts: a failing read ends it all."""

    class Unreachable(ChainFacts):
        def first_failure(self, claim: ReceiptClaim) -> Failure | None:
            raise ChainUnavailableError("the node stopped answering")

    monkeypatch.setattr("ledger.auditor.bulk.IN_PROCESS_BELOW", 0)
    folder = tmp_path / "r"
    folder.mkdir()
    for index in range(60):
        (folder / f"{index:03d}.receipt.json").write_text(scenario.receipts[index % 6].to_json())
    with pytest.raises(ChainUnavailableError):
        verify_receipts(folder, Unreachable(reader), workers=2)
