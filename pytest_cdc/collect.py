"""Collect `.feature` files directly: each file becomes a module of pytest-bdd scenarios.

features/ then holds Gherkin only; `pytest features/x.feature` and `pytest features/` work
without a binder test module. Enabled by the ini key `cdc_collect_features = true`.
"""

from __future__ import annotations

import types
from pathlib import Path

import pytest

_BINDER = "from pytest_bdd import scenarios\nscenarios({path!r}, features_base_dir={base!r})\n"


class FeatureModule(pytest.Module):
    """A pytest Module whose test functions are the scenarios of one feature file."""

    def _getobj(self) -> types.ModuleType:
        path = Path(self.path)
        module = types.ModuleType(f"cdc_feature_{path.stem}")
        module.__file__ = str(path)
        # pytest-bdd's scenarios() registers test functions in its caller's namespace:
        # running it as this module's code puts them into `module`.
        code = compile(_BINDER.format(path=path.name, base=str(path.parent)), str(path), "exec")
        exec(code, module.__dict__)
        return module


def collect_feature_file(file_path: Path, parent: pytest.Collector) -> FeatureModule | None:
    """The `pytest_collect_file` body: a FeatureModule for *.feature when enabled."""
    if file_path.suffix != ".feature":
        return None
    if not parent.config.getini("cdc_collect_features"):
        return None
    return FeatureModule.from_parent(parent, path=file_path)
