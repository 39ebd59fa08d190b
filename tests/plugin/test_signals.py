"""SIGTERM and SIGHUP clean up like Ctrl-C; the --cdc-keep-stack stop command really stops.

The stack-backed tests run pytest as a subprocess in a project folder of its own, with a
TMPDIR of its own: every process of that run names the TMPDIR in its environment or command
line, so scanning for it finds whatever the run leaves behind.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from cdc_support.waiting import wait_until
from pytest_cdc.signals import StopSignals
from pytest_cdc.stack.native.stop import processes_mentioning, stop_stack_dir

PYTEST = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-s"]
HOLDING_TEST = """
import signal

def test_holds_stack_and_sink_worker(cdc_stack, sink_worker_factory):
    worker = sink_worker_factory("cdc-signal-test")
    print(f"HOLDING with sink worker pid {worker.pid}", flush=True)
    signal.pause()  # held here until the signal under test arrives
"""
STACK_TEST = "def test_starts_stack(cdc_stack):\n    pass\n"
SERVERS = ("postgres", "mariadbd", "java")


# --- the handlers themselves ---------------------------------------------------------


@pytest.fixture
def stop_signals() -> Iterator[StopSignals]:
    handlers = StopSignals()
    assert handlers.install()
    yield handlers
    handlers.restore()


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP])
def test_signal_becomes_keyboard_interrupt(stop_signals: StopSignals, signum: int) -> None:
    with pytest.raises(KeyboardInterrupt, match=f"{signal.Signals(signum).name} received"):
        signal.raise_signal(signum)
    signal.raise_signal(signum)  # a second one must not interrupt the cleanup under way
    assert stop_signals.received == signal.Signals(signum).name


def test_signal_during_teardown_interrupts_once_it_is_done(stop_signals: StopSignals) -> None:
    done = []
    with pytest.raises(KeyboardInterrupt, match="SIGTERM received"), stop_signals.held():
        signal.raise_signal(signal.SIGTERM)
        done.append("teardown finished")
    assert done == ["teardown finished"]


def test_restore_puts_back_the_previous_handlers() -> None:
    before = signal.getsignal(signal.SIGTERM)
    handlers = StopSignals()
    handlers.install()
    assert signal.getsignal(signal.SIGTERM) != before
    handlers.restore()
    assert signal.getsignal(signal.SIGTERM) == before


def test_stop_finds_unrecorded_processes_by_dir_waits_then_removes_it(tmp_path: Path) -> None:
    """What a SIGKILLed run leaves: no processes.json, only processes naming the dir."""
    workdir = tmp_path / "cdc-stack-left"
    workdir.mkdir()
    code = "import signal, sys; signal.signal(signal.SIGTERM, lambda *a: sys.exit(0)); "
    code += "print('up', flush=True); signal.pause()"
    child = subprocess.Popen(
        [sys.executable, "-c", code, str(workdir)], stdout=subprocess.PIPE, start_new_session=True
    )
    try:
        assert child.stdout is not None and child.stdout.readline() == b"up\n"
        lines = stop_stack_dir(workdir, timeout=30)
        assert child.poll() == 0, lines  # it was stopped (SIGTERM) before the dir went
        assert [line.split(" (")[0] for line in lines] == [
            f"SIGTERM to pid {child.pid}",
            f"removed {workdir}",
        ]
        assert not workdir.exists()
    finally:
        child.kill()
        child.wait()


# --- real runs -----------------------------------------------------------------------


def _start_run(project: Path, tmpdir: Path, test: str, *args: str) -> subprocess.Popen[bytes]:
    (project / "test_run.py").write_text(test)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CDC_", "PYTEST_"))}
    env["TMPDIR"] = str(tmpdir)
    env["CDC_STATE_DIR"] = str(project / "state")  # --cdc-keep-stack records its stack there
    with open(project / "run.log", "wb") as log:
        return subprocess.Popen(
            [*PYTEST, *args, "test_run.py"], cwd=project, env=env, stdout=log, stderr=log
        )


def _cdc_spec(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CDC_STATE_DIR": str(project / "state")}
    command = [sys.executable, "-m", "cdc_support.cli", *args]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=180)


def _output(project: Path) -> str:
    return (project / "run.log").read_text(errors="replace")


def _wait_for_line(run: subprocess.Popen[bytes], project: Path, text: str) -> None:
    def probe() -> str:
        if run.poll() is not None:
            raise AssertionError(f"the run exited ({run.returncode}):\n{_output(project)}")
        return _output(project)

    wait_until(
        probe,
        done=lambda out: text in out,
        timeout=600,
        interval=0.5,
        expected=f"the run to print {text!r}",
        describe=lambda out: repr(out[-400:]),
    )


def _names(marker: Path) -> list[str]:
    names = []
    for proc in processes_mentioning(str(marker)):
        try:
            names.append(" ".join(proc.cmdline()))
        except Exception:
            continue
    return names


def _assert_nothing_left(marker: Path) -> None:
    wait_until(
        lambda: _names(marker),
        done=lambda names: not names,
        timeout=10,
        expected=f"no process naming {marker} (its run has exited)",
    )
    assert sorted(p.name for p in marker.iterdir()) == []


@pytest.mark.parametrize(
    ("signum", "when"),
    [
        (signal.SIGTERM, "HOLDING"),
        (signal.SIGHUP, "HOLDING"),
        (signal.SIGTERM, "cdc:   kafka: starting"),  # while the stack is still starting
    ],
    ids=["sigterm-stack-up", "sighup-stack-up", "sigterm-while-starting"],
)
def test_signal_stops_everything_the_run_started(
    signum: int, when: str, run_tmpdir: Path, tmp_path: Path
) -> None:
    run = _start_run(tmp_path, run_tmpdir, HOLDING_TEST, "--cdc-backend=native")
    try:
        _wait_for_line(run, tmp_path, when)
        if when == "HOLDING":
            running = " | ".join(_names(run_tmpdir))
            for part in (*SERVERS, "ConnectDistributed", "kafka.Kafka", " sink "):
                assert part in running, f"{part!r} not among the run's processes: {running}"
        run.send_signal(signum)
        returncode = run.wait(timeout=300)
    finally:
        if run.poll() is None:
            run.kill()
    output = _output(tmp_path)
    assert returncode == pytest.ExitCode.INTERRUPTED, output
    assert f"KeyboardInterrupt: {signal.Signals(signum).name} received" in output, output
    _assert_nothing_left(run_tmpdir)


def test_keep_stack_stop_command_waits_for_the_processes_then_removes_the_dir(
    run_tmpdir: Path, tmp_path: Path
) -> None:
    run = _start_run(tmp_path, run_tmpdir, STACK_TEST, "--cdc-backend=native", "--cdc-keep-stack")
    try:
        assert run.wait(timeout=600) == 0, _output(tmp_path)
        output = _output(tmp_path)
        command = re.search(r"cdc:\s+stop it with: (.+)", output)
        assert command, output
        (workdir,) = run_tmpdir.glob("cdc-stack-*")
        running = " | ".join(_names(workdir))
        for part in SERVERS:
            assert part in running, f"{part!r} not running after the run: {running}"
        record = json.loads((tmp_path / "state" / "stack.json").read_text())
        assert record["started_by"] == "pytest --cdc-keep-stack", record
        assert _cdc_spec(tmp_path, "status").returncode == 0, "cdc-spec status: the kept stack"
        stopped = subprocess.run(
            command.group(1), shell=True, capture_output=True, text=True, timeout=180
        )
        assert stopped.returncode == 0, stopped.stdout + stopped.stderr
        assert _names(workdir) == []  # gone when the command returns, not some time later
        assert not workdir.exists()
        status = _cdc_spec(tmp_path, "status")
        assert status.returncode == 1, (
            status.stdout + status.stderr
        )  # the record names a gone stack
        down = _cdc_spec(tmp_path, "down")
        assert down.returncode == 0, down.stdout + down.stderr
        assert not (tmp_path / "state" / "stack.json").exists(), "down clears a stale record"
    finally:
        for leftover in run_tmpdir.glob("cdc-stack-*"):
            subprocess.run([sys.executable, "-m", "pytest_cdc.stack.native.stop", str(leftover)])
