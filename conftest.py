"""Root conftest: loads every step module under steps/ (they get assertion rewriting too)."""

from pathlib import Path

import pytest

# every steps.* module is rewritten, also one imported by another before its own turn below
pytest.register_assert_rewrite("steps")

pytest_plugins = sorted(
    f"steps.{path.stem}"
    for path in (Path(__file__).parent / "steps").glob("*.py")
    if path.stem != "__init__"
)
