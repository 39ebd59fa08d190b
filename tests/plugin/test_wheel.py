"""cdc-spec as a user installs it: a built wheel, a fresh venv, a project folder of its own.

The wheel is built from a copy of this checkout (tracked and new files), so the build leaves
nothing in the work tree. The stack-backed test runs the README's example for real.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

CHECKOUT = Path(__file__).resolve().parents[2]
PACKAGES = ("pytest_cdc", "cdc_support")
README_SECTION = "## Using `pytest_cdc` in your own repository"


def _source_files() -> list[str]:
    listed = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard", "-z"],
        cwd=CHECKOUT,
        capture_output=True,
        check=True,
    ).stdout.decode()
    return [name for name in listed.split("\0") if name and (CHECKOUT / name).is_file()]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The cdc-spec wheel, built by pip from a copy of this checkout."""
    source = tmp_path_factory.mktemp("source")
    for name in _source_files():
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(CHECKOUT / name, source / name)
    dist = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(dist), str(source)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (built,) = dist.glob("cdc_spec-*.whl")
    return built


@pytest.fixture(scope="module")
def installed(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv with the wheel (and its dependencies from PyPI) installed; its bin dir."""
    venv = tmp_path_factory.mktemp("venv")
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    result = subprocess.run(
        [str(venv / "bin" / "pip"), "install", "-q", str(wheel)],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return venv / "bin"


def _user_env() -> dict[str, str]:
    """The environment of a user's shell: no cdc settings, nothing of this checkout."""
    drop = ("CDC_", "PYTEST_", "PYTHONPATH", "VIRTUAL_ENV")
    return {k: v for k, v in os.environ.items() if not k.startswith(drop)}


def _run_pytest(bin_dir: Path, project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(bin_dir / "pytest"), "-p", "no:cacheprovider", *args],
        cwd=project,
        env=_user_env(),
        capture_output=True,
        text=True,
        timeout=840,
    )


def readme_example() -> str:
    """The Python example of the README's section on using pytest_cdc elsewhere."""
    text = (CHECKOUT / "README.md").read_text()
    section = text.split(README_SECTION, 1)[1].split("\n## ", 1)[0]
    match = re.search(r"```python\n(.*?)```", section, re.S)
    assert match, f"no ```python example in the README section {README_SECTION!r}"
    return match.group(1)


def test_wheel_ships_every_non_python_file_of_the_packages(wheel: Path) -> None:
    shipped = set(zipfile.ZipFile(wheel).namelist())
    needed = {
        name
        for name in _source_files()
        if name.startswith(tuple(f"{p}/" for p in PACKAGES)) and not name.endswith(".py")
    }
    assert (
        "pytest_cdc/stack/native/log4j2.properties" in needed
    )  # the one Kafka cannot start without
    assert sorted(needed - shipped) == []


def test_installed_wheel_runs_the_readme_example_from_another_folder(
    installed: Path, tmp_path: Path
) -> None:
    located = subprocess.run(
        [str(installed / "python"), "-c", "import pytest_cdc; print(pytest_cdc.__file__)"],
        cwd=tmp_path,
        env=_user_env(),
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert located.startswith(str(installed.parent)), located  # not this checkout
    (tmp_path / "test_my_pipeline.py").write_text(readme_example())
    result = _run_pytest(
        installed, tmp_path, f"--cdc-runtime-dir={CHECKOUT / 'runtime' / 'dist'}", "-v"
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-6000:]
    assert "test_my_pipeline.py::test_my_pipeline PASSED" in output
    assert "cdc: stack stopped" in output


def test_installed_wheel_without_runtime_dir_says_so_in_one_line(
    installed: Path, tmp_path: Path
) -> None:
    (tmp_path / "test_uses_stack.py").write_text("def test_it(cdc_stack):\n    pass\n")
    result = _run_pytest(installed, tmp_path, "--cdc-backend=native")
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    message = [line for line in output.splitlines() if "no runtime dir: " in line]
    assert message, output
    assert "make setup" in message[0] and "--cdc-runtime-dir=" in message[0], message
    assert "Traceback" not in output and "runtime.py:" not in output, output


def test_installed_wheel_runs_the_docker_backend_without_a_runtime_dir(
    installed: Path, tmp_path: Path
) -> None:
    """The images `make setup` built are found by the project version: no checkout needed."""
    (tmp_path / "test_uses_stack.py").write_text(
        "def test_it(cdc_stack):\n    assert cdc_stack.info.backend == 'docker'\n"
    )
    result = _run_pytest(installed, tmp_path, "--cdc-backend=docker")
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-6000:]
    assert "cdc: backend=docker (from command line)" in output, output
    assert "cdc: stack stopped" in output, output
