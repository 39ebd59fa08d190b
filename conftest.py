"""Root conftest: loads every step module under steps/ (they get assertion rewriting too)."""

from pathlib import Path

pytest_plugins = sorted(
    f"steps.{path.stem}"
    for path in (Path(__file__).parent / "steps").glob("*.py")
    if path.stem != "__init__"
)
