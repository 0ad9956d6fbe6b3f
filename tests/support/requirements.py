"""What a test needs from the machine (a PostgreSQL install, Chromium, root to mount a tmpfs), and
what happens when it is missing: a skip on a developer's machine, a failure under CI.

CI runs with ``CI`` set (``.ci/run`` is called with ``CI=true``); there every requirement is
installed by ``make test``, so a missing one means the run would silently test less than it claims.
"""

from __future__ import annotations

import os
from typing import NoReturn

import pytest


def under_ci() -> bool:
    """Whether this is a CI run (``CI`` set to anything but empty, ``0`` or ``false``)."""
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false")


def unavailable(reason: str) -> NoReturn:
    """Skip the test for ``reason``; under CI fail it instead (a skipped requirement is a gap there)."""
    if under_ci():
        pytest.fail(f"{reason} (a skip is a failure under CI)", pytrace=False)
    pytest.skip(reason)
