"""Fixtures the test folders share."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from pytest_cdc.stack.native.stop import processes_mentioning


@pytest.fixture
def run_tmpdir() -> Iterator[Path]:
    """A TMPDIR for one pytest run in a subprocess, usable by the database users like /tmp;
    whatever a failed test leaves of the run is killed afterwards."""
    path = Path(tempfile.mkdtemp(prefix="cdc-test-run-"))
    path.chmod(0o1777)
    yield path
    for proc in processes_mentioning(str(path)):
        with contextlib.suppress(OSError):
            os.killpg(proc.pid, signal.SIGKILL)
        with contextlib.suppress(psutil.Error):
            proc.kill()
    shutil.rmtree(path, ignore_errors=True)
