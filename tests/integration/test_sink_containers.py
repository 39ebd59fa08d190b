"""Sink workers as ``cdc-spec/sink`` containers (what ``sink_worker_factory`` runs under the
docker backend) on the session's real Kafka: the container writes a Delta table this host
reads, dies by SIGKILL for real, and its restart resumes without loss or duplicates."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka.admin import AdminClient

from cdc_support.checks.integrity import compare_tables
from cdc_support.sinks.commit_log import audit
from cdc_support.sinks.dlq import ensure_topic
from cdc_support.sinks.envelopes import customer_changes, produce
from cdc_support.waiting import wait_until
from cdc_support.workload import NORMALIZERS
from pytest_cdc.fixtures._sink_containers import IMAGE_UID, SinkWorkerContainer
from pytest_cdc.fixtures.sinks import SinkWorkerBase, new_worker
from pytest_cdc.stack.docker.cleanup import find_containers
from pytest_cdc.stack.docker.containers import COMPONENT_LABEL, OWNER_PID_LABEL

TIMEOUT = 90


def _containers(worker: SinkWorkerContainer) -> list[Any]:
    """Every container (running or not) of this worker's session."""
    return find_containers(worker.session)


@pytest.fixture
def make_container_worker(cdc_stack) -> Iterator[Any]:
    """Container workers on the stack's Kafka (whatever its backend); closed and removed
    after the test, and checked to leave no container behind."""
    made: list[SinkWorkerBase] = []

    def make(topic: str, fmt: str = "delta") -> SinkWorkerContainer:
        name = f"containertest_{uuid.uuid4().hex[:6]}"
        worker = new_worker(cdc_stack, topic, fmt, ("id",), name, batch_size=200,
                            kind=SinkWorkerContainer)  # fmt: skip
        made.append(worker)
        assert isinstance(worker, SinkWorkerContainer)
        return worker

    yield make
    for worker in made:
        worker.close()
        assert _containers(worker) == [], f"{worker!r} left containers behind"
        shutil.rmtree(worker.workdir)  # the host can remove what the container wrote


def _topic(bootstrap: str) -> str:
    topic = f"sinkcontainer_{uuid.uuid4().hex[:8]}"
    ensure_topic(AdminClient({"bootstrap.servers": bootstrap}), topic)
    return topic


def test_a_sink_container_writes_a_table_the_host_reads_and_resumes_after_sigkill(
    cdc_stack, make_container_worker
):
    bootstrap = cdc_stack.kafka_bootstrap
    topic = _topic(bootstrap)
    changes = customer_changes(600, seed=21, initial_rows=50)
    half = len(changes.records) // 2
    first, second = changes.records[:half], changes.records[half:]
    produce(bootstrap, topic, first)
    worker = make_container_worker(topic).start()

    # a labelled container on the host network, the folder mounted at the same path
    (container,) = _containers(worker)
    attrs = container.attrs
    assert attrs["HostConfig"]["NetworkMode"] == "host"
    assert attrs["Config"]["Labels"][COMPONENT_LABEL] == "sink"
    mounts = {(m["Source"], m["Destination"]) for m in attrs["Mounts"]}
    assert (str(worker.workdir), str(worker.workdir)) in mounts
    assert attrs["Config"]["Cmd"][0] == "sink"
    assert worker.pid and worker.running()
    assert worker.image in worker.command  # the report shows the exact image ref

    worker.wait_applied(sum(1 for _, v in first if v is not None), timeout=TIMEOUT)
    assert worker.metric("cdc_sink_assigned_partitions") == 1.0
    owner = IMAGE_UID if os.geteuid() == 0 else os.getuid()  # see SinkWorkerContainer.user
    assert worker.workdir.joinpath("table", "_delta_log").stat().st_uid == owner
    assert worker.read_all(), "the host reads the Delta table the container wrote"

    record = worker.kill()
    assert record.killed_by_sigkill, record
    assert record.returncode == 137 and record.container == container.short_id
    assert record.as_dict()["signal"] == "SIGKILL"
    assert not record.alive_after and not worker.running()
    assert _containers(worker) == []  # the killed container is removed, its log kept

    produce(bootstrap, topic, second)
    worker.restart()
    assert worker.runs == 2
    worker.wait_applied(sum(1 for _, v in second if v is not None), timeout=TIMEOUT)
    worker.stop()  # SIGTERM: exit status 0, or stop() raises

    report = compare_tables(changes.rows, worker.rows(), normalizers=NORMALIZERS)
    assert report.ok, report.summary()
    entries = worker.commit_log()
    result = audit(entries)
    assert result.runs == 2 and result.exactly_once, result.as_dict()
    assert [e for e in entries if e["kind"] == "start"][-1].get("stored")
    assert "stopped after" in worker.logs(5)


def test_a_sink_container_that_refuses_its_options_exits_2_with_one_line(
    cdc_stack, make_container_worker
):
    worker = make_container_worker(f"sinkcontainer_missing_{uuid.uuid4().hex[:8]}", "iceberg")
    refusing = SinkWorkerContainer(
        replace(worker.config, require_topic=True), worker.workdir, worker.name
    )
    result = refusing.run_until_exit(timeout=TIMEOUT)
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "does not exist" in lines[0], result.stderr
    assert _containers(refusing) == []
    assert "does not exist" in refusing.logs(5)


HOLDING_TEST = """
import signal

def test_holds_a_sink_container(cdc_stack, sink_worker_factory):
    worker = sink_worker_factory("cdc-sigterm-sink")
    print(f"HOLDING sink container {worker.container_id}", flush=True)
    signal.pause()  # held here until the SIGTERM under test arrives
"""


def _owned_by(pid: int) -> list[str]:
    """Names of the cdc-spec containers (any state) the process ``pid`` started."""
    return [c.name for c in find_containers() if c.labels.get(OWNER_PID_LABEL) == str(pid)]


def test_sigterm_mid_run_leaves_no_sink_container_and_no_folder(
    run_tmpdir: Path, tmp_path: Path
) -> None:
    (tmp_path / "test_hold.py").write_text(HOLDING_TEST)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CDC_", "PYTEST_"))}
    log = tmp_path / "run.log"
    with log.open("wb") as out:
        run = subprocess.Popen(
            [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-s",
             "--cdc-backend=docker", "test_hold.py"],
            cwd=tmp_path, env={**env, "TMPDIR": str(run_tmpdir)}, stdout=out, stderr=out,
        )  # fmt: skip
    try:

        def probe() -> str:
            if run.poll() is not None:
                raise AssertionError(f"the run exited ({run.returncode}):\n{log.read_text()}")
            return log.read_text(errors="replace")

        wait_until(probe, done=lambda out: "HOLDING" in out, timeout=600, interval=0.5,
                   expected="the run to hold a sink container",
                   describe=lambda out: repr(out[-400:]))  # fmt: skip
        sinks = [
            c for c in find_containers()
            if c.labels.get(OWNER_PID_LABEL) == str(run.pid)
            and c.labels.get(COMPONENT_LABEL) == "sink" and c.status == "running"
        ]  # fmt: skip
        assert len(sinks) == 1, _owned_by(run.pid)
        assert sinks[0].short_id in log.read_text()
        run.send_signal(signal.SIGTERM)
        returncode = run.wait(timeout=300)
    finally:
        if run.poll() is None:
            run.kill()
            run.wait()
    output = log.read_text(errors="replace")
    assert returncode == pytest.ExitCode.INTERRUPTED, output
    assert _owned_by(run.pid) == [], output
    assert sorted(p.name for p in run_tmpdir.iterdir()) == [], "the run left folders behind"
