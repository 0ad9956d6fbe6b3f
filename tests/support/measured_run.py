"""Run a command line as a separate process and measure its peak memory, with a deadline.

The command runs under a fresh parent process of its own, which waits for it and reports
``getrusage(RUSAGE_CHILDREN).ru_maxrss``: the peak resident set of the command (or of its largest
child), unmixed with anything the test process itself started before. An address-space limit keeps
a runaway command (the very thing these tests look for) from taking the shared machine's memory.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from tests.support import paths

ADDRESS_SPACE_LIMIT = 6 << 30
"""Bytes of address space the measured command may map (a runaway read fails with MemoryError there)."""

_PARENT = r"""
import json, resource, subprocess, sys
limit, command = int(sys.argv[1]), sys.argv[2:]
def limited():
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
done = subprocess.run(command, capture_output=True, preexec_fn=limited)
sys.stdout.write(json.dumps({
    "returncode": done.returncode,
    "stdout": done.stdout.decode("latin-1"),
    "stderr": done.stderr.decode("latin-1"),
    "peak_kib": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss,
    "written_blocks": resource.getrusage(resource.RUSAGE_CHILDREN).ru_oublock,
}))
"""


@dataclass(frozen=True)
class MeasuredRun:
    """What the command did: exit code, output as bytes, its peak resident memory and the bytes it
    wrote to files (the kernel's count of 512-byte output blocks)."""

    returncode: int
    stdout: bytes
    stderr: bytes
    peak_bytes: int
    written_bytes: int


def auditor_command(*args: str) -> list[str]:
    """``careledger-audit ARGS`` as this checkout's interpreter runs it."""
    return [sys.executable, "-m", "ledger.auditor.cli", *args]


def measured_run(
    command: list[str],
    *,
    timeout: float,
    cwd: Path | None = None,
    address_space: int = ADDRESS_SPACE_LIMIT,
    env: dict[str, str] | None = None,
) -> MeasuredRun:
    """Run ``command`` to its end (at most ``timeout`` seconds) and measure it.

    Raises:
        subprocess.TimeoutExpired: It did not finish in time (a hang).
    """
    environment = {k: v for k, v in os.environ.items() if k not in ("FORCE_COLOR", "CLICOLOR_FORCE")}
    environment.update(env or {}, PYTHONPATH=str(paths.REPO))
    parent = subprocess.Popen(
        [sys.executable, "-c", _PARENT, str(address_space), *command],
        stdout=subprocess.PIPE,
        env=environment,
        cwd=cwd or paths.REPO,
        start_new_session=True,  # its own process group: a hung command is ended with its parent
    )
    try:
        out, _ = parent.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(parent.pid, signal.SIGKILL)
        parent.communicate()
        raise
    assert parent.returncode == 0, f"the measuring parent failed ({parent.returncode})"
    result = json.loads(out)
    return MeasuredRun(
        result["returncode"],
        result["stdout"].encode("latin-1"),
        result["stderr"].encode("latin-1"),
        result["peak_kib"] * 1024,
        result["written_blocks"] * 512,
    )
