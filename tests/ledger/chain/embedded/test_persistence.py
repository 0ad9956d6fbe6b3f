"""The embedded chain keeps everything it acknowledged, across restarts and SIGKILL."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ledger.records.hashing import digest_bytes, new_salt
from ledger.records.receipts import Receipt, anchor_batch, verify_receipt
from ledger.runtime import open_ledger
from tests.conftest import ledger_settings
from tests.support import paths

pytestmark = pytest.mark.embedded_only

CHILD = paths.TESTS / "processes" / "anchor_and_consent.py"
ROOT = paths.REPO


def test_restart_sees_deployment_receipts_and_history(tmp_path: Path) -> None:
    settings = ledger_settings(tmp_path / "data")
    with open_ledger(settings) as ledger:
        deployment = ledger.deployment
        receipts = anchor_batch(
            ledger.anchors, [(new_salt(), digest_bytes(b"%d" % i)) for i in range(5)], ledger.anchorer()
        )
        head = ledger.chain.block_number()
    with open_ledger(settings) as reopened:
        assert reopened.deployment == deployment  # not deployed a second time
        assert reopened.chain.block_number() == head
        for receipt in receipts:
            assert verify_receipt(receipt, anchors=reopened.anchors).valid
        # the reopened chain keeps mining on top of the old head
        anchor_batch(reopened.anchors, [(new_salt(), digest_bytes(b"more"))], reopened.anchorer())
        assert reopened.chain.block_number() == head + 1


@pytest.mark.slow
@pytest.mark.parametrize("kill_after_lines", [4, 17])
def test_sigkill_loses_nothing_acknowledged(tmp_path: Path, kill_after_lines: int) -> None:
    data_dir = tmp_path / "data"
    child = subprocess.Popen(
        [sys.executable, str(CHILD), str(data_dir)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert child.stdout is not None
    lines: list[str] = []
    deadline = time.monotonic() + 120
    try:
        while len(lines) < kill_after_lines:
            line = child.stdout.readline()
            if not line:
                pytest.fail(f"child exited early: {child.stderr.read() if child.stderr else ''}")
            lines.append(line)
            assert time.monotonic() < deadline, "child too slow"
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
    assert child.returncode == -signal.SIGKILL
    # anything printed after our last read was acknowledged too
    lines += child.stdout.read().splitlines()
    facts = [json.loads(line) for line in lines if line.strip()]

    with open_ledger(ledger_settings(data_dir)) as reopened:
        receipts = [Receipt.parse(f["receipt"]) for f in facts if "receipt" in f]
        consents = [f["consent"] for f in facts if "consent" in f]
        assert receipts, "the child acknowledged no receipt"
        for receipt in receipts:
            verification = verify_receipt(receipt, anchors=reopened.anchors)
            assert verification.valid, verification.failures
        for consent in consents:
            assert reopened.consents.is_permitted(consent["patient"], consent["grantee"], "Observation", "TREAT")
            kinds = [e.kind for e in reopened.consents.history(consent["patient"])]
            assert kinds == ["ConsentGranted"]
