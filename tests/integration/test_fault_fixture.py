"""``cdc_fault`` on a real stack: a killed Connect worker comes back and its connector streams
again; a restarted broker and a killed PostgreSQL answer at once afterwards; a sink worker is
a target too; a target that does not come back is one line; every fault is recorded, and
attached to a scenario's Allure result (a plain test's, which Allure has no test case for, are
not: attaching there would break it). Under ``pytest -n`` the fixture skips, saying why and
how to run fault scenarios.

Run without ``-n``: the faults hit the session's stack (each test leaves it answering).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psycopg
import pytest
from confluent_kafka.admin import AdminClient

from cdc_support.kafka.connect import ConnectClient
from cdc_support.kafka.topics import TopicReader
from cdc_support.postgres.loader import create_schema
from cdc_support.sinks.dlq import ensure_topic
from pytest_cdc.fixtures.faults import FaultInjector, FaultNotRecovered, FaultRecord

pytestmark = [pytest.mark.postgres, pytest.mark.debezium, pytest.mark.fault]

ROOT = Path(__file__).resolve().parents[2]
BACK_WITHIN = 180.0
"""A fault's seconds down we accept on this (busy, 2-core) machine."""


def _insert(conn: psycopg.Connection, key: int) -> None:
    conn.execute(
        "INSERT INTO customers VALUES (%s, %s, 'Jo', 'FR', now())", (key, f"{key}@fault.test")
    )


def _arrives(reader: TopicReader, key: int, *, timeout: float = 120.0) -> None:
    reader.read_until(
        lambda seen: any(e.key == (key,) and e.op == "c" for e in seen.events),
        timeout=timeout,
        expected=f"the insert of customer {key}",
    )


def _sane(record: FaultRecord, action: str, target: str, before: float) -> None:
    """The record names the fault, and its times are of this fault."""
    assert (record.action, record.target) == (action, target), record
    assert before <= record.injected_at < record.back_at <= time.time(), record
    assert record.seconds_down == pytest.approx(record.back_at - record.injected_at, abs=0.01)
    assert 0 < record.seconds_down < BACK_WITHIN, record


@pytest.fixture
def streaming(
    pg_conn: psycopg.Connection, pg_connector_factory, kafka_reader_factory
) -> tuple[Any, TopicReader]:
    """A Debezium connector on the test's ``customers`` table, its first insert read."""
    create_schema(pg_conn)
    connector = pg_connector_factory(["customers"])
    reader = kafka_reader_factory([connector.topic("customers")])
    _insert(pg_conn, 1)
    _arrives(reader, 1)
    return connector, reader


def test_a_killed_connect_worker_is_back_and_its_connector_streams_again(
    cdc_fault: FaultInjector,
    streaming: tuple[Any, TopicReader],
    pg_conn: psycopg.Connection,
    connect_client: ConnectClient,
) -> None:
    connector, reader = streaming
    before = time.time()
    record = cdc_fault.inject("kill", "connect")
    _sane(record, "kill", "connect", before)
    assert connect_client.connectors(), "Connect answers its REST API as soon as it is back"

    status = connect_client.wait_running(connector.name, timeout=120)
    assert status.tasks == ("RUNNING",), status
    _insert(pg_conn, 2)
    _arrives(reader, 2)
    assert cdc_fault.records == [record]
    print(f"connect kill: {record.seconds_down:.1f}s down")


def test_a_restarted_broker_answers_and_the_changes_flow_again(
    cdc_fault: FaultInjector, streaming: tuple[Any, TopicReader], pg_conn: psycopg.Connection
) -> None:
    _, reader = streaming
    before = time.time()
    record = cdc_fault.inject("restart", "kafka")
    _sane(record, "restart", "kafka", before)
    admin = AdminClient({"bootstrap.servers": cdc_fault.stack.kafka_bootstrap})
    assert admin.list_topics(timeout=10).brokers, "the broker answers as soon as it is back"

    _insert(pg_conn, 2)
    _arrives(reader, 2)
    print(f"kafka restart: {record.seconds_down:.1f}s down")


def test_a_killed_postgres_stays_down_as_asked_then_answers_at_once(
    cdc_fault: FaultInjector, pg_database
) -> None:
    before = time.time()
    record = cdc_fault.inject("kill", "postgres", down_for=2.0)
    _sane(record, "kill", "postgres", before)
    assert record.seconds_down >= 2.0 and record.down_for == 2.0, record

    with psycopg.connect(pg_database.dsn, connect_timeout=5) as conn:  # no retry: it is up
        (started,) = conn.execute(
            "SELECT extract(epoch FROM pg_postmaster_start_time())"
        ).fetchone()
    assert record.injected_at < float(started) < record.back_at, "a new postmaster, started again"
    print(f"postgres kill: {record.seconds_down:.1f}s down (2.0s of them on purpose)")


def test_a_sink_worker_is_a_target_and_its_kill_is_in_the_record(
    cdc_fault: FaultInjector, sink_worker_factory, cdc_scenario_name: str
) -> None:
    topic = f"{cdc_scenario_name}.customers"
    ensure_topic(AdminClient({"bootstrap.servers": cdc_fault.stack.kafka_bootstrap}), topic)
    worker = sink_worker_factory(topic)
    first_pid = worker.pid

    killed = cdc_fault.inject("kill", worker)
    assert killed.target == worker.name and killed.detail["signal"] == "SIGKILL", killed
    assert killed.detail["pid"] == first_pid and worker.running() and worker.pid != first_pid
    assert worker.metrics_problem() is None, "its metrics answer as soon as it is back"

    restarted = cdc_fault.inject("restart", worker)  # SIGTERM, then start again
    assert worker.running() and worker.runs == 3 and not restarted.detail
    assert [r.action for r in cdc_fault.records] == ["kill", "restart"]


def test_a_target_that_does_not_come_back_is_one_line_naming_it_and_what_was_awaited(
    cdc_fault: FaultInjector, sink_worker_factory, cdc_scenario_name: str
) -> None:
    topic = f"{cdc_scenario_name}.customers"
    ensure_topic(AdminClient({"bootstrap.servers": cdc_fault.stack.kafka_bootstrap}), topic)
    worker = sink_worker_factory(topic)
    with socket.socket() as taken:  # its metrics port, taken while it is down
        worker.stop()
        taken.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # past its TIME_WAIT
        taken.bind(("127.0.0.1", worker.config.metrics_port))
        taken.listen()
        with pytest.raises(FaultNotRecovered) as failed:
            cdc_fault.inject("restart", worker)
    message = str(failed.value)
    assert "\n" not in message, message
    assert message.startswith(
        f"{worker.name} did not come back after a restart: sink worker {worker.name} did not "
        f"start: waited for HTTP 200 from {worker.metrics_url}"
    ), message
    assert "; seen: the process exited with code" in message, message
    assert cdc_fault.records == [] and not worker.running()


def test_what_cannot_be_faulted_is_refused_before_anything_is_done(
    cdc_fault: FaultInjector,
) -> None:
    with pytest.raises(ValueError, match="unknown component 'zookeeper'; this stack has: postgres"):
        cdc_fault.inject("kill", "zookeeper")
    with pytest.raises(ValueError, match="unknown fault 'pause'; choose kill or restart"):
        cdc_fault.inject("pause", "kafka")
    with pytest.raises(TypeError, match="has name, kill\\(\\) and restart\\(\\)"):
        cdc_fault.inject("kill", object())  # type: ignore[arg-type]
    assert cdc_fault.records == []


def _own_env(tmpdir: Path, state: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CDC_", "PYTEST_"))}
    return {**env, "TMPDIR": str(tmpdir), "CDC_STATE_DIR": str(state), "COLUMNS": "300"}


FAULT_STEPS = """
from pytest_bdd import given, then


@given("PostgreSQL killed", target_fixture="record")
def killed(cdc_fault):
    return cdc_fault.inject("kill", "postgres")


@then("it is back")
def back(record):
    assert record.back_at > record.injected_at
"""
FAULT_FEATURE = """Feature: Faults
  Scenario: A killed PostgreSQL
    Given PostgreSQL killed
    Then it is back
"""
PLAIN_TEST = """
def test_plain(cdc_fault):
    assert cdc_fault.inject("kill", "postgres").seconds_down > 0
"""


def test_a_scenario_s_faults_are_attached_to_its_report_and_a_plain_test_s_are_not(
    tmp_path: Path, run_tmpdir: Path
) -> None:
    project = tmp_path / "project"
    project.mkdir()
    (project / "conftest.py").write_text(FAULT_STEPS)
    (project / "faults.feature").write_text(FAULT_FEATURE)
    (project / "test_plain.py").write_text(PLAIN_TEST)
    (project / "pytest.ini").write_text("[pytest]\ncdc_collect_features = true\n")
    alluredir = tmp_path / "allure-results"
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--cdc-backend=native",
         f"--alluredir={alluredir}", "faults.feature", "test_plain.py"],
        cwd=project,
        env=_own_env(run_tmpdir, tmp_path / "state"),
        capture_output=True,
        text=True,
        timeout=900,
    )  # fmt: skip
    output = run.stdout + run.stderr
    assert run.returncode == 0 and "2 passed" in output, output[-3000:]
    results = [json.loads(p.read_text()) for p in alluredir.glob("*-result.json")]
    (scenario,) = [r for r in results if r["name"] == "A killed PostgreSQL"]
    (attached,) = [a for a in scenario["attachments"] if a["name"] == "faults injected"]
    (record,) = json.loads((alluredir / attached["source"]).read_text())
    assert (record["action"], record["target"]) == ("kill", "postgres"), record
    assert record["back_at"] > record["injected_at"] > scenario["start"] / 1000 - 1, record


def test_under_xdist_a_fault_is_skipped_saying_to_run_without_n(
    tmp_path: Path, run_tmpdir: Path
) -> None:
    (tmp_path / "test_fault.py").write_text(
        "def test_kill_kafka(cdc_fault):\n    cdc_fault.inject('kill', 'kafka')\n"
    )
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-n", "2", "-rs",
         "--cdc-backend=native", "test_fault.py"],
        cwd=tmp_path,
        env=_own_env(run_tmpdir, tmp_path / "state"),
        capture_output=True,
        text=True,
        timeout=900,
    )  # fmt: skip
    output = run.stdout + run.stderr
    assert run.returncode == 0 and "1 skipped" in output, output[-3000:]
    assert (
        "a stack shared by pytest-xdist workers cannot be faulted (a kill would break the other "
        "workers' tests); run fault scenarios without -n, e.g. `pytest features/faults`"
    ) in output, output[-3000:]
