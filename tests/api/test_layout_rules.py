"""The API's layout rules, checked on the source: routes only parse, call the library and answer.

No module under ``api/routes/`` imports another route module (what two routes share lives in
``api/schemas``, ``api/deps`` or ``ledger``), and no SQL is run anywhere in ``api/`` (the store
owns every statement). Routes decide by the roles a request may use (``caller.roles``: with an
access token, only its scopes' roles), never by all the roles of the caller's app.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.support import paths

API = paths.REPO / "api"
ROUTES = API / "routes"


def _imported_modules(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from the file's own package upwards
                package = list(path.parent.relative_to(API.parent).parts)
                base = ".".join([*package[: len(package) - node.level + 1], *([base] if base else [])])
            found.extend(f"{base}.{alias.name}" for alias in node.names)
            found.append(base)
        elif isinstance(node, ast.Import):
            found.extend(alias.name for alias in node.names)
    return found


@pytest.mark.parametrize("route", sorted(p for p in ROUTES.glob("*.py") if p.name != "__init__.py"), ids=str)
def test_route_modules_do_not_import_each_other(route: Path) -> None:
    others = {f"api.routes.{p.stem}" for p in ROUTES.glob("*.py") if p.name != "__init__.py"}
    imported = {m for m in _imported_modules(route) if m in others or m == "api.routes"}
    assert not imported, f"{route.name} imports route modules {sorted(imported)}"


@pytest.mark.parametrize("module", sorted(p for p in API.rglob("*.py") if ROUTES not in p.parents), ids=str)
def test_only_the_app_uses_the_routes(module: Path) -> None:
    """Dependencies, schemas and helpers never reach into a route module (the app takes ``ROUTERS``)."""
    routes = {f"api.routes.{p.stem}" for p in ROUTES.glob("*.py") if p.name != "__init__.py"}
    imported = sorted(m for m in _imported_modules(module) if m in routes)
    assert not imported, f"{module.relative_to(API.parent)} imports route modules {imported}"


@pytest.mark.parametrize("module", sorted(API.rglob("*.py")), ids=str)
def test_no_sql_in_the_api(module: Path) -> None:
    calls = [
        node.lineno
        for node in ast.walk(ast.parse(module.read_text()))
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr in ("execute", "executemany", "executescript")
    ]
    assert not calls, f"{module.relative_to(API.parent)} runs SQL at lines {calls}: put it in ledger/store"


@pytest.mark.parametrize("route", sorted(ROUTES.glob("*.py")), ids=str)
def test_routes_decide_by_the_roles_in_effect(route: Path) -> None:
    uses = [
        node.lineno
        for node in ast.walk(ast.parse(route.read_text()))
        if isinstance(node, ast.Attribute)
        and node.attr == "roles"
        and isinstance(node.value, ast.Attribute)
        and node.value.attr == "app"
    ]
    assert not uses, f"{route.name} reads caller.app.roles at lines {uses}: use caller.roles (a token's scopes)"


def test_the_rules_see_a_violation(tmp_path: Path) -> None:
    """The checks above would fail on a route importing a route, or on SQL in a route."""
    bad = tmp_path / "bad.py"
    bad.write_text("from api.routes.consent import x\nconn.execute('SELECT 1')\n")
    assert "api.routes.consent" in _imported_modules(bad)
    assert any(
        isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and n.func.attr == "execute"
        for n in ast.walk(ast.parse(bad.read_text()))
    )
