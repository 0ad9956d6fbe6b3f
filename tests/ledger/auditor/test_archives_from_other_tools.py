"""Archives as other tools write them are read alike: Info-ZIP ``zip`` (deflated, stored, data
descriptors, zip64, streamed through a pipe), ``7z`` (deflate, bzip2, and a 7-Zip tarball), and GNU
``tar`` (gzip, xz, PAX and GNU formats). Every receipt is checked, with its document, and valid.

The tools are Debian's ``zip``, ``p7zip-full`` and ``tar``; ``make test`` installs them (its
``archivers`` prerequisite).
"""

from __future__ import annotations

import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest

from ledger.auditor.bulk import verify_receipts
from ledger.auditor.chain_reader import ChainReader
from ledger.auditor.verify import ChainFacts
from ledger.auditor.zip_members import ZipMembers
from tests.ledger.auditor.conftest import DOCUMENTS, Scenario

FILES = ["r/a/rec0.receipt.json", "r/a/rec0.bin", "r/rec1.receipt.json", "r/rec1.bin", "r/rec2.receipt.json"]

ARCHIVES: dict[str, list[str]] = {
    "infozip-deflated.zip": ["zip", "-q", "-r", "{out}", "r"],
    "infozip-stored.zip": ["zip", "-q", "-0", "-r", "{out}", "r"],
    "infozip-data-descriptors.zip": ["zip", "-q", "-fd", "-r", "{out}", "r"],
    "infozip-zip64.zip": ["zip", "-q", "-fz", "-r", "{out}", "r"],
    "7z-deflate.zip": ["7z", "a", "-tzip", "-bd", "-bso0", "{out}", "r"],
    "7z-bzip2.zip": ["7z", "a", "-tzip", "-mm=BZip2", "-bd", "-bso0", "{out}", "r"],
    "7z.tar": ["7z", "a", "-ttar", "-bd", "-bso0", "{out}", "r"],
    "gnu-pax.tar.gz": ["tar", "--format=pax", "-czf", "{out}", "r"],
    "gnu-gnu.tgz": ["tar", "--format=gnu", "-czf", "{out}", "r"],
    "gnu-xz.tar": ["tar", "-cJf", "{out}", "r"],
}


def _tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is not installed: `make archivers` installs zip, 7z and tar (as make test does)")
    return found


@pytest.fixture(scope="module")
def folder(scenario: Scenario, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("tools")
    (root / "r/a").mkdir(parents=True)
    (root / FILES[0]).write_text(scenario.receipts[0].to_json())
    (root / FILES[1]).write_bytes(DOCUMENTS[0])
    (root / FILES[2]).write_text(scenario.receipts[1].to_json())
    (root / FILES[3]).write_bytes(DOCUMENTS[1])
    (root / FILES[4]).write_text(scenario.receipts[2].to_json())
    return root


def _build(folder: Path, name: str) -> Path:
    out = folder / name
    if not out.exists():
        command = [folder.as_posix() + "/" + name if part == "{out}" else part for part in ARCHIVES[name]]
        subprocess.run([_tool(command[0]), *command[1:]], cwd=folder, check=True, timeout=60)
    return out


@pytest.mark.parametrize("name", sorted(ARCHIVES))
def test_archives_from_other_tools_verify(folder: Path, reader: ChainReader, name: str) -> None:
    report = verify_receipts(_build(folder, name), ChainFacts(reader), workers=1)
    assert (report.total, report.valid, report.with_documents) == (3, 3, 2), report.to_json()
    assert report.failures == [] and report.unchecked == []


def test_a_zip_streamed_through_a_pipe_verifies(folder: Path, reader: ChainReader) -> None:
    """``zip -`` writing to a pipe cannot seek back: every member gets a data descriptor."""
    streamed = subprocess.run(
        [_tool("zip"), "-q", "-", *FILES], cwd=folder, check=True, timeout=60, stdout=subprocess.PIPE
    ).stdout
    (folder / "piped.zip").write_bytes(streamed)
    members = ZipMembers(str(folder / "piped.zip"))
    try:
        assert all(info.flag_bits & 0x08 for info in members._directory.values()), "no data descriptors"
    finally:
        members.close()
    report = verify_receipts(folder / "piped.zip", ChainFacts(reader), workers=1)
    assert (report.total, report.valid, report.with_documents) == (3, 3, 2), report.to_json()


@pytest.mark.parametrize("name", [n for n in sorted(ARCHIVES) if n.endswith(".zip")])
def test_each_member_comes_out_as_zipfile_reads_it(folder: Path, name: str) -> None:
    path = _build(folder, name)
    with zipfile.ZipFile(path) as archive:
        expected = {info.filename: archive.read(info) for info in archive.infolist() if not info.is_dir()}
    members = ZipMembers(str(path))
    try:
        members.load(expected)
        assert {n: members.read(n) for n in expected} == expected
    finally:
        members.close()
    assert expected["r/rec1.bin"] == DOCUMENTS[1]
