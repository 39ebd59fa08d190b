"""Start-up mistakes get one line naming the fix, before anything is started."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from pytest_cdc.errors import TempDirUnusable
from pytest_cdc.stack.native.runtime import check_temp_dir

pytest_plugins = ["pytester"]

AS_ROOT = pytest.mark.skipif(
    os.geteuid() != 0, reason="the servers run as postgres/mysql only when pytest runs as root"
)


@pytest.fixture(autouse=True)
def _no_cdc_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CDC_BACKEND", raising=False)
    monkeypatch.delenv("CDC_RUNTIME_DIR", raising=False)


def test_bad_boolean_for_collect_features_names_key_and_values(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\ncdc_collect_features = maybe\n")
    pytester.makepyfile("def test_nothing(): pass")
    result = pytester.runpytest_subprocess()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            "ERROR: ini key cdc_collect_features is not a boolean (invalid truth value 'maybe'): "
            "set it to true or false (also yes/no, on/off, 1/0).",
        ]
    )
    assert "Traceback" not in result.stdout.str() + result.stderr.str()


@AS_ROOT
def test_tmpdir_the_database_users_cannot_enter_fails_before_starting_anything(
    pytester: pytest.Pytester, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    private = tmp_path / "private-tmp"
    private.mkdir(mode=0o700)
    private.chmod(0o700)  # owned by root, as a CI runner's own TMPDIR may be
    monkeypatch.setenv("TMPDIR", str(private))
    pytester.makepyfile("def test_needs_stack(cdc_stack): pass")
    result = pytester.runpytest_subprocess("--cdc-backend=native")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        [
            f"*TMPDIR {private} is not usable by the database servers: `postgres` cannot enter "
            "it*; `mysql` cannot write to it*: make it like /tmp (`chmod 1777 *`) or point TMPDIR"
            " at such a folder (unset TMPDIR to use /tmp).",
        ]
    )
    assert "Traceback" not in result.stdout.str() and "stack.py:" not in result.stdout.str()
    assert list(private.iterdir()) == []  # no stack dir made, no server started


@pytest.fixture
def dir_in_tmp() -> Iterator[Path]:
    """A new folder in the system temp dir (tmp_path's parents are private to root)."""
    path = Path(tempfile.mkdtemp(prefix="cdc-test-tmpdir-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@AS_ROOT
def test_temp_dir_check_names_only_what_is_missing(dir_in_tmp: Path) -> None:
    readable = dir_in_tmp
    readable.chmod(0o755)  # postgres can enter it; mysql cannot write its temp files there
    with pytest.raises(TempDirUnusable) as info:
        check_temp_dir(readable)
    assert "`postgres`" not in str(info.value)
    assert f"temp dir {readable} is not usable by the database servers: `mysql`" in str(info.value)
    readable.chmod(0o1777)
    check_temp_dir(readable)  # like /tmp: fine
