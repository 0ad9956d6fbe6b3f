"""The operator scripts (``scripts/*.py``), loaded as modules for their tests (scripts/ is no package)."""

from __future__ import annotations

import importlib.util
import sys
from types import ModuleType

from tests.support import paths


def load_script(name: str) -> ModuleType:
    """``scripts/<name>.py`` as the module ``name`` (registered in ``sys.modules``, as dataclasses need)."""
    spec = importlib.util.spec_from_file_location(name, paths.REPO / "scripts" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module
