"""Sink worker fixtures: ``cdc-spec sink`` started as a real child process, killable for real.

``sink_worker_factory(topic, format="delta"|"iceberg")`` starts a worker on the stack's
Kafka, writing a table in a temp folder of its own, and waits until its metrics endpoint
answers. The returned :class:`SinkWorkerProcess` stops it gracefully (SIGTERM: the batch in
hand is committed), kills it (SIGKILL to its process group, as a crash would), restarts it
with the same options, and reads its metrics, commit log and table. Teardown stops every
worker and removes its folder.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import port_for
import psutil
import pytest
import requests

from cdc_support.sinks.base import MaintenancePolicy
from cdc_support.sinks.commit_log import read_commit_log
from cdc_support.sinks.config import FORMATS, SinkTarget, WorkerConfig
from cdc_support.sinks.metrics import parse_metrics
from cdc_support.waiting import wait_until
from pytest_cdc.fixtures import _Named
from pytest_cdc.process import ServiceProcess
from pytest_cdc.stack import Stack

__all__ = ["KillRecord", "SinkWorkerProcess", "sink_command", "sink_worker_factory"]

START_TIMEOUT = 60.0


def sink_command() -> list[str]:
    """How to run ``cdc-spec``: the console script next to this Python, else ``-m``."""
    script = Path(sys.executable).with_name("cdc-spec")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-m", "cdc_support.cli"]


@dataclass(frozen=True)
class KillRecord:
    """What a SIGKILL did: the process, how it ended, and whether anything is left of it."""

    pid: int
    returncode: int | None
    alive_after: bool
    commits_before: int

    @property
    def killed_by_sigkill(self) -> bool:
        """The process ended by signal 9 and is gone."""
        return self.returncode == -signal.SIGKILL and not self.alive_after

    def as_dict(self) -> dict[str, Any]:
        """For the report."""
        return {
            "pid": self.pid,
            "returncode": self.returncode,
            "signal": "SIGKILL" if self.returncode == -signal.SIGKILL else None,
            "process still exists": self.alive_after,
            "commits logged before the kill": self.commits_before,
        }


class SinkWorkerProcess:
    """One ``cdc-spec sink`` process (and its restarts) with its table, log and metrics."""

    def __init__(self, config: WorkerConfig, workdir: Path, name: str) -> None:
        self.config = config
        self.workdir = workdir
        self.name = name
        self.command = [*sink_command(), "sink", *config.to_args()]
        self.log_path = workdir / "worker.log"
        self.runs = 0
        self.kills: list[KillRecord] = []
        self._service: ServiceProcess | None = None

    def __repr__(self) -> str:
        return f"sink worker {self.name} ({self.config.target.format})"

    @property
    def target(self) -> SinkTarget:
        """The table it writes."""
        return self.config.target

    @property
    def metrics_url(self) -> str:
        """Its Prometheus endpoint."""
        return f"http://{self.config.metrics_host}:{self.config.metrics_port}/metrics"

    @property
    def pid(self) -> int | None:
        """PID of the running process, or None."""
        return self._service.pid if self._service else None

    def _probe(self, _: ServiceProcess) -> str | None:
        response = requests.get(self.metrics_url, timeout=2)
        if response.status_code != 200:
            return f"HTTP {response.status_code} from {self.metrics_url}"
        return None

    def start(self) -> SinkWorkerProcess:
        """Start the process; return once its metrics endpoint answers."""
        if self._service is not None and self._service.running():
            raise RuntimeError(f"{self!r} is running already (pid {self.pid})")
        # Known before it starts, so a teardown interrupted mid-start still stops it.
        self._service = ServiceProcess(
            f"sink worker {self.name}",
            self.command,
            log_path=self.log_path,
            probe=self._probe,
            awaited=f"HTTP 200 from {self.metrics_url}",
            timeout=START_TIMEOUT,
            stop_signal=signal.SIGTERM,
            hint="see the worker's log; `cdc-spec sink --help` lists its options.",
        )
        self._service.start()
        self.runs += 1
        return self

    def running(self) -> bool:
        """True while the process is alive."""
        return bool(self._service and self._service.running())

    def stop(self) -> None:
        """SIGTERM: it commits the batch in hand and exits 0; safe to call twice."""
        service, self._service = self._service, None
        if service is not None:
            try:
                service.stop()
            except Exception:
                service.kill()
                raise

    def kill(self) -> KillRecord:
        """SIGKILL its process group, as a crash would, and check that nothing is left."""
        service = self._service
        if service is None or not service.running():
            raise RuntimeError(f"{self!r} is not running: nothing to kill")
        executor = service._executor  # the Popen object tells how the process ended
        popen = executor.process if executor is not None else None
        pid = service.pid or -1
        commits = sum(1 for e in self.commit_log() if e.get("kind") == "commit")
        service.kill()
        self._service = None
        returncode = popen.returncode if popen is not None else None
        alive = psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
        record = KillRecord(pid, returncode, alive, commits)
        self.kills.append(record)
        return record

    def run_until_exit(self, timeout: float = START_TIMEOUT) -> subprocess.CompletedProcess[str]:
        """Run the worker in the foreground until it exits by itself (a worker that refuses
        what it was told); its exit status and output (also appended to its log)."""
        if self.running():
            raise RuntimeError(f"{self!r} is running already (pid {self.pid})")
        result = subprocess.run(self.command, capture_output=True, text=True, timeout=timeout)
        with self.log_path.open("a") as log:
            log.write(result.stdout + result.stderr)
        self.runs += 1
        return result

    def restart(self) -> SinkWorkerProcess:
        """Start again with the same options (same group, table and commit log)."""
        return self.start()

    def logs(self, lines: int = 60) -> str:
        """The last lines of its log (all runs)."""
        if self._service is not None:
            return self._service.logs(lines)
        try:
            return "".join(self.log_path.read_text(errors="replace").splitlines(True)[-lines:])
        except FileNotFoundError:
            return "(no log written)"

    def metrics_text(self) -> str:
        """The raw text of ``/metrics``."""
        response = requests.get(self.metrics_url, timeout=5)
        response.raise_for_status()
        return response.text

    def metrics(self) -> dict[str, float]:
        """Every sample of ``/metrics`` by ``name{labels}``."""
        return parse_metrics(self.metrics_text())

    def metric(self, name: str, default: float = 0.0) -> float:
        """One sample (``cdc_sink_events_consumed_total``, ...)."""
        return self.metrics().get(name, default)

    def commit_log(self) -> list[dict[str, Any]]:
        """Its commit log, every run."""
        assert self.config.commit_log is not None
        return read_commit_log(self.config.commit_log)

    def read_all(self) -> list[dict[str, Any]]:
        """Every row of the table (a key held twice shows up twice)."""
        sink = self.target.open(app_id=self.config.app_id)
        try:
            return sink.read_all()
        finally:
            sink.close()

    def rows(self) -> dict[tuple[Any, ...], dict[str, Any]]:
        """The table's current rows by key."""
        return {tuple(r[k] for k in self.target.key): r for r in self.read_all()}

    def table_columns(self) -> dict[str, Any]:
        """The table's columns (name -> Arrow type), {} while it does not exist."""
        sink = self.target.open(app_id=self.config.app_id)
        try:
            return sink.table_columns() or {}
        finally:
            sink.close()

    def history(self, limit: int = 20) -> list[dict[str, Any]]:
        """The table's latest commits (Delta history or Iceberg snapshots)."""
        sink = self.target.open(app_id=self.config.app_id)
        try:
            return sink.history(limit)
        finally:
            sink.close()

    def wait_applied(self, count: int, *, timeout: float) -> float:
        """Wait until this run committed ``count`` change events to the table (its metric
        ``cdc_sink_events_applied_total``); fails early if the process exited."""

        def probe() -> float:
            if not self.running():
                raise AssertionError(f"{self!r} exited; its log:\n{self.logs(30)}")
            return self.metrics().get("cdc_sink_events_applied_total", 0.0)

        return wait_until(
            probe,
            done=lambda applied: applied >= count,
            timeout=timeout,
            interval=0.25,
            expected=f"{self!r} to commit {count} change events to its table",
            describe=lambda applied: f"{applied:.0f} events committed",
            log_lines=lambda: self.logs(15).splitlines(),
        )


def _new_worker(
    stack: Stack,
    topic: str,
    fmt: str,
    key: tuple[str, ...],
    name: str,
    *,
    group: str | None,
    batch_size: int,
    batch_ms: int,
    policy: MaintenancePolicy | None,
    table_properties: dict[str, str] | None,
) -> SinkWorkerProcess:
    if fmt not in FORMATS:
        raise ValueError(f"unknown table format {fmt!r}; choose one of {', '.join(FORMATS)}")
    workdir = Path(tempfile.mkdtemp(prefix=f"cdc-sink-{name[:40]}-"))
    if fmt == "delta":
        target = SinkTarget("delta", key, table_uri=str(workdir / "table"))
    else:
        target = SinkTarget(
            "iceberg", key, warehouse=str(workdir / "warehouse"), table="sink.customers"
        )
    if table_properties:
        target = replace(target, table_properties=table_properties)
    config = WorkerConfig(
        bootstrap=stack.kafka_bootstrap,
        topic=topic,
        group=group or f"{name}-sink",
        target=target,
        batch_size=batch_size,
        batch_ms=batch_ms,
        metrics_port=port_for.select_random(),
        commit_log=str(workdir / "commit-log.jsonl"),
        policy=policy or MaintenancePolicy(),
    )
    return SinkWorkerProcess(config, workdir, name)


@pytest.fixture
def sink_worker_factory(
    cdc_stack: Stack, cdc_scenario_name: str, request: pytest.FixtureRequest
) -> Iterator[Callable[..., SinkWorkerProcess]]:
    """Start ``cdc-spec sink`` workers on the stack's Kafka; all are stopped (SIGTERM, then
    SIGKILL) and their folders removed after the test.

    ``make(topic, format="delta", key=("id",), batch_size=1000, batch_ms=300, start=True)``
    """
    made: list[SinkWorkerProcess] = []

    def make(
        topic: str,
        *,
        format: str = "delta",
        key: tuple[str, ...] = ("id",),
        group: str | None = None,
        batch_size: int = 1000,
        batch_ms: int = 300,
        policy: MaintenancePolicy | None = None,
        table_properties: dict[str, str] | None = None,
        start: bool = True,
    ) -> SinkWorkerProcess:
        name = cdc_scenario_name if not made else f"{cdc_scenario_name}_{len(made)}"
        worker = _new_worker(
            cdc_stack,
            topic,
            format,
            tuple(key),
            name,
            group=group,
            batch_size=batch_size,
            batch_ms=batch_ms,
            policy=policy,
            table_properties=table_properties,
        )
        made.append(worker)
        return worker.start() if start else worker

    yield _Named(make, f"sink workers on {cdc_stack.kafka_bootstrap}")
    problems: list[str] = []
    for worker in made:
        try:
            worker.stop()
        except Exception as exc:
            problems.append(f"stopping {worker!r}: {exc}")
        shutil.rmtree(worker.workdir, ignore_errors=True)
    for problem in problems:
        request.node.warn(pytest.PytestWarning(f"cdc teardown: {problem}"))
