"""Every step line of every feature matches exactly one step definition of its kind.

pytest-bdd takes the first definition that matches, so a line matched by two (a loose
``{table}`` swallowing a longer sentence) works only by the order in which steps load.
Outline lines with ``<placeholders>`` are checked once per row of their Examples.
"""

from __future__ import annotations

import importlib
import re
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
KEYWORDS = {"Given": "given", "When": "when", "Then": "then"}


def _step_definitions() -> list[Any]:
    contexts = []
    for path in sorted((ROOT / "steps").glob("*.py")):
        module = importlib.import_module(f"steps.{path.stem}")
        for name, value in vars(module).items():
            if name.startswith("pytestbdd_stepdef_"):
                contexts.append(value._fixture_function())
    return contexts


def _examples(lines: list[str], start: int) -> list[dict[str, str]]:
    """The Examples rows of the outline that begins at ``start``."""
    rows: list[dict[str, str]] = []
    header: list[str] | None = None
    for line in lines[start + 1 :]:
        text = line.strip()
        if text.startswith(("Scenario", "Rule:", "Feature:")):
            break
        if text.startswith("|") and header is None and rows == [] and _in_examples(lines, line):
            header = [c.strip() for c in text.strip("|").split("|")]
        elif text.startswith("|") and header is not None:
            cells = [c.strip() for c in text.strip("|").split("|")]
            rows.append(dict(zip(header, cells, strict=True)))
    return rows


def _in_examples(lines: list[str], line: str) -> bool:
    before = lines[: lines.index(line)]
    labels = [t.strip() for t in before if t.strip() and not t.strip().startswith("|")]
    return bool(labels) and labels[-1].startswith("Examples")


def _filled(text: str, row: dict[str, str]) -> str:
    """An outline step's text with one Examples row's values in its ``<placeholders>``."""
    return re.sub(r"<([^<>]+)>", lambda m: row.get(m[1], m[0]), text)


def _step_lines(path: Path) -> list[tuple[str, str, int]]:
    """(kind, text, line number) of each step, outline steps once per Examples row."""
    lines = path.read_text(encoding="utf-8").splitlines()
    found: list[tuple[str, str, int]] = []
    kind = "given"
    rows: list[dict[str, str]] = [{}]
    for number, line in enumerate(lines, 1):
        text = line.strip()
        if text.startswith(("Scenario", "Background")):
            rows = _examples(lines, number - 1) if "Outline" in text else [{}]
            rows = rows or [{}]
            kind = "given"
            continue
        word, _, rest = text.partition(" ")
        if word in KEYWORDS:
            kind = KEYWORDS[word]
        elif word not in ("And", "But"):
            continue
        found += [(kind, _filled(rest, row), number) for row in rows]
    return found


FEATURES = sorted((ROOT / "features").rglob("*.feature"))


@pytest.mark.parametrize("feature", FEATURES, ids=lambda p: str(p.relative_to(ROOT)))
def test_each_step_line_has_exactly_one_definition(feature: Path) -> None:
    definitions = _step_definitions()
    problems = []
    for kind, text, number in _step_lines(feature):
        matching = [d for d in definitions if d.type == kind and d.parser.is_matching(text)]
        if len(matching) != 1:
            names = [d.step_func.__module__ + "." + d.step_func.__name__ for d in matching]
            problems.append(f"line {number}: {kind} {text!r} matches {len(matching)}: {names}")
    assert problems == []
