"""The patient page at ``/patient``: static files from ``api/static/patient`` and ethers from node_modules.

Every file is served with a Content-Security-Policy that allows scripts, styles and connections to
this origin only: the page loads nothing from outside the machine, and an injected remote script
would not run. ethers (pinned in package.json) is served straight from ``node_modules``, with no
build step; the page names it ``vendor/ethers.js``.
"""

from __future__ import annotations

import re
from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse, RedirectResponse, Response

from ledger.exceptions import NotFoundError

router = APIRouter(include_in_schema=False)

STATIC_DIR = Path(__file__).resolve().parent.parent / "static" / "patient"
ETHERS_FILE = Path("ethers") / "dist" / "ethers.min.js"
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "form-action 'none'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
    ]
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
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


def _node_modules() -> list[Path]:
    """Where ``npm ci`` put node_modules: the repository root, or the working directory."""
    return [Path(__file__).resolve().parents[2] / "node_modules", Path.cwd() / "node_modules"]


def _file(path: Path) -> Response:
    return FileResponse(path, media_type=MEDIA_TYPES[path.suffix], headers=SECURITY_HEADERS)


@router.get("/patient")
def patient_root() -> Response:
    return RedirectResponse("/patient/", status_code=308)


@router.get("/patient/")
def patient_index() -> Response:
    return _file(STATIC_DIR / "index.html")


@router.get("/patient/vendor/ethers.js")
def ethers_module() -> Response:
    for base in _node_modules():
        if (base / ETHERS_FILE).is_file():
            return _file(base / ETHERS_FILE)
    raise NotFoundError("ethers is not installed; run `make setup` (npm ci)")


@router.get("/patient/{name}")
def patient_file(name: str) -> Response:
    path = STATIC_DIR / name
    if not _FILE_NAME.fullmatch(name) or not path.is_file():
        raise NotFoundError(f"no file {name!r} in the patient page")
    return _file(path)
