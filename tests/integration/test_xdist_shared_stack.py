"""`pytest -n 2` shares one stack: one Kafka broker for every worker, stopped at the end.

Each run is a pytest subprocess with a TMPDIR of its own: every process of the stack names
that TMPDIR (its dir is under it), so the process table tells how many brokers the run has.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import threading
from pathlib import Path

import psutil
import pytest

from cdc_support.waiting import wait_until
from pytest_cdc.stack.native.stop import processes_mentioning

ROOT = Path(__file__).resolve().parents[2]
PYTEST = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--timeout=900"]
# Two features whose first scenarios need the stack at once on both workers. Not every feature:
# `make test` runs them all under -n 2 next, and running them twice at once starved the CPU.
FEATURES = ("features/postgres/debezium.feature", "features/mysql/binlog.feature")
HOLDING_TEST = """
import signal

def test_a(cdc_stack):
    signal.pause()

def test_b(cdc_stack):
    signal.pause()
"""


def _brokers(tmpdir: Path) -> set[int]:
    """Pids of the Kafka brokers (`kafka.Kafka` java processes) of the run under ``tmpdir``."""
    found = set()
    for proc in psutil.process_iter():
        with contextlib.suppress(psutil.Error):
            cmdline = proc.cmdline()
            if "kafka.Kafka" in cmdline and str(tmpdir) in " ".join(cmdline):
                found.add(proc.pid)
    return found


class BrokerWatch:
    """Polls the process table in a thread while a run goes on: the most brokers seen at once,
    and every broker pid seen."""

    def __init__(self, tmpdir: Path) -> None:
        self.tmpdir = tmpdir
        self.most_at_once = 0
        self.pids: set[int] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.2):
            now = _brokers(self.tmpdir)
            self.most_at_once = max(self.most_at_once, len(now))
            self.pids |= now

    def __enter__(self) -> BrokerWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def _env(tmpdir: Path, state: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CDC_", "PYTEST_"))}
    return {**env, "TMPDIR": str(tmpdir), "CDC_STATE_DIR": str(state)}


def _stack_processes(tmpdir: Path) -> list[str]:
    names = []
    for proc in processes_mentioning(str(tmpdir)):
        with contextlib.suppress(psutil.Error):
            names.append(" ".join(proc.cmdline()))
    return names


def _assert_nothing_left(tmpdir: Path) -> None:
    wait_until(
        lambda: _stack_processes(tmpdir),
        done=lambda names: not names,
        timeout=15,
        expected=f"no process naming {tmpdir} (its run has exited)",
    )
    assert sorted(tmpdir.glob("cdc-stack-*")) == [], "the stack dir was not removed"


def test_two_workers_share_one_broker_and_every_scenario_passes(
    run_tmpdir: Path, tmp_path: Path
) -> None:
    with BrokerWatch(run_tmpdir) as watch:
        run = subprocess.run(
            [*PYTEST, "-n", "2", "--cdc-backend=native", *FEATURES],
            cwd=ROOT,
            env=_env(run_tmpdir, tmp_path / "state"),
            capture_output=True,
            text=True,
            timeout=1800,
        )
    output = run.stdout + run.stderr
    assert run.returncode == 0, output[-6000:]
    summary = re.search(r"(\d+) passed", output)
    assert summary and int(summary.group(1)) >= 10, output[-3000:]
    assert not re.search(r"\d+ (failed|error|skipped)", output), output[-3000:]
    assert watch.most_at_once == 1, f"brokers at once: {watch.most_at_once}, pids {watch.pids}"
    assert len(watch.pids) == 1, f"one broker for the whole run, saw pids {watch.pids}"
    assert output.count("cdc:   kafka: ready in") == 1, output[-3000:]  # printed once
    _assert_nothing_left(run_tmpdir)


def test_sigterm_to_the_controller_stops_the_shared_stack(run_tmpdir: Path, tmp_path: Path) -> None:
    (tmp_path / "test_run.py").write_text(HOLDING_TEST)
    log = tmp_path / "run.log"
    with open(log, "wb") as out:
        run = subprocess.Popen(
            [*PYTEST, "-n", "2", "--cdc-backend=native", "test_run.py"],
            cwd=tmp_path,
            env=_env(run_tmpdir, tmp_path / "state"),
            stdout=out,
            stderr=out,
        )
    try:
        wait_until(
            lambda: (run.poll(), _stack_processes(run_tmpdir)),
            done=lambda seen: seen[0] is not None or "ConnectDistributed" in " ".join(seen[1]),
            timeout=600,
            interval=0.5,
            expected="the run's Kafka Connect worker to be running (its stack is up)",
            describe=lambda seen: f"exit {seen[0]}, processes {[p[:120] for p in seen[1]]}",
        )
        assert run.poll() is None, log.read_text(errors="replace")
        assert len(_brokers(run_tmpdir)) == 1
        run.send_signal(signal.SIGTERM)
        returncode = run.wait(timeout=300)
    finally:
        if run.poll() is None:
            run.kill()
    output = log.read_text(errors="replace")
    assert returncode == pytest.ExitCode.INTERRUPTED, output
    _assert_nothing_left(run_tmpdir)
