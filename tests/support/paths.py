"""Where things are in the checkout, for tests at any depth."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
TESTS = REPO / "tests"
TESTDATA = TESTS / "testdata"
TEST_ARTIFACTS = TESTS / "artifacts"
"""Compiled test-only contracts (``contracts/test/``)."""
