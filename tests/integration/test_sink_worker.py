"""Sink workers on the session's real Kafka broker, with Delta and Iceberg tables in tmp_path."""

from __future__ import annotations

import subprocess
import time
import uuid
from pathlib import Path

import port_for
import pytest
from confluent_kafka.admin import AdminClient

from cdc_support.bench import sink as sink_bench
from cdc_support.checks.integrity import compare_tables
from cdc_support.sinks.commit_log import audit, read_commit_log
from cdc_support.sinks.config import SinkTarget, WorkerConfig
from cdc_support.sinks.dlq import ensure_topic, read_dead_letters
from cdc_support.sinks.envelopes import customer_changes, produce
from cdc_support.sinks.worker import SinkWorker
from cdc_support.workload import NORMALIZERS
from pytest_cdc.process import cdc_spec_command


def _topic(bootstrap: str) -> str:
    topic = f"sinktest_{uuid.uuid4().hex[:8]}"
    ensure_topic(AdminClient({"bootstrap.servers": bootstrap}), topic)
    return topic


def _target(fmt: str, tmp_path: Path) -> SinkTarget:
    if fmt == "delta":
        return SinkTarget("delta", ("id",), table_uri=str(tmp_path / "table"))
    return SinkTarget("iceberg", ("id",), warehouse=str(tmp_path / "wh"), table="t.customers")


def _run(bootstrap, topic, target, log, *, group=None, until_offset):
    config = WorkerConfig(
        bootstrap=bootstrap,
        topic=topic,
        group=group or f"g_{uuid.uuid4().hex[:6]}",
        target=target,
        batch_size=300,
        batch_ms=200,
        commit_log=str(log),
    )
    worker = SinkWorker(config)
    worker.run(until=lambda w: w.positions_reached({(topic, 0): until_offset}))
    return worker


@pytest.fixture(params=["delta", "iceberg"])
def fmt(request):
    return request.param


def test_a_worker_applies_a_topic_and_a_second_one_skips_what_the_table_holds(
    cdc_stack, tmp_path, fmt
):
    bootstrap = cdc_stack.kafka_bootstrap
    topic = _topic(bootstrap)
    changes = customer_changes(1500, seed=9, initial_rows=100)
    total = produce(bootstrap, topic, changes.records)
    target = _target(fmt, tmp_path)
    log = tmp_path / "log.jsonl"
    first = _run(bootstrap, topic, target, log, until_offset=total)
    sink = target.open()
    report = compare_tables(changes.rows, sink.read_rows(), normalizers=NORMALIZERS)
    assert report.ok, report.summary()
    history_before = len(sink.history(1000))
    sink.close()
    consumed = first.metrics.registry.get_sample_value("cdc_sink_events_consumed_total")
    assert consumed == changes.change_events

    # a new consumer group reads from offset 0: the table's position says it all is applied
    _run(bootstrap, topic, target, log, until_offset=total)
    entries = read_commit_log(log)
    second_run = entries[[i for i, e in enumerate(entries) if e["kind"] == "start"][1] :]
    assert not [e for e in second_run if e["kind"] == "commit"]
    result = audit(entries)
    assert result.exactly_once, result.as_dict()
    sink = target.open()
    # Delta: no new version; Iceberg: only the claim's empty snapshot
    assert len(sink.history(1000)) == history_before + (1 if fmt == "iceberg" else 0)
    sink.close()
    if fmt == "delta":
        assert result.skipped_records == total  # read again from 0, every record skipped
    else:
        assert result.skipped_records == 0  # seeked to the snapshot's offsets


def test_a_record_that_cannot_be_parsed_goes_to_the_dead_letter_topic(cdc_stack, tmp_path):
    bootstrap = cdc_stack.kafka_bootstrap
    topic = _topic(bootstrap)
    changes = customer_changes(200, seed=4)
    records = [*changes.records[:100], (b'{"id": 1}', b"{broken"), *changes.records[100:]]
    total = produce(bootstrap, topic, records)
    target = _target("delta", tmp_path)
    worker = _run(bootstrap, topic, target, tmp_path / "log.jsonl", until_offset=total)
    letters = read_dead_letters(bootstrap, f"{topic}.dlq", count=1, timeout=30)
    headers = letters[0]["headers"]
    assert letters[0]["value"] == "{broken"
    assert headers["cdc.dlq.offset"] == "100" and headers["cdc.dlq.topic"] == topic
    assert "not JSON" in headers["cdc.dlq.reason"]
    letters = worker.metrics.registry.get_sample_value(
        "cdc_sink_dead_letters_total", {"reason": "malformed"}
    )
    assert letters == 1
    sink = target.open()
    assert compare_tables(changes.rows, sink.read_rows(), normalizers=NORMALIZERS).ok


def test_cdc_spec_sink_runs_as_a_process_that_stops_on_sigterm_and_dies_on_sigkill(
    cdc_stack, sink_worker_factory
):
    bootstrap = cdc_stack.kafka_bootstrap
    topic = _topic(bootstrap)
    changes = customer_changes(300, seed=5, initial_rows=20)
    produce(bootstrap, topic, changes.records)
    worker = sink_worker_factory(topic, format="iceberg", batch_size=200)
    worker.wait_applied(changes.change_events, timeout=60)
    assert worker.metric("cdc_sink_assigned_partitions") == 1.0
    record = worker.kill()
    assert record.killed_by_sigkill, record
    worker.restart()
    more = customer_changes(50, seed=6)
    produce(bootstrap, topic, [(k, v) for k, v in more.records if v is not None][:10])
    worker.wait_applied(10, timeout=60)
    worker.stop()  # SIGTERM: exit status 0, or stop() raises
    kinds = [e["kind"] for e in worker.commit_log()]
    assert kinds.count("start") == 2 and kinds[-1] == "stop"
    assert "stopped after" in worker.logs(5)


def test_bad_options_exit_with_status_2_and_name_the_allowed_values():
    result = subprocess.run(
        [
            *cdc_spec_command(),
            "sink",
            "--bootstrap",
            "x:1",
            "--topic",
            "t",
            "--group",
            "g",
            "--format",
            "orc",
            "--key",
            "id",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "invalid choice: 'orc' (choose from 'delta', 'iceberg')" in result.stderr


def test_the_sink_benchmark_measures_every_variant(cdc_stack, tmp_path):
    result = sink_bench.run(
        kafka_bootstrap=cdc_stack.kafka_bootstrap,
        events=400,
        initial_rows=50,
        batch_size=100,
        compare_no_maintenance=False,
        workdir=tmp_path,
    )
    results = result["results"]
    assert list(results) == ["raw consume", "consume + decode", "delta", "iceberg"]
    for name in ("delta", "iceberg"):
        assert results[name]["integrity_ok"], results[name]["integrity"]
        assert results[name]["events"] == 450
        assert results[name]["events_per_second"] > 0
    assert results["raw consume"]["events"] == 450
    table = sink_bench.format_report(result)
    assert "raw consume" in table and "iceberg" in table


# --------------------------------------------------------------------------- clear messages


def _sink_cli(*args: str, timeout: float = 90) -> subprocess.CompletedProcess[str]:
    """``cdc-spec sink`` for real; its stderr and exit status."""
    return subprocess.run(
        [*cdc_spec_command(), "sink", *args], capture_output=True, text=True, timeout=timeout
    )


def _error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.strip()]


def _delta_args(bootstrap: str, topic: str, table: Path) -> list[str]:
    return [
        "--bootstrap", bootstrap, "--topic", topic, "--group", "g", "--format", "delta",
        "--key", "id", "--table-uri", str(table),
    ]  # fmt: skip


def test_an_unreachable_kafka_is_one_line_naming_bootstrap_and_exit_2(tmp_path):
    port = port_for.select_random()  # nothing listens there
    started = time.monotonic()
    result = _sink_cli(*_delta_args(f"127.0.0.1:{port}", "t", tmp_path / "table"))
    seconds = time.monotonic() - started
    assert result.returncode == 2, result.stderr
    lines = _error_lines(result.stderr)
    assert len(lines) == 1, result.stderr  # no librdkafka log lines, no traceback
    assert f"--bootstrap 127.0.0.1:{port}" in lines[0] and "no Kafka broker answered" in lines[0]
    assert seconds < 20, f"took {seconds:.1f}s to tell"


def test_a_delta_table_path_that_is_a_file_is_one_line_and_exit_2(tmp_path):
    path = tmp_path / "table"
    path.write_text("not a table")
    result = _sink_cli(*_delta_args("127.0.0.1:1", "t", path))
    assert result.returncode == 2, result.stderr
    (line,) = _error_lines(result.stderr)
    assert f"--table-uri {path}" in line and "is a file, not a folder" in line


def test_an_iceberg_warehouse_that_is_a_file_is_one_line_and_exit_2(tmp_path):
    path = tmp_path / "warehouse"
    path.write_text("not a folder")
    result = _sink_cli(
        "--bootstrap", "127.0.0.1:1", "--topic", "t", "--group", "g", "--format", "iceberg",
        "--key", "id", "--warehouse", str(path), "--table", "shop.customers",
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    (line,) = _error_lines(result.stderr)
    assert f"--warehouse {path}" in line and "is a file, not a folder" in line


def test_a_missing_topic_with_require_topic_is_one_line_and_exit_2(cdc_stack, tmp_path):
    topic = f"sinktest_missing_{uuid.uuid4().hex[:8]}"
    args = _delta_args(cdc_stack.kafka_bootstrap, topic, tmp_path / "table")
    result = _sink_cli(*args, "--require-topic")
    assert result.returncode == 2, result.stderr
    (line,) = _error_lines(result.stderr)
    assert f"topic {topic!r} does not exist" in line and "Debezium" in line


def test_a_missing_topic_is_said_once_and_the_worker_waits_for_it(cdc_stack, sink_worker_factory):
    bootstrap = cdc_stack.kafka_bootstrap
    topic = f"sinktest_later_{uuid.uuid4().hex[:8]}"
    worker = sink_worker_factory(topic, format="delta")
    changes = customer_changes(30, seed=8)
    ensure_topic(AdminClient({"bootstrap.servers": bootstrap}), topic)
    produce(bootstrap, topic, changes.records)
    worker.wait_applied(changes.change_events, timeout=90)
    warnings = [line for line in worker.logs(200).splitlines() if "does not exist" in line]
    assert len(warnings) == 1, warnings
    assert topic in warnings[0] and "--require-topic" in warnings[0]


def _committed(bootstrap: str, group: str, topic: str) -> int:
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group})
    try:
        (partition,) = consumer.committed([TopicPartition(topic, 0)], timeout=10)
        return partition.offset
    finally:
        consumer.close()


def test_an_idle_worker_commits_the_offsets_of_its_last_batches_to_its_group(cdc_stack, tmp_path):
    """The group's lag must reach 0 once the table has everything, not wait for new records."""
    import threading

    from cdc_support.waiting import wait_until

    bootstrap = cdc_stack.kafka_bootstrap
    topic = _topic(bootstrap)
    total = produce(bootstrap, topic, customer_changes(1500, seed=4, initial_rows=50).records)
    group = f"g_{uuid.uuid4().hex[:6]}"
    config = WorkerConfig(
        bootstrap=bootstrap,
        topic=topic,
        group=group,
        target=_target("delta", tmp_path),
        batch_size=300,
        batch_ms=200,
        offset_commit_ms=2000,
        commit_log=str(tmp_path / "log.jsonl"),
    )
    worker = SinkWorker(config)
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    try:
        wait_until(
            lambda: worker.consumed.get((topic, 0), 0),
            done=lambda offset: offset >= total,
            timeout=60,
            expected=f"the worker to apply offsets up to {total}",
        )
        wait_until(
            lambda: _committed(bootstrap, group, topic),
            done=lambda offset: offset == total,
            timeout=10,  # the commit interval is 2 s; the worker is idle meanwhile
            expected=f"group {group} to have committed offset {total} while the worker idles",
        )
        assert thread.is_alive(), "the worker stopped: the commit must come from an idle worker"
    finally:
        worker.request_stop()
        thread.join(timeout=30)
