"""Sink workers and the stack's observability, for real: a running worker (process or
container) is a scrape target of the stack's Prometheus until it stops, is killed or fails to
start; its log is JSON lines in the stack's log dir, and the harness logs what it did with it.
"""

from __future__ import annotations

import json
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka.admin import AdminClient

from cdc_support.observability.prometheus import PrometheusClient
from cdc_support.sinks.dlq import ensure_topic
from cdc_support.waiting import wait_until
from pytest_cdc.errors import StackStartError
from pytest_cdc.fixtures._sink_containers import SinkWorkerContainer
from pytest_cdc.fixtures.sinks import SinkWorkerBase, SinkWorkerProcess, new_worker
from pytest_cdc.report.failure_logs import harness_log_name

KINDS = {"process": SinkWorkerProcess, "container": SinkWorkerContainer}


@pytest.fixture(params=sorted(KINDS))
def make_worker(cdc_stack, request) -> Iterator[Any]:
    """Workers of one kind on the session stack; closed (and their folders removed) after."""
    made: list[SinkWorkerBase] = []

    def make(topic: str) -> SinkWorkerBase:
        name = f"registrationtest_{request.param}_{uuid.uuid4().hex[:6]}"
        worker = new_worker(cdc_stack, topic, "delta", ("id",), name, kind=KINDS[request.param])
        made.append(worker)
        return worker

    yield make
    for worker in made:
        worker.close()
        if worker.workdir.exists():  # one test removes it itself
            shutil.rmtree(worker.workdir)


def _topic(bootstrap: str) -> str:
    topic = f"sinkregistration_{uuid.uuid4().hex[:8]}"
    ensure_topic(AdminClient({"bootstrap.servers": bootstrap}), topic)
    return topic


def _sink_instances(prometheus: PrometheusClient) -> set[str]:
    return {t.instance for t in prometheus.targets() if t.job == "sink"}


def test_a_running_worker_is_a_scrape_target_until_it_stops_or_is_killed(
    cdc_stack, cdc_prometheus: PrometheusClient, make_worker
) -> None:
    targets = Path(cdc_stack.endpoints.scrape_targets_dir)
    topic = _topic(cdc_stack.kafka_bootstrap)
    worker = make_worker(topic)
    target_file = targets / f"{worker.name}.json"
    assert not target_file.exists()

    worker.start()
    address = f"127.0.0.1:{worker.config.metrics_port}"
    labels = {"instance": worker.name, "format": "delta", "topic": topic}
    assert json.loads(target_file.read_text()) == [{"targets": [address], "labels": labels}]
    selector = f'job="sink",instance="{worker.name}",format="delta",topic="{topic}"'
    cdc_prometheus.wait_for(
        f"cdc_sink_assigned_partitions{{{selector}}}",
        done=lambda samples: [s.value for s in samples] == [1.0],
        timeout=60,
        expected=f"Prometheus to scrape {worker!r} (1 partition assigned)",
    )

    worker.stop()
    assert not target_file.exists()
    wait_until(
        lambda: _sink_instances(cdc_prometheus),
        done=lambda instances: worker.name not in instances,
        timeout=30,
        expected=f"Prometheus to drop the stopped {worker!r} from job sink",
    )

    worker.restart()
    assert target_file.exists()
    record = worker.kill()
    assert record.killed_by_sigkill, record
    assert not target_file.exists()


def test_a_worker_that_fails_to_start_leaves_no_target_and_logs_json_why(
    cdc_stack, make_worker
) -> None:
    targets = Path(cdc_stack.endpoints.scrape_targets_dir)
    worker = make_worker(_topic(cdc_stack.kafka_bootstrap))
    table = Path(str(worker.target.table_uri))
    table.write_text("a file where the table should be")
    with pytest.raises(StackStartError):
        worker.start()
    assert not (targets / f"{worker.name}.json").exists()
    assert worker.log_path == Path(cdc_stack.endpoints.log_dir) / f"sink-{worker.name}.log"
    lines = [json.loads(line) for line in worker.log_path.read_text().splitlines()]  # all JSON
    error = next(line for line in lines if line["level"] == "ERROR")
    assert f"--table-uri {table}" in error["message"]
    assert (error["component"], error["table"]) == ("sink", str(table))


def test_a_workers_log_is_json_lines_in_the_log_dir_and_outlives_its_folder(
    cdc_stack, make_worker, pytestconfig
) -> None:
    topic = _topic(cdc_stack.kafka_bootstrap)
    worker = make_worker(topic)
    worker.start()
    worker.stop()
    log_path = worker.log_path
    assert log_path.parent == Path(cdc_stack.endpoints.log_dir)
    tail = worker.logs(5).splitlines()
    assert tail and all(json.loads(line)["component"] == "sink" for line in tail), tail
    stopped = json.loads(tail[-1])
    assert "stopped after" in stopped["message"]
    assert (stopped["topic"], stopped["table"]) == (topic, worker.target.table_uri)
    worker.close()
    shutil.rmtree(worker.workdir)
    assert log_path.read_text().splitlines()[-1] == tail[-1]

    harness = Path(cdc_stack.endpoints.log_dir) / harness_log_name(pytestconfig)
    said = [json.loads(line) for line in harness.read_text().splitlines()]
    about = [line for line in said if line.get("topic") == topic]
    assert len(about) == 2, about
    assert " started (" in about[0]["message"] and about[1]["message"].endswith(" stopped")
    assert all(line["logger"] == "pytest_cdc.fixtures.sinks" for line in about)
