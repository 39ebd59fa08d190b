"""`pytest --cdc-backend=docker` as a user runs it: a feature passes on containers, and no
container or temp dir of the run is left — after the run, after SIGTERM (with the stack up,
and while it starts), under `-n 2`; `--cdc-keep-stack` leaves it for `cdc-spec down`.

Each run is a pytest subprocess with a TMPDIR of its own; its containers are found by the
owner-pid label (the run's pid), so only what the run under test created is looked at.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from cdc_support.waiting import wait_until
from pytest_cdc.stack.docker.cleanup import labelled_containers
from pytest_cdc.stack.docker.containers import COMPONENT_LABEL, OWNER_PID_LABEL

pytestmark = pytest.mark.timeout(900)

REPO = Path(__file__).resolve().parents[2]
PYTEST = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-s", "--timeout=900"]
HOLDING_TEST = """
import signal

def test_holds_the_stack(cdc_stack):
    print("HOLDING", flush=True)
    signal.pause()  # held here until the signal under test arrives
"""
SQL_TEST = """
import psycopg

def test_{n}(cdc_stack):
    with psycopg.connect(cdc_stack.postgres_dsn) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
"""
STACK = ("postgres", "mariadb", "kafka", "connect", "collector", "prometheus")


def run_containers(pid: int) -> list[Any]:
    """The containers a run (its pid) started, running or not."""
    return labelled_containers(f"{OWNER_PID_LABEL}={pid}")


def _env(tmpdir: Path, project: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CDC_", "PYTEST_"))}
    env["TMPDIR"] = str(tmpdir)
    env["CDC_STATE_DIR"] = str(project / "state")
    return env


def _start(project: Path, tmpdir: Path, *args: str, cwd: Path | None = None) -> subprocess.Popen:
    with open(project / "run.log", "wb") as log:
        return subprocess.Popen(
            [*PYTEST, *args],
            cwd=cwd or project,
            env=_env(tmpdir, project),
            stdout=log,
            stderr=subprocess.STDOUT,
        )


def _output(project: Path) -> str:
    return (project / "run.log").read_text(errors="replace")


def _finish(run: subprocess.Popen, timeout: float = 600) -> int:
    try:
        return run.wait(timeout=timeout)
    finally:
        if run.poll() is None:
            run.kill()
            run.wait()
        for container in run_containers(run.pid):  # only if the test failed: leave nothing
            container.remove(force=True, v=True)


def _assert_nothing_left(run: subprocess.Popen, tmpdir: Path, project: Path) -> None:
    assert run_containers(run.pid) == [], _output(project)
    assert sorted(tmpdir.glob("cdc-docker-*")) == [], _output(project)


def test_a_postgres_feature_passes_on_the_docker_backend(run_tmpdir: Path, tmp_path: Path) -> None:
    run = _start(
        tmp_path,
        run_tmpdir,
        "--cdc-backend=docker",
        "features/postgres/debezium.feature",
        "-k",
        "snapshot",
        cwd=REPO,
    )
    returncode = _finish(run)
    output = _output(tmp_path)
    assert returncode == 0, output
    assert "cdc: backend=docker (from command line), kafka=" in output, output
    assert "cdc: starting docker stack (session " in output, output
    assert "1 passed" in output, output
    _assert_nothing_left(run, run_tmpdir, tmp_path)


@pytest.mark.parametrize("when", ["stack up", "stack starting"])
def test_sigterm_removes_every_container_and_the_temp_dir(
    when: str, run_tmpdir: Path, tmp_path: Path
) -> None:
    (tmp_path / "test_run.py").write_text(HOLDING_TEST)
    run = _start(tmp_path, run_tmpdir, "--cdc-backend=docker", "test_run.py")
    try:
        if when == "stack up":
            expected = f"HOLDING and the {len(STACK)} containers of the run running"
            done = lambda seen: "HOLDING" in seen[1] and seen[0] == sorted(STACK)  # noqa: E731
        else:  # containers exist, Connect is not started yet
            expected = "the run's postgres, mariadb and kafka containers, before Connect starts"
            done = lambda seen: set(seen[0]) >= {"postgres", "mariadb", "kafka"}  # noqa: E731
        wait_until(
            lambda: _seen(run, tmp_path),
            done=done,
            timeout=600,
            interval=0.1,
            expected=expected,
            describe=lambda seen: f"containers {seen[0]}, output {seen[1][-300:]!r}",
        )
        if when == "stack starting":
            assert "docker stack ready" not in _output(tmp_path), "started too fast to interrupt"
        run.send_signal(signal.SIGTERM)
    finally:
        returncode = _finish(run)
    output = _output(tmp_path)
    assert returncode == pytest.ExitCode.INTERRUPTED, output
    assert "KeyboardInterrupt: SIGTERM received" in output, output
    _assert_nothing_left(run, run_tmpdir, tmp_path)


def _seen(run: subprocess.Popen, project: Path) -> tuple[list[str], str]:
    if run.poll() is not None:
        raise AssertionError(f"the run exited ({run.returncode}):\n{_output(project)}")
    running = [c.labels.get(COMPONENT_LABEL, "?") for c in run_containers(run.pid)]
    return sorted(running), _output(project)


def test_two_xdist_workers_share_one_docker_stack(run_tmpdir: Path, tmp_path: Path) -> None:
    for n in (1, 2):
        (tmp_path / f"test_sql_{n}.py").write_text(SQL_TEST.format(n=n))
    run = _start(tmp_path, run_tmpdir, "-n", "2", "--cdc-backend=docker", ".")
    returncode = _finish(run)
    output = _output(tmp_path)
    assert returncode == 0, output
    assert "2 passed" in output, output
    assert output.count("cdc: starting docker stack") == 1, output
    _assert_nothing_left(run, run_tmpdir, tmp_path)


def test_a_kept_stack_is_shown_by_status_and_removed_by_down(
    run_tmpdir: Path, tmp_path: Path
) -> None:
    (tmp_path / "test_run.py").write_text(SQL_TEST.format(n=1))
    run = _start(tmp_path, run_tmpdir, "--cdc-backend=docker", "--cdc-keep-stack", "test_run.py")
    try:
        assert run.wait(timeout=600) == 0, _output(tmp_path)
        output = _output(tmp_path)
        assert "cdc:   stop it with: docker rm -f -v $(docker ps -aq --filter label=" in output
        kept = run_containers(run.pid)
        assert sorted(c.labels[COMPONENT_LABEL] for c in kept) == sorted(STACK), output
        status = _cdc_spec(tmp_path, run_tmpdir, "status")
        assert status.returncode == 0, status.stdout + status.stderr
        assert "docker stack started by pytest --cdc-keep-stack" in status.stdout
        down = _cdc_spec(tmp_path, run_tmpdir, "down")
        assert down.returncode == 0, down.stdout + down.stderr
        assert down.stdout.count("removed container cdc-spec-") == len(STACK), down.stdout
        assert not (tmp_path / "state" / "stack.json").exists()
    finally:
        _finish(run)
    _assert_nothing_left(run, run_tmpdir, tmp_path)


def _cdc_spec(project: Path, tmpdir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "cdc_support.cli", *args]
    return subprocess.run(
        command, env=_env(tmpdir, project), capture_output=True, text=True, timeout=300
    )
