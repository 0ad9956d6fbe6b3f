"""The auditor reads archives made by the party it audits: hostile input, each case as it was met.

Bombs (a tarball or zip holding a member far larger than the archive, or a zip member inflating
past its declared size) run in a separate process whose peak memory and file writes are measured:
each must stay within the same run on the archive without the bomb plus :data:`MEMORY_SLACK`, and
write nothing to disk. Links, FIFOs and devices are refused by name within a deadline. Member names
reach the terminal escaped, human text goes to stderr and machine output alone to stdout.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import tarfile
import zipfile
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from api.cli import app as careledger_app
from ledger.auditor.cli import app
from tests.ledger.auditor.conftest import DOCUMENTS, Scenario
from tests.support.measured_run import MeasuredRun, auditor_command, measured_run

BOMB_BYTES = 512 << 20
"""A member's size in the bomb archives (they themselves are under 1 MiB)."""
MEMORY_SLACK = 64 << 20
"""Peak memory a bomb may add to the same run without it."""
DEADLINE = 120.0
"""Seconds a run may take before it counts as hanging (a normal run takes a few)."""
ESC = b"\x1b"
runner = CliRunner()


class _Zeros(io.RawIOBase):
    """``size`` zero bytes, read in pieces (never held whole)."""

    def __init__(self, size: int) -> None:
        self._left = size

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        count = self._left if size < 0 else min(size, self._left)
        self._left -= count
        return bytes(count)


def _receipt(scenario: Scenario, index: int = 0) -> bytes:
    return scenario.receipts[index].to_json().encode()


def _tar(path: Path, members: dict[str, bytes], zeros: dict[str, int] | None = None) -> None:
    with tarfile.open(path, "w:gz", compresslevel=9) as archive:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
        for name, size in (zeros or {}).items():
            info = tarfile.TarInfo(name)
            info.size = size
            archive.addfile(info, _Zeros(size))


def _zip(path: Path, members: dict[str, bytes], zeros: dict[str, int] | None = None) -> None:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
        for name, size in (zeros or {}).items():
            with archive.open(name, "w", force_zip64=size >= 1 << 31) as member:
                for _ in range(size >> 20):
                    member.write(bytes(1 << 20))


def _audit(scenario: Scenario, source: Path, report: Path, *extra: str) -> MeasuredRun:
    command = auditor_command("verify-receipts", str(source), *scenario.chain_options, "--report", str(report), *extra)
    return measured_run(command, timeout=DEADLINE)


def _unchecked(report: Path) -> dict[str, dict[str, Any]]:
    return {entry["file"]: entry for entry in json.loads(report.read_text())["unchecked"]}


# --- bombs ---------------------------------------------------------------------------------------


def test_a_tar_bomb_is_refused_unread_in_bounded_memory(scenario: Scenario, tmp_path: Path) -> None:
    members = {"r/rec.receipt.json": _receipt(scenario)}
    _tar(tmp_path / "clean.tar.gz", members)
    _tar(tmp_path / "bomb.tar.gz", members, {"r/rec.bin": BOMB_BYTES})
    assert (tmp_path / "bomb.tar.gz").stat().st_size < 1 << 20
    clean = _audit(scenario, tmp_path / "clean.tar.gz", tmp_path / "clean.json")
    bomb = _audit(scenario, tmp_path / "bomb.tar.gz", tmp_path / "bomb.json")
    assert clean.returncode == 0, clean.stderr
    assert bomb.peak_bytes <= clean.peak_bytes + MEMORY_SLACK, (bomb.peak_bytes >> 20, clean.peak_bytes >> 20)
    assert bomb.written_bytes < 1 << 20, "the tarball was unpacked to disk"
    assert bomb.returncode == 2, bomb.stderr  # its document could not be checked
    entry = _unchecked(tmp_path / "bomb.json")["r/rec.receipt.json"]
    assert (entry["member"], entry["code"]) == ("r/rec.bin", "payload_too_large"), entry


def test_a_zip_bomb_is_refused_unread_in_bounded_memory(scenario: Scenario, tmp_path: Path) -> None:
    members = {"r/rec.receipt.json": _receipt(scenario)}
    _zip(tmp_path / "clean.zip", members)
    _zip(tmp_path / "bomb.zip", members, {"r/rec.bin": BOMB_BYTES})
    assert (tmp_path / "bomb.zip").stat().st_size < 1 << 20
    clean = _audit(scenario, tmp_path / "clean.zip", tmp_path / "clean.json")
    bomb = _audit(scenario, tmp_path / "bomb.zip", tmp_path / "bomb.json")
    assert clean.returncode == 0, clean.stderr
    assert bomb.peak_bytes <= clean.peak_bytes + MEMORY_SLACK, (bomb.peak_bytes >> 20, clean.peak_bytes >> 20)
    assert bomb.returncode == 2, bomb.stderr
    entry = _unchecked(tmp_path / "bomb.json")["r/rec.receipt.json"]
    assert (entry["member"], entry["code"]) == ("r/rec.bin", "payload_too_large"), entry


def _understate_size(path: Path, name: str, declared: int) -> None:
    """Make a zip member's local header and directory entry claim ``declared`` bytes uncompressed."""
    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo(name)
    raw = bytearray(path.read_bytes())
    assert raw[info.header_offset : info.header_offset + 4] == b"PK\x03\x04"
    raw[info.header_offset + 22 : info.header_offset + 26] = declared.to_bytes(4, "little")
    central = raw.rindex(b"PK\x01\x02")
    while int.from_bytes(raw[central + 42 : central + 46], "little") != info.header_offset:
        central = raw.rindex(b"PK\x01\x02", 0, central)
    raw[central + 24 : central + 28] = declared.to_bytes(4, "little")
    path.write_bytes(bytes(raw))


def test_a_zip_member_inflating_past_its_declared_size_is_cut_off(scenario: Scenario, tmp_path: Path) -> None:
    members = {"r/rec.receipt.json": _receipt(scenario)}
    _zip(tmp_path / "clean.zip", members)
    _zip(tmp_path / "liar.zip", members, {"r/rec.bin": BOMB_BYTES})
    _understate_size(tmp_path / "liar.zip", "r/rec.bin", 1000)
    with zipfile.ZipFile(tmp_path / "liar.zip") as archive:
        assert archive.getinfo("r/rec.bin").file_size == 1000
    clean = _audit(scenario, tmp_path / "clean.zip", tmp_path / "clean.json")
    liar = _audit(scenario, tmp_path / "liar.zip", tmp_path / "liar.json")
    assert liar.peak_bytes <= clean.peak_bytes + MEMORY_SLACK, (liar.peak_bytes >> 20, clean.peak_bytes >> 20)
    assert liar.returncode == 1, liar.stderr  # 1,000 bytes with another CRC-32: a damaged member
    (failure,) = json.loads((tmp_path / "liar.json").read_text())["failures"]
    assert failure["file"] == "r/rec.receipt.json" and failure["detail"].startswith("cannot read the file")


# --- links, FIFOs, devices -----------------------------------------------------------------------


def _folder(scenario: Scenario, folder: Path) -> None:
    folder.mkdir()
    for index in range(3):
        (folder / f"rec{index}.receipt.json").write_bytes(_receipt(scenario, index))
        (folder / f"rec{index}.bin").write_bytes(DOCUMENTS[index])


def test_a_symlink_to_dev_zero_is_refused_by_name(scenario: Scenario, tmp_path: Path) -> None:
    _folder(scenario, tmp_path / "r")
    (tmp_path / "r/rec1.receipt.json").unlink()
    (tmp_path / "r/rec1.receipt.json").symlink_to("/dev/zero")
    (tmp_path / "r/rec2.bin").unlink()
    (tmp_path / "r/rec2.bin").symlink_to("/dev/zero")
    run = _audit(scenario, tmp_path / "r", tmp_path / "report.json")
    assert run.returncode == 2, run.stderr
    unchecked = _unchecked(tmp_path / "report.json")
    assert {name: (e["member"], e["code"]) for name, e in unchecked.items()} == {
        "rec1.receipt.json": ("rec1.receipt.json", "not_a_regular_file"),
        "rec2.receipt.json": ("rec2.bin", "not_a_regular_file"),
    }
    assert "symbolic link" in unchecked["rec1.receipt.json"]["reason"]
    assert json.loads((tmp_path / "report.json").read_text())["summary"]["valid"] == 1


def test_a_fifo_is_refused_by_name_without_hanging(scenario: Scenario, tmp_path: Path) -> None:
    _folder(scenario, tmp_path / "r")
    (tmp_path / "r/rec1.receipt.json").unlink()
    os.mkfifo(tmp_path / "r/rec1.receipt.json")
    run = _audit(scenario, tmp_path / "r", tmp_path / "report.json")
    assert run.returncode == 2, run.stderr
    entry = _unchecked(tmp_path / "report.json")["rec1.receipt.json"]
    assert entry["code"] == "not_a_regular_file" and "FIFO" in entry["reason"], entry
    for source in ("fifo.zip", "fifo.tar.gz"):
        os.mkfifo(tmp_path / source)
        whole = measured_run(
            auditor_command("verify-receipts", str(tmp_path / source), *scenario.chain_options), timeout=DEADLINE
        )
        assert whole.returncode == 2 and b"FIFO" in whole.stderr, whole.stderr
    single = measured_run(
        auditor_command("verify", "--receipt", str(tmp_path / "r/rec1.receipt.json"), *scenario.chain_options),
        timeout=DEADLINE,
    )
    assert single.returncode == 2 and b"FIFO" in single.stderr, single.stderr


# --- what reaches the terminal -------------------------------------------------------------------

HOSTILE_NAME = "\x1b[2J\x1b[1;32mVALID\x1b[0m [bold green]VALID[/bold green]\u202e.receipt.json"


def test_member_names_reach_the_terminal_escaped(scenario: Scenario, tmp_path: Path) -> None:
    """A name that would clear the screen and paint a green VALID is shown as its escapes."""
    with zipfile.ZipFile(tmp_path / "r.zip", "w") as archive:
        archive.writestr(HOSTILE_NAME, b"not a receipt")
        archive.writestr("ok.receipt.json", _receipt(scenario))
    run = measured_run(
        auditor_command("verify-receipts", str(tmp_path / "r.zip"), *scenario.chain_options),
        timeout=DEADLINE,
        env={"COLUMNS": "400"},  # the name on one line of the table
    )
    assert run.returncode == 1, run.stderr
    assert ESC not in run.stdout and ESC not in run.stderr
    assert "\u202e".encode() not in run.stderr
    shown = run.stderr.decode()
    assert "\\x1b[2J" in shown and "[bold green]VALID[/bold green]" in shown and "\\u202e" in shown, shown


def test_human_text_goes_to_stderr_only(scenario: Scenario, tmp_path: Path) -> None:
    missing = runner.invoke(app, ["verify", "--receipt", str(tmp_path / "nope.json"), *scenario.chain_options])
    assert missing.exit_code == 2
    assert missing.stdout == "" and "could not check" in missing.stderr, (missing.stdout, missing.stderr)
    (tmp_path / "r.json").write_bytes(_receipt(scenario))
    valid = runner.invoke(app, ["verify", "--receipt", str(tmp_path / "r.json"), *scenario.chain_options])
    assert valid.exit_code == 0 and valid.stdout == "" and "VALID" in valid.stderr, valid.output


def test_output_json_on_every_command(scenario: Scenario, tmp_path: Path) -> None:
    _folder(scenario, tmp_path / "r")
    chain = [*scenario.chain_options, "--output", "json"]
    runs = {
        "verify": runner.invoke(app, ["verify", "--receipt", str(tmp_path / "r/rec0.receipt.json"), *chain]),
        "verify-receipts": runner.invoke(app, ["verify-receipts", str(tmp_path / "r"), *chain]),
        "audit": runner.invoke(app, ["audit", *chain]),
        "unchecked": runner.invoke(app, ["verify", "--receipt", str(tmp_path / "nope.json"), *chain]),
    }
    documents = {name: json.loads(run.stdout) for name, run in runs.items()}  # stdout is JSON and only JSON
    assert [run.exit_code for run in runs.values()] == [0, 0, 0, 2], {n: r.output for n, r in runs.items()}
    assert documents["verify"]["valid"] is True
    assert documents["verify-receipts"]["summary"]["valid"] == 3
    assert documents["audit"]["verdict"] == "clean"
    assert documents["unchecked"]["verdict"] == "unchecked" and documents["unchecked"]["code"] == "not_found"


def test_version_on_both_commands() -> None:
    expected = version("careledger")
    for command in (app, careledger_app):
        result = runner.invoke(command, ["--version"])
        assert result.exit_code == 0 and result.stdout.strip().endswith(expected), result.output


def test_running_out_of_memory_is_could_not_check(scenario: Scenario, tmp_path: Path) -> None:
    """A JSON document within the limits given, whose parse needs more memory than there is."""
    document = b"[" + b"0," * (150 << 20) + b"0]"
    with tarfile.open(tmp_path / "r.tar.gz", "w:gz", compresslevel=1) as archive:
        for name, data in {"rec.receipt.json": _receipt(scenario), "rec.json": document}.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    del document
    command = auditor_command(
        "verify-receipts", str(tmp_path / "r.tar.gz"), *scenario.chain_options, "--max-document-bytes", "1G"
    )
    try:
        run = measured_run(command, timeout=DEADLINE, address_space=2 << 30)
    except subprocess.TimeoutExpired:  # pragma: no cover - shown as a failure with its reason
        pytest.fail("the run hung")
    assert run.returncode == 2, run.stderr
    assert b"could not check" in run.stderr and b"memory" in run.stderr, run.stderr
    assert b"Traceback" not in run.stderr
