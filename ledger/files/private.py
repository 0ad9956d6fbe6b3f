"""The data directory is private to the service's own user: the directory 0700, every file in it 0600.

It holds what no other local user may read: the SQLite store (patients, digests, salts, metadata,
the access trail) with its ``-wal`` and ``-shm`` files, the embedded chain, the keystore, the
deployment record and the patient-session secret. Files are created with whatever mode the process's
umask leaves (SQLite's are 0644 under the usual 022), so :func:`secure_data_dir` tightens the tree
at start-up, whatever the umask: once before anything is opened (anything wider found then was left
so by an earlier run or by hand, and is logged as a warning) and once after (what opening just
created). ``careledger`` also runs with umask 077, so that files it creates later are private from
the start.
"""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path
from typing import Final

log = logging.getLogger("careledger.files")

DIRECTORY_MODE: Final = 0o700
FILE_MODE: Final = 0o600
PRIVATE_UMASK: Final = 0o077
_OTHERS: Final = stat.S_IRWXG | stat.S_IRWXO


def secure_data_dir(data_dir: Path, *, warn: bool = True) -> list[Path]:
    """Create ``data_dir`` (0700) if absent and take every group and other permission off it and
    everything under it (directories 0700, files 0600 at most). Symbolic links are not followed.

    Args:
        data_dir: The data directory.
        warn: Log each path tightened as a warning (else at debug level: files just created).

    Returns:
        The paths whose mode was changed.
    """
    data_dir.mkdir(parents=True, exist_ok=True, mode=DIRECTORY_MODE)
    tightened = [p for p in (data_dir, *_tree(data_dir)) if _tighten(p)]
    for path in tightened:
        log.log(
            logging.WARNING if warn else logging.DEBUG,
            "%s was readable by other users; now %s",
            path,
            "0700" if path.is_dir() else "0600",
        )
    return tightened


def _tree(root: Path) -> list[Path]:
    found: list[Path] = []
    for directory, subdirectories, files in os.walk(root, followlinks=False):
        base = Path(directory)
        found.extend(base / name for name in subdirectories)
        found.extend(base / name for name in files)
    return found


def _tighten(path: Path) -> bool:
    """Take group and other permissions off ``path``; whether its mode changed."""
    try:
        mode = path.lstat().st_mode
    except FileNotFoundError:  # a file SQLite removed meanwhile
        return False
    if stat.S_ISLNK(mode) or not mode & _OTHERS:
        return False
    wanted = DIRECTORY_MODE if stat.S_ISDIR(mode) else stat.S_IMODE(mode) & FILE_MODE
    os.chmod(path, wanted)
    return True
