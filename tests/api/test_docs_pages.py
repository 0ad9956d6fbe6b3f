"""The documentation pages work on a closed network: their scripts and styles come from the service."""

from __future__ import annotations

import hashlib
import json
import re

import pytest
from fastapi.testclient import TestClient

from api.routes.docs import ASSETS, REDOC_VERSION, SWAGGER_UI_VERSION
from tests.support import paths


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_the_docs_pages_load_nothing_from_outside(client: TestClient, page: str) -> None:
    html = client.get(page)
    assert html.status_code == 200
    sources = re.findall(r"""(?:src|href)=["']([^"']+)["']""", html.text)
    assert sources, html.text
    assert all(s.startswith("/") or s.startswith("data:") for s in sources), sources  # no CDN, no remote font
    for source in sources:
        if source.startswith("/docs-assets/"):
            served = client.get(source)
            assert served.status_code == 200 and served.content == ASSETS[source.rsplit("/", 1)[1]].path.read_bytes()


def test_the_vendored_assets_are_the_pinned_npm_releases() -> None:
    lock = json.loads((paths.REPO / "package-lock.json").read_text())["packages"]
    assert lock["node_modules/swagger-ui-dist"]["version"] == SWAGGER_UI_VERSION
    assert lock["node_modules/redoc"]["version"] == REDOC_VERSION
    installed = {
        "swagger-ui-bundle.js": paths.REPO / "node_modules" / "swagger-ui-dist" / "swagger-ui-bundle.js",
        "swagger-ui.css": paths.REPO / "node_modules" / "swagger-ui-dist" / "swagger-ui.css",
        "redoc.standalone.js": paths.REPO / "node_modules" / "redoc" / "bundles" / "redoc.standalone.js",
    }
    for name, file in ASSETS.items():
        assert hashlib.sha256(file.path.read_bytes()).hexdigest() == file.sha256, name
        assert hashlib.sha256(installed[name].read_bytes()).hexdigest() == file.sha256, name
