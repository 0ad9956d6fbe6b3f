"""The patient page at ``/patient``: static files from ``api/static/patient``, a vendored ethers among them.

Every file is served with a Content-Security-Policy that allows scripts, styles and connections to
this origin only (and connections to the public node of ``public_rpc_url``, when one is set, which
the page asks about the roots of receipts): the page loads nothing from outside the machine, and an
injected remote script would not run. ethers is vendored, with no build step: ``vendor/ethers.min.js`` is the
``dist/ethers.min.js`` of the release pinned in package-lock.json (:data:`ETHERS_VERSION`), shipped
in the package and pinned by :data:`ETHERS_SHA256`; the page names it ``vendor/ethers.js``. The copy
is checked against the pin when this module is imported, so a service whose copy differs refuses
to start instead of serving it.
"""

from __future__ import annotations

import re
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, RedirectResponse, Response

from api.service import Service
from api.vendored import Vendored, pinned_bytes
from ledger.exceptions import NotFoundError

router = APIRouter(include_in_schema=False)

STATIC_DIR = Path(__file__).resolve().parent.parent / "static" / "patient"
ETHERS_FILE = STATIC_DIR / "vendor" / "ethers.min.js"
ETHERS_VERSION = "6.17.0"
ETHERS_SHA256 = "b016b0c3898c78fd8156466eb1ff1f42c9df951c2f0d64c9bdf799fe745b0a6c"
ETHERS_URL = "/patient/vendor/ethers.js"


def content_security_policy(public_rpc_origin: str | None = None) -> str:
    """The page's policy: everything from this origin only, but for connections to the configured
    public node (``public_rpc_url``), which the page asks about anchored roots."""
    connect = "connect-src 'self'" + (f" {public_rpc_origin}" if public_rpc_origin else "")
    return "; ".join(
        [
            "default-src 'none'",
            "script-src 'self'",
            "style-src 'self'",
            "img-src 'self' data:",
            connect,
            "form-action 'none'",
            "base-uri 'none'",
            "frame-ancestors 'none'",
        ]
    )


CONTENT_SECURITY_POLICY = content_security_policy()
"""The policy without a public node."""


def security_headers(public_rpc_origin: str | None = None) -> dict[str, str]:
    return {
        "Content-Security-Policy": content_security_policy(public_rpc_origin),
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "Cache-Control": "no-cache",
    }


MEDIA_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".png": "image/png",
    ".svg": "image/svg+xml",
}
_FILE_NAME = re.compile(r"^[a-z][a-z0-9-]*\.(?:html|js|css|png|svg)$")


def pinned_ethers(path: Path = ETHERS_FILE, sha256: str = ETHERS_SHA256) -> bytes:
    """The vendored ethers at ``path``, if its SHA-256 is ``sha256``; else :class:`PackageDataError`."""
    return pinned_bytes(Vendored("ethers", ETHERS_VERSION, path, sha256))


_ETHERS = pinned_ethers()


def _headers(request: Request) -> dict[str, str]:
    """The headers for this app: its public node, if the service has one (the page's router may run
    alone, without a service)."""
    service: Service | None = getattr(request.app.state, "service", None)
    return security_headers(service.settings.public_rpc_origin if service is not None else None)


def _file(path: Path, request: Request) -> Response:
    return FileResponse(path, media_type=MEDIA_TYPES[path.suffix], headers=_headers(request))


@router.get("/patient")
def patient_root() -> Response:
    return RedirectResponse("/patient/", status_code=308)


@router.get("/patient/")
def patient_index(request: Request) -> Response:
    return _file(STATIC_DIR / "index.html", request)


@router.get(ETHERS_URL)
def ethers_module(request: Request) -> Response:
    return Response(_ETHERS, media_type=MEDIA_TYPES[".js"], headers=_headers(request))


@router.get("/patient/{name}")
def patient_file(name: str, request: Request) -> Response:
    path = STATIC_DIR / name
    if not _FILE_NAME.fullmatch(name) or not path.is_file():
        raise NotFoundError(f"no file {name!r} in the patient page")
    return _file(path, request)
