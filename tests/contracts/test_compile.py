"""The committed contract artifacts are exactly what the sources compile to."""

from __future__ import annotations

import json
import subprocess
import sys

from ledger.chain.contracts import CONSENT_REGISTRY, RECORD_ANCHOR, load_artifact
from tests.support import paths

ROOT = paths.REPO


def test_committed_artifacts_match_a_fresh_compile() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "compile_contracts.py"), "--check"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr


def test_artifacts_pin_compiler_settings_and_sources() -> None:
    for name in (RECORD_ANCHOR, CONSENT_REGISTRY):
        metadata = json.loads(load_artifact(name).metadata)
        assert metadata["compiler"]["version"] == "0.8.28+commit.7893614a"
        assert metadata["settings"]["optimizer"] == {"enabled": True, "runs": 10_000}
        assert metadata["settings"]["evmVersion"] == "cancun"
        sources = metadata["sources"]
        assert f"contracts/{name}.sol" in sources
        assert any(path.startswith("@openzeppelin/contracts/") for path in sources)
        assert all("keccak256" in source for source in sources.values())
