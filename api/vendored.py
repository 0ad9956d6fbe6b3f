"""Files copied from pinned npm releases into the package, each checked against its SHA-256 pin.

The service loads nothing from outside the machine: the patient page's ethers and the API docs'
Swagger UI and ReDoc are committed copies of the releases package-lock.json pins. A copy whose hash
differs from its pin is refused (the service does not start), never served.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from ledger.exceptions import PackageDataError


@dataclass(frozen=True)
class Vendored:
    """One vendored file: which npm release it comes from, where it is, and its pinned SHA-256."""

    package: str
    version: str
    path: Path
    sha256: str

    @property
    def what(self) -> str:
        return f"{self.package} {self.version}"


def pinned_bytes(file: Vendored) -> bytes:
    """The file's bytes, if their SHA-256 is the pin; else :class:`PackageDataError`."""
    try:
        body = file.path.read_bytes()
    except OSError as err:
        raise PackageDataError(f"the vendored {file.what} is missing: {file.path}", path=str(file.path)) from err
    found = hashlib.sha256(body).hexdigest()
    if found != file.sha256:
        raise PackageDataError(
            f"{file.path} is not the pinned {file.what}: its SHA-256 is {found}, the pin {file.sha256}",
            path=str(file.path),
            expected=file.sha256,
            found=found,
        )
    return body
