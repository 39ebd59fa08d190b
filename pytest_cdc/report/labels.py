"""Gherkin tags to Allure labels, and the stack description as the Allure environment.

Tags of the form `@epic:PostgreSQL`, `@story:P1_logical_replication`, `@severity:critical`
become Allure labels (underscores read as spaces); other tags become plain pytest markers.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pytest_cdc.stack import Stack

LABEL_TAGS = ("epic", "feature", "story", "severity", "suite", "owner")


def register_markers(config: pytest.Config) -> None:
    """Register the tags used as plain markers in our features."""
    config.addinivalue_line("markers", "allure_label: allure label marker")


def apply_tag(tag: str, function: Any) -> Any:
    """pytest_bdd_apply_tag: label tags -> allure_label marks; None lets pytest-bdd apply others."""
    name, sep, value = tag.partition(":")
    if not sep or name not in LABEL_TAGS:
        return None
    mark = pytest.mark.allure_label(value.replace("_", " "), label_type=name)
    return mark(function)


def write_environment(config: pytest.Config, stack: Stack) -> None:
    """Write environment.properties into the allure results dir (backend, versions, timings)."""
    alluredir = getattr(config.option, "allure_report_dir", None)
    if not alluredir:
        return
    path = Path(alluredir)
    path.mkdir(parents=True, exist_ok=True)
    info = stack.info
    lines = {"backend": f"{info.backend} ({info.backend_source})"}
    lines.update({f"version.{k}": v for k, v in info.versions.items()})
    lines.update({f"start_seconds.{k}": str(v) for k, v in info.start_seconds.items()})
    text = "".join(f"{k}={v}\n" for k, v in lines.items())
    (path / "environment.properties").write_text(text)
