"""The house rules of the layout (issue 12): step modules are sentences, modules stay small.

A step module has at most 300 lines, imports no database, Kafka or table driver (mechanics live
in cdc_support) and annotates every function with its return type; a module of cdc_support or
pytest_cdc has at most 450 lines. ``RESHAPE_PENDING`` lists what has not been reshaped yet: it
may only shrink.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
STEP_DRIVERS = {
    "psycopg",
    "psycopg2",
    "pymysql",
    "confluent_kafka",
    "pyiceberg",
    "pyarrow",
    "deltalake",
}
STEP_MAX_LINES = 300
MODULE_MAX_LINES = 450

RESHAPE_PENDING: set[str] = set()
"""Modules (paths from the repository root) still over their limit or importing a driver."""


def step_module_problems(path: Path) -> list[str]:
    """Why a step module is not a sentence module (empty when it is)."""
    source = path.read_text(encoding="utf-8")
    lines = len(source.splitlines())
    problems = [f"{lines} lines (at most {STEP_MAX_LINES})"] if lines > STEP_MAX_LINES else []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            names = [node.module or ""]
        else:
            names = []
        problems += [f"imports {name}" for name in names if name.split(".")[0] in STEP_DRIVERS]
        if isinstance(node, ast.FunctionDef) and node.returns is None:
            problems.append(f"{node.name}() has no return type")
    return problems


def _relative(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def _checked(paths: list[Path]) -> list[Path]:
    """Every module but the pending ones (the last test below checks those instead)."""
    return sorted(p for p in paths if _relative(p) not in RESHAPE_PENDING)


STEP_MODULES = _checked(list((ROOT / "steps").glob("*.py")))
LIBRARY_MODULES = _checked(
    [*(ROOT / "cdc_support").rglob("*.py"), *(ROOT / "pytest_cdc").rglob("*.py")]
)


@pytest.mark.parametrize("path", STEP_MODULES, ids=_relative)
def test_a_step_module_is_sentences(path: Path) -> None:
    assert step_module_problems(path) == []


@pytest.mark.parametrize("path", LIBRARY_MODULES, ids=_relative)
def test_a_library_module_stays_small(path: Path) -> None:
    lines = len(path.read_text(encoding="utf-8").splitlines())
    assert lines <= MODULE_MAX_LINES, f"{lines} lines: split it by job"


def test_pending_modules_exist_and_still_need_work() -> None:
    """RESHAPE_PENDING only shrinks: a module that now obeys the rules must leave it."""
    for name in sorted(RESHAPE_PENDING):
        path = ROOT / name
        assert path.exists(), f"{name} is gone: remove it from RESHAPE_PENDING"
        if name.startswith("steps/"):
            assert step_module_problems(path), f"{name} is reshaped: remove it from RESHAPE_PENDING"
        else:
            lines = len(path.read_text(encoding="utf-8").splitlines())
            assert lines > MODULE_MAX_LINES, f"{name} is small now: remove it from RESHAPE_PENDING"


def _layout_block() -> str:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    return readme.split("## Layout", 1)[1].split("```")[1]


@pytest.mark.parametrize("package", ["cdc_support", "pytest_cdc"])
def test_the_readme_layout_names_every_module_and_subpackage(package: str) -> None:
    layout = _layout_block()
    top = ROOT / package
    names = {p.stem for p in top.glob("*.py") if p.stem != "__init__"}
    names |= {p.name for p in top.iterdir() if (p / "__init__.py").exists()}
    missing = sorted(n for n in names if not re.search(rf"\b{n}\b", layout))
    assert missing == [], f"README 'Layout' does not mention {package}/{missing}"


def test_test_modules_have_unique_basenames() -> None:
    # tests/ folders are not packages: two modules of one name break the whole collection
    seen: dict[str, list[str]] = {}
    for path in (ROOT / "tests").rglob("test_*.py"):
        seen.setdefault(path.name, []).append(_relative(path))
    assert {name: paths for name, paths in seen.items() if len(paths) > 1} == {}
