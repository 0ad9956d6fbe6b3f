"""``careledger-audit`` exit codes: 0 valid, 1 invalid, 2 could not check; archives and reports."""

from __future__ import annotations

import json
import tarfile
import zipfile
from pathlib import Path

from typer.testing import CliRunner

from ledger.auditor.cli import app
from tests.ledger.auditor.conftest import DOCUMENTS, Scenario

runner = CliRunner()


def write_receipts(scenario: Scenario, folder: Path, *, tamper_first: bool = False) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for index, receipt in enumerate(scenario.receipts):
        data = receipt.to_dict()
        if tamper_first and index == 0:
            data["salt"] = "0x" + "00" * 32
        (folder / f"rec{index}.receipt.json").write_text(json.dumps(data))
        (folder / f"rec{index}.bin").write_bytes(DOCUMENTS[index])


def test_verify_exit_codes(scenario: Scenario, tmp_path: Path) -> None:
    write_receipts(scenario, tmp_path / "r", tamper_first=True)
    chain = scenario.chain_options
    ok = runner.invoke(
        app,
        ["verify", "--receipt", str(tmp_path / "r/rec1.receipt.json"), "--file", str(tmp_path / "r/rec1.bin"), *chain],
    )
    assert ok.exit_code == 0 and "VALID" in ok.output, ok.output
    digest = scenario.receipts[1].digest.hex()
    assert (
        runner.invoke(
            app, ["verify", "--receipt", str(tmp_path / "r/rec1.receipt.json"), "--digest", "0x" + digest, *chain]
        ).exit_code
        == 0
    )
    bad = runner.invoke(app, ["verify", "--receipt", str(tmp_path / "r/rec0.receipt.json"), *chain])
    assert bad.exit_code == 1 and "step leaf failed" in bad.output, bad.output

    missing = runner.invoke(app, ["verify", "--receipt", str(tmp_path / "nope.json"), *chain])
    assert missing.exit_code == 2 and "could not check" in missing.output
    no_chain = runner.invoke(
        app, ["verify", "--receipt", str(tmp_path / "r/rec1.receipt.json"), "--data-dir", str(tmp_path / "empty")]
    )
    assert no_chain.exit_code == 2 and "deployment.json" in no_chain.output
    contract = scenario.receipts[0].contract
    rpc = ["--rpc-url", "http://127.0.0.1:9", "--record-anchor", contract, "--consent-registry", contract]
    unreachable = runner.invoke(app, ["verify", "--receipt", str(tmp_path / "r/rec1.receipt.json"), *rpc])
    assert unreachable.exit_code == 2 and "chain_unavailable" in unreachable.output, unreachable.output
    half = runner.invoke(
        app,
        [
            "verify",
            "--receipt",
            str(tmp_path / "r/rec1.receipt.json"),
            *chain,
            "--record-anchor",
            scenario.receipts[0].contract,
        ],
    )
    assert half.exit_code == 2
    bad_digest = runner.invoke(
        app, ["verify", "--receipt", str(tmp_path / "r/rec1.receipt.json"), *chain, "--digest", "0x12"]
    )
    assert bad_digest.exit_code == 2


def test_verify_receipts_reads_folders_zip_and_tarballs(scenario: Scenario, tmp_path: Path) -> None:
    folder = tmp_path / "r"
    write_receipts(scenario, folder, tamper_first=True)
    with zipfile.ZipFile(tmp_path / "r.zip", "w") as archive:
        for path in folder.iterdir():
            archive.write(path, f"inner/{path.name}")
    with tarfile.open(tmp_path / "r.tar.gz", "w:gz") as archive:
        archive.add(folder, "inner")
    for source in (folder, tmp_path / "r.zip", tmp_path / "r.tar.gz"):
        report_path = tmp_path / f"{source.name}.report.json"
        result = runner.invoke(
            app, ["verify-receipts", str(source), *scenario.chain_options, "--report", str(report_path)]
        )
        assert result.exit_code == 1, result.output
        report = json.loads(report_path.read_text())
        assert report["summary"]["receipts"] == 6 and report["summary"]["valid"] == 5
        assert report["summary"]["withDocuments"] == 6
        (failure,) = report["failures"]
        assert failure["file"].endswith("rec0.receipt.json") and failure["step"] == "leaf"
        assert failure["expected"] == "0x" + scenario.receipts[0].leaf.hex() and failure["actual"].startswith("0x")

    write_receipts(scenario, tmp_path / "clean")
    clean = runner.invoke(app, ["verify-receipts", str(tmp_path / "clean"), *scenario.chain_options])
    assert clean.exit_code == 0, clean.output
    assert runner.invoke(app, ["verify-receipts", str(tmp_path / "none"), *scenario.chain_options]).exit_code == 2
    (tmp_path / "empty").mkdir()
    assert runner.invoke(app, ["verify-receipts", str(tmp_path / "empty"), *scenario.chain_options]).exit_code == 2


def test_audit_of_the_scenario_is_clean(scenario: Scenario, tmp_path: Path) -> None:
    result = runner.invoke(app, ["audit", *scenario.chain_options, "--json", str(tmp_path / "a.json")])
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "a.json").read_text())
    roles = [(c["granted"], c["account"]) for c in report["anchorerRole"]]
    assert [granted for granted, _ in roles] == [True, False, True, False]  # revoked account, then the anchorer
    assert report["anchoring"]["records"] == len(DOCUMENTS) and report["anchoring"]["roots"] == 1
    explicit = runner.invoke(
        app,
        [
            "audit",
            "--rpc-url",
            "http://127.0.0.1:9",
            "--record-anchor",
            scenario.receipts[0].contract,
            "--consent-registry",
            scenario.receipts[0].contract,
        ],
    )
    assert explicit.exit_code == 2
