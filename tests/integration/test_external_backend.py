"""Iterate fast: `cdc-spec up` once, then `pytest --cdc-backend=external` on that stack, then
`cdc-spec down`. The external runs use the recorded stack, stop none of it, skip fault
scenarios saying why, and name an unreachable address in one line."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from test_stack_cli import ROOT, _alive, _cdc_spec  # one way to run cdc-spec in tests

from pytest_cdc.options import EXTERNAL_ADDRESSES
from pytest_cdc.stack import record as records

UNREACHABLE = re.compile(r"^(\w+) at (\S+) \(from (.+?)\) does not answer: ", re.M)


def _pytest(env: dict[str, str], cwd: Path, *argv: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--timeout=900", *argv],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    names = ("CDC_ENDPOINTS", *(f"CDC_{name.upper()}" for name in EXTERNAL_ADDRESSES))
    clean = {k: v for k, v in os.environ.items() if k not in names}
    return {**clean, records.STATE_ENV: str(tmp_path / "state"), "CDC_BACKEND": "native"}


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A project of its own with a stack test and a fault test (the plugin loads itself)."""
    folder = tmp_path / "project"
    folder.mkdir()
    (folder / "pytest.ini").write_text("[pytest]\n")
    (folder / "test_stack.py").write_text("def test_needs_stack(cdc_stack):\n    pass\n")
    (folder / "test_fault.py").write_text("def test_kill_kafka(cdc_faultable_stack):\n    pass\n")
    (folder / "test_flavour.py").write_text(
        "def test_flavour(cdc_stack):\n    assert cdc_stack.components[1] == 'mariadb'\n"
    )
    return folder


def test_up_then_external_runs_then_down_leaves_nothing(env, project, tmp_path: Path) -> None:
    path = tmp_path / "state" / records.RECORD_NAME
    pids: list[int] = []
    try:
        up = _cdc_spec(env, "up")
        assert up.returncode == 0, up.stdout + up.stderr
        record = records.load(path)
        assert record is not None, up.stdout
        pids = record.pids
        status = _cdc_spec(env, "status")
        assert status.returncode == 0, status.stdout + status.stderr

        run = _pytest(env, ROOT, "--cdc-backend=external", "features/postgres/debezium.feature")
        assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
        assert (
            "cdc: backend=external (from command line; endpoints from the stack `cdc-spec up` "
            f"started, record {path}), kafka="
        ) in run.stdout
        assert re.search(r"\n=+ \d+ passed", run.stdout), run.stdout[-2000:]
        assert " starting" not in run.stdout  # nothing started
        assert "was not started by this run: left as it was" in run.stdout
        assert _alive(pids) == pids, "the external run stopped a process it did not start"

        fault = _pytest(env, project, "--cdc-backend=external", "-rs", "test_fault.py")
        assert fault.returncode == 0, fault.stdout
        assert "an external stack cannot be faulted (backend=external)" in fault.stdout

        ep = record.endpoints
        addresses = _pytest(
            env,
            project,
            "--cdc-backend=external",
            f"--cdc-postgres-dsn={ep.postgres_dsn}",
            f"--cdc-kafka-bootstrap={ep.kafka_bootstrap}",
            f"--cdc-connect-url={ep.connect_url}",
            f"--cdc-mysql-dsn={ep.mysql_dsn}",  # mysql:// on a MariaDB server
            "test_stack.py",
            "test_flavour.py",
        )
        assert addresses.returncode == 0, addresses.stdout
        assert re.search(  # versions read from the services themselves
            r"cdc: backend=external \(from command line; endpoints from --cdc-postgres-dsn, "
            r"--cdc-kafka-bootstrap, --cdc-connect-url, --cdc-mysql-dsn\), postgres=\d+\.\d+, "
            r"connect=\d+\.\d+\.\d+, debezium=.*postgres \S+, mariadb=10\.",
            addresses.stdout,
        ), addresses.stdout

        port = _closed_port()
        bad = _pytest(
            env,
            project,
            "--cdc-backend=external",
            f"--cdc-postgres-dsn=postgresql://postgres:pw@127.0.0.1:{port}/postgres",
            f"--cdc-kafka-bootstrap={record.endpoints.kafka_bootstrap}",
            f"--cdc-connect-url={record.endpoints.connect_url}",
            "test_stack.py",
        )
        assert bad.returncode == pytest.ExitCode.TESTS_FAILED, bad.stdout
        assert UNREACHABLE.findall(bad.stdout) == [
            ("postgres", f"127.0.0.1:{port}", "--cdc-postgres-dsn")
        ], bad.stdout
        assert "Traceback" not in bad.stdout
        assert _alive(pids) == pids
    finally:
        down = _cdc_spec(env, "down")
    assert down.returncode == 0, down.stdout + down.stderr
    assert _alive(pids) == []
    assert not path.exists()
