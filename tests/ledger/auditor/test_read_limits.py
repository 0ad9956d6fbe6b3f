"""Per-member and total limits, and tar members that are not regular files, on every kind of source.

A receipt over 64 KiB, or a document over ``--max-document-bytes``, is refused unread and its
receipt reported unchecked (with the member and the reason); a source holding more than
``--max-total-bytes`` stops the run (could not check). A tarball's links, devices and FIFOs are
refused by kind, and the headers ``tarfile`` would read whole (PAX, long names, sparse maps) are
refused past their limit before they are read.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import shutil
import subprocess
import tarfile
import zipfile
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from ledger.auditor.bulk import verify_receipts
from ledger.auditor.cli import app
from ledger.auditor.read_limits import RECEIPT_LIMIT, ReadLimits, read_listed_file, read_regular
from ledger.auditor.tar_members import HEADER_LIMIT, read_tar
from ledger.exceptions import InputError, NotRegularFileError, PayloadTooLargeError
from tests.ledger.auditor.conftest import DOCUMENTS, Scenario

runner = CliRunner()


def _members(scenario: Scenario) -> dict[str, bytes]:
    """Three receipts with their documents; ``big`` a receipt padded past 64 KiB (still valid JSON)."""
    members: dict[str, bytes] = {}
    for index in range(3):
        members[f"r/rec{index}.receipt.json"] = scenario.receipts[index].to_json().encode()
        members[f"r/rec{index}.bin"] = DOCUMENTS[index]
    members["r/big.receipt.json"] = scenario.receipts[3].to_json().encode() + b" " * RECEIPT_LIMIT
    return members


def _write(kind: str, path: Path, members: dict[str, bytes]) -> Path:
    if kind == "dir":
        for name, data in members.items():
            (path / name).parent.mkdir(parents=True, exist_ok=True)
            (path / name).write_bytes(data)
        return path
    if kind == "zip":
        path = path.with_suffix(".zip")
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
            for name, data in members.items():
                archive.writestr(name, data)
        return path
    path = path.with_suffix(".tgz")
    with tarfile.open(path, "w:gz") as archive:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return path


def _unchecked(report: Any) -> dict[str, tuple[str, str]]:
    return {u.file: (u.member, u.code) for u in report.unchecked}


@pytest.mark.parametrize("kind", ["dir", "zip", "tar"])
def test_members_over_their_limits_are_unchecked(scenario: Scenario, tmp_path: Path, kind: str) -> None:
    source = _write(kind, tmp_path / "r", _members(scenario))
    report = verify_receipts(source, None, workers=1, limits=ReadLimits(document_bytes=len(DOCUMENTS[1]) - 1))
    assert _unchecked(report) == {
        "r/big.receipt.json": ("r/big.receipt.json", "payload_too_large"),
        **{f"r/rec{i}.receipt.json": (f"r/rec{i}.bin", "payload_too_large") for i in range(3)},
    }
    assert (report.total, report.valid, report.failures) == (4, 0, [])
    within = verify_receipts(source, None, workers=1)
    assert (_unchecked(within), within.valid) == (
        {"r/big.receipt.json": ("r/big.receipt.json", "payload_too_large")},
        3,
    )


@pytest.mark.parametrize("kind", ["dir", "zip", "tar"])
def test_a_source_over_the_total_stops_the_run(scenario: Scenario, tmp_path: Path, kind: str) -> None:
    members = _members(scenario)
    del members["r/big.receipt.json"]
    source = _write(kind, tmp_path / "r", members)
    total = sum(map(len, members.values()))
    needed = len(gzip.decompress(source.read_bytes())) if kind == "tar" else total  # a tarball's headers count too
    assert verify_receipts(source, None, workers=1, limits=ReadLimits(total_bytes=needed)).valid == 3
    with pytest.raises(PayloadTooLargeError, match="--max-total-bytes"):
        verify_receipts(source, None, workers=1, limits=ReadLimits(total_bytes=total - 1))


def test_the_limits_are_options_and_limits_are_could_not_check(scenario: Scenario, tmp_path: Path) -> None:
    members = _members(scenario)
    del members["r/big.receipt.json"]
    source = _write("zip", tmp_path / "r", members)
    chain = scenario.chain_options
    over = runner.invoke(app, ["verify-receipts", str(source), *chain, "--max-total-bytes", "1K", "--output", "json"])
    assert over.exit_code == 2 and json.loads(over.stdout)["code"] == "payload_too_large", over.output
    assert "could not check (payload_too_large)" in over.stderr
    small = runner.invoke(
        app, ["verify-receipts", str(source), *chain, "--max-document-bytes", "10", "--output", "json"]
    )
    assert small.exit_code == 2, small.output
    assert {u["member"] for u in json.loads(small.stdout)["unchecked"]} == {f"r/rec{i}.bin" for i in range(3)}
    (tmp_path / "doc.bin").write_bytes(DOCUMENTS[0])
    (tmp_path / "r.json").write_text(scenario.receipts[0].to_json())
    single = ["verify", "--receipt", str(tmp_path / "r.json"), "--file", str(tmp_path / "doc.bin"), *chain]
    assert runner.invoke(app, single).exit_code == 0
    refused = runner.invoke(app, [*single, "--max-document-bytes", "10"])
    assert refused.exit_code == 2 and "payload_too_large" in refused.stderr, refused.output
    bad = runner.invoke(app, ["verify-receipts", str(source), *chain, "--max-total-bytes", "lots"])
    assert bad.exit_code == 2 and "byte count" in bad.stderr


def test_tar_members_that_are_not_regular_files_are_refused_by_kind(scenario: Scenario, tmp_path: Path) -> None:
    path = tmp_path / "r.tar"
    with tarfile.open(path, "w") as archive:
        for name, kind in [
            ("link", tarfile.SYMTYPE),
            ("hard", tarfile.LNKTYPE),
            ("char", tarfile.CHRTYPE),
            ("block", tarfile.BLKTYPE),
            ("fifo", tarfile.FIFOTYPE),
        ]:
            info = tarfile.TarInfo(f"{name}.receipt.json")
            info.type, info.linkname = kind, "/dev/zero" if kind in (tarfile.SYMTYPE, tarfile.LNKTYPE) else ""
            archive.addfile(info)
        good = tarfile.TarInfo("good.receipt.json")
        data = scenario.receipts[0].to_json().encode()
        good.size = len(data)
        archive.addfile(good, io.BytesIO(data))
    report = verify_receipts(path, None, workers=1)
    reasons = {u.file: u.reason for u in report.unchecked}
    assert {u.code for u in report.unchecked} == {"not_a_regular_file"} and report.valid == 1
    assert {name: reason.split(" is ", 1)[1] for name, reason in reasons.items()} == {
        "link.receipt.json": "a symbolic link: not read",
        "hard.receipt.json": "a hard link: not read",
        "char.receipt.json": "a character device: not read",
        "block.receipt.json": "a block device: not read",
        "fifo.receipt.json": "a FIFO: not read",
    }


def _tar_bytes(members: dict[str, bytes], pax_headers: dict[str, str] | None = None) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size, info.pax_headers = len(data), dict(pax_headers or {})
            archive.addfile(info, io.BytesIO(data))
    return out.getvalue()


def test_oversized_tar_headers_are_refused_before_they_are_read(scenario: Scenario, tmp_path: Path) -> None:
    members = {"rec.receipt.json": scenario.receipts[0].to_json().encode()}
    (tmp_path / "ok.tar").write_bytes(_tar_bytes(members, {"comment": "x" * 100}))
    assert verify_receipts(tmp_path / "ok.tar", None, workers=1).valid == 1
    (tmp_path / "pax.tar").write_bytes(_tar_bytes(members, {"comment": "x" * (8 << 20)}))
    half = tarfile.TarInfo._create_pax_generic_header({"comment": "x" * (HEADER_LIMIT // 2)}, tarfile.XGLTYPE, "utf-8")
    (tmp_path / "global.tar").write_bytes(half * 3 + _tar_bytes(members))  # three global headers: over it together
    for case in ("pax", "global"):
        with pytest.raises(PayloadTooLargeError, match="extended header"):
            verify_receipts(tmp_path / f"{case}.tar", None, workers=1)


def test_a_sparse_tar_member_is_refused(tmp_path: Path) -> None:
    tar = shutil.which("tar")
    assert tar is not None
    (tmp_path / "s").mkdir()
    with open(tmp_path / "s/holes.bin", "wb") as sparse:
        sparse.truncate(1 << 20)
    subprocess.run(
        [tar, "--format=gnu", "-S", "-cf", str(tmp_path / "s.tar"), "holes.bin"], cwd=tmp_path / "s", check=True
    )
    with tarfile.open(tmp_path / "s.tar") as archive:
        assert archive.getmembers()[0].type == tarfile.GNUTYPE_SPARSE
    with pytest.raises(InputError, match="sparse"):
        verify_receipts(tmp_path / "s.tar", None, workers=1)


def test_a_tarball_keeps_nothing_of_members_no_receipt_needs(scenario: Scenario, tmp_path: Path) -> None:
    """Headers of other names (a million would fit in a few MiB of gzip) are passed over, not remembered."""
    path = tmp_path / "junk.tar.gz"
    data = scenario.receipts[0].to_json().encode()
    with tarfile.open(path, "w:gz") as archive:
        for index in range(2000):
            info = tarfile.TarInfo(f"junk/{index}.txt")
            info.type = tarfile.FIFOTYPE if index % 2 else tarfile.REGTYPE
            archive.addfile(info, io.BytesIO(b""))
        info = tarfile.TarInfo("good.receipt.json")
        info.size = len(data)
        archive.addfile(info, io.BytesIO(data))
    kept = read_tar(
        path, ReadLimits(), is_receipt=lambda n: n.endswith(".receipt.json"), digest=lambda n, d: d, wanted=(".json",)
    )
    assert (kept.names, kept.receipts, kept.errors) == (["good.receipt.json"], {"good.receipt.json": data}, {})


def test_a_file_replaced_after_the_listing_neither_blocks_nor_floods(tmp_path: Path) -> None:
    """Receipts are read without an fstat (their listing said regular); what replaced one since is
    still opened without following, without blocking, and read no further than the limit."""
    os.mkfifo(tmp_path / "fifo")
    (tmp_path / "link").symlink_to("/dev/zero")
    assert read_listed_file(str(tmp_path / "fifo"), 100, "the receipt", None) == b""  # no writer: empty, at once
    with pytest.raises(NotRegularFileError, match="symbolic link"):
        read_listed_file(str(tmp_path / "link"), 100, "the receipt", None)
    with pytest.raises(PayloadTooLargeError, match="more than 100 bytes"):
        read_listed_file("/dev/zero", 100, "the receipt", None)
    with pytest.raises(NotRegularFileError, match="a character device"):
        read_regular("/dev/zero", 100, "the document")
