"""The API's documentation pages (``/docs`` Swagger UI, ``/redoc`` ReDoc), with their assets served
from the package: the pages work on a closed network and load nothing from a CDN.

The assets are the pinned npm releases' files (:mod:`api.vendored`), checked when this module is
imported.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse, Response

from api.vendored import Vendored, pinned_bytes

router = APIRouter(include_in_schema=False)

DOCS_DIR = Path(__file__).resolve().parent.parent / "static" / "docs"
SWAGGER_UI_VERSION = "5.35.0"
REDOC_VERSION = "2.5.2"
ASSETS = {
    "swagger-ui-bundle.js": Vendored(
        "swagger-ui-dist",
        SWAGGER_UI_VERSION,
        DOCS_DIR / "swagger-ui-bundle.js",
        "e6a898692f2d768e807c3ba4626068a69a2c5dd960dd6c76f3e4d3a3de180af2",
    ),
    "swagger-ui.css": Vendored(
        "swagger-ui-dist",
        SWAGGER_UI_VERSION,
        DOCS_DIR / "swagger-ui.css",
        "5ed08757e53da3e026d6cbecc61fe5d43585c9560b302d534ad56692519a273d",
    ),
    "redoc.standalone.js": Vendored(
        "redoc",
        REDOC_VERSION,
        DOCS_DIR / "redoc.standalone.js",
        "6beb5aea23b71d09122ee35de8f326e38aec050e774f3bfba1f34e5c36608986",
    ),
}
ASSET_PREFIX = "/docs-assets"
_BODIES = {name: pinned_bytes(file) for name, file in ASSETS.items()}
_MEDIA_TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8"}


@router.get("/docs")
def swagger_ui() -> HTMLResponse:
    return get_swagger_ui_html(
        openapi_url="/openapi.json",
        title="CareLedger API",
        swagger_js_url=f"{ASSET_PREFIX}/swagger-ui-bundle.js",
        swagger_css_url=f"{ASSET_PREFIX}/swagger-ui.css",
        swagger_favicon_url="data:,",
    )


@router.get("/redoc")
def redoc() -> HTMLResponse:
    return get_redoc_html(
        openapi_url="/openapi.json",
        title="CareLedger API",
        redoc_js_url=f"{ASSET_PREFIX}/redoc.standalone.js",
        redoc_favicon_url="data:,",
        with_google_fonts=False,
    )


@router.get(ASSET_PREFIX + "/{name}")
def asset(name: str) -> Response:
    body = _BODIES.get(name)
    if body is None:
        return Response(status_code=404)
    return Response(
        body, media_type=_MEDIA_TYPES[Path(name).suffix], headers={"Cache-Control": "public, max-age=86400"}
    )
