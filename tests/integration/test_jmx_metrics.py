"""The JMX exporters in the Kafka broker and the Connect worker, on the real stack.

Every Connect and Debezium metric name of the issue-15 contract (pytest_cdc/stack/jmx/) is
scraped from the worker with its labels while a real PostgreSQL and a real MariaDB connector
stream rows written here; the broker's per-topic counters follow records produced here; both
JVMs log JSON lines with the contract's keys.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pymysql
import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from cdc_support.kafka.connector import DebeziumConnector
from cdc_support.mysql.loader import create_table
from cdc_support.postgres.loader import create_schema
from cdc_support.sinks.envelopes import produce
from cdc_support.waiting import wait_until
from pytest_cdc.stack import Stack

pytestmark = [pytest.mark.postgres, pytest.mark.mysql, pytest.mark.debezium]

ROWS = 3
STREAMING_GAUGES = (
    "debezium_streaming_milliseconds_behind_source",
    "debezium_streaming_total_events_seen",
    "debezium_streaming_queue_remaining_capacity",
    "debezium_streaming_queue_total_capacity",
    "debezium_streaming_connected",
)
SNAPSHOT_GAUGES = (
    "debezium_snapshot_running",
    "debezium_snapshot_completed",
    "debezium_snapshot_total_table_count",
    "debezium_snapshot_remaining_table_count",
)
LOG_KEYS = {"timestamp", "level", "component", "logger", "message", "thread"}
ALL_LINES = 10**7


Samples = list[tuple[str, dict[str, str], float]]


def scrape(url: str) -> Samples:
    """Every sample of a /metrics page: (name, labels, value)."""
    assert url, "this stack has no JMX exporter URL (Endpoints.*_metrics_url is empty)"
    response = requests.get(url, timeout=10)
    response.raise_for_status()
    return [
        (sample.name, dict(sample.labels), sample.value)
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    ]


def values(samples: Samples, name: str, **labels: str) -> list[float]:
    """The values of the series ``name`` whose labels include ``labels``."""
    return [
        value
        for sample_name, sample_labels, value in samples
        if sample_name == name and labels.items() <= sample_labels.items()
    ]


def only(samples: Samples, name: str, **labels: str) -> float:
    """The one value of ``name{labels}``; fails naming what the page had instead."""
    found = values(samples, name, **labels)
    if len(found) != 1:
        near = sorted({f"{n}{lb}" for n, lb, _ in samples if n.startswith(name.rsplit("_", 1)[0])})
        pytest.fail(f"expected one series {name}{labels}, found {len(found)}; similar: {near}")
    return found[0]


def _insert_pg(conn: psycopg.Connection, first: int) -> None:
    for key in range(first, first + ROWS):
        conn.execute(
            "INSERT INTO customers VALUES (%s, %s, 'Jo', 'FR', now())", (key, f"{key}@pg.test")
        )


def _insert_mariadb(conn: pymysql.Connection, first: int) -> None:
    with conn.cursor() as cur:
        for key in range(first, first + ROWS):
            cur.execute(
                "INSERT INTO customers VALUES (%s, %s, 'Jo', 'FR', NOW(6))",
                (key, f"{key}@maria.test"),
            )


def _check_connector_metrics(url: str, connector: DebeziumConnector, kind: str) -> None:
    """Debezium's and Connect's series of one streaming connector that saw ROWS inserts.

    PostgreSQL's counts are exact (its slot decodes only its publication's tables). The
    MariaDB connector counts every row event of the binlog it reads, other databases' too
    (seen in CI: 8 creates, 1 update, 4 deletes while the other xdist worker wrote), so there
    its creates are at least ROWS.
    """
    of = {"connector_type": kind, "server": connector.topic_prefix}
    exact = kind == "postgres"

    def counted(seen: list[float]) -> bool:
        return seen == [ROWS] if exact else len(seen) == 1 and seen[0] >= ROWS

    samples = wait_until(
        lambda: scrape(url),
        done=lambda s: counted(
            values(s, "debezium_streaming_events_seen_total", op="create", **of)
        ),
        timeout=60,
        expected=f"debezium_streaming_events_seen_total{{op=create, {of}}} "
        f"{'==' if exact else '>='} {ROWS}",
        describe=lambda s: str(values(s, "debezium_streaming_events_seen_total", **of)),
    )
    for op in ("update", "delete"):
        seen = only(samples, "debezium_streaming_events_seen_total", op=op, **of)
        assert seen == 0 if exact else seen >= 0
    for name in STREAMING_GAUGES + SNAPSHOT_GAUGES:
        only(samples, name, **of)
    assert only(samples, "debezium_streaming_connected", **of) == 1
    assert only(samples, "debezium_streaming_total_events_seen", **of) >= ROWS
    assert only(samples, "debezium_streaming_queue_total_capacity", **of) > 0
    assert only(samples, "debezium_snapshot_completed", **of) == 1
    assert only(samples, "debezium_snapshot_running", **of) == 0
    assert only(samples, "debezium_snapshot_total_table_count", **of) == 1
    assert only(samples, "debezium_snapshot_remaining_table_count", **of) == 0
    name = connector.name
    assert values(samples, "kafka_connect_connector_status", connector=name) == [1]
    assert only(samples, "kafka_connect_connector_status", connector=name, status="running") == 1
    assert values(samples, "kafka_connect_task_status", connector=name) == [1]
    assert (
        only(samples, "kafka_connect_task_status", connector=name, task="0", status="running") == 1
    )


def _json_lines(stack: Stack, component: str) -> list[dict[str, Any]]:
    """Every line of ``component``'s log, parsed; fails on the first line that is not JSON."""
    log_file = Path(stack.endpoints.log_dir or "/nonexistent") / f"{component}.log"
    # the native stack's log file (also under pytest -n); a container's output on docker
    text = log_file.read_text() if log_file.is_file() else stack.logs(component, ALL_LINES)
    lines = [line for line in text.splitlines() if line.strip()]
    assert lines, f"the {component} log is empty"
    parsed = []
    for number, line in enumerate(lines, 1):
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            pytest.fail(f"{component} log line {number} is not JSON ({exc}): {line[:300]}")
        assert isinstance(record, dict), line
        parsed.append(record)
    return parsed


def _check_log_record(record: dict[str, Any], component: str) -> None:
    if record.get("logger") == "cdc-kafka":  # the docker entrypoint's own line
        return
    assert record.keys() >= LOG_KEYS, record
    assert record["component"] == component, record
    assert record["level"] in {"TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"}, record
    when = datetime.fromisoformat(record["timestamp"])
    assert when.utcoffset() == timedelta(0), record  # ISO 8601, UTC


def test_connect_exporter_has_every_debezium_and_connect_metric_of_real_connectors(
    cdc_stack: Stack,
    pg_conn: psycopg.Connection,
    mysql_conn: pymysql.Connection,
    mysql_database,
    pg_connector_factory,
    mysql_connector_factory,
) -> None:
    create_schema(pg_conn)
    create_table(mysql_conn, "customers")
    pg = pg_connector_factory(["customers"])
    maria = mysql_connector_factory(["customers"])
    _insert_pg(pg_conn, 1)
    _insert_mariadb(mysql_conn, 1)

    url = cdc_stack.endpoints.connect_metrics_url
    _check_connector_metrics(url, pg, "postgres")
    _check_connector_metrics(url, maria, mysql_database.flavor)
    samples = scrape(url)
    assert only(samples, "kafka_connect_worker_connector_count") >= 2
    assert only(samples, "kafka_connect_worker_task_count") >= 2

    records = _json_lines(cdc_stack, "connect")
    for record in records:
        _check_log_record(record, "connect")
    by_connector = {record.get("connector") for record in records}
    assert {pg.name, maria.name} <= by_connector, sorted(map(str, by_connector))


def test_broker_exporter_counts_the_records_of_a_topic(
    cdc_stack: Stack, cdc_scenario_name: str
) -> None:
    topic = f"{cdc_scenario_name}_jmx"
    records = [(str(i).encode(), b"{}") for i in range(7)]
    produce(cdc_stack.endpoints.kafka_bootstrap, topic, records)

    url = cdc_stack.endpoints.kafka_metrics_url
    name = "kafka_server_brokertopicmetrics_messagesin_total"
    samples = wait_until(
        lambda: scrape(url),
        done=lambda s: values(s, name, topic=topic) == [len(records)],
        timeout=30,
        expected=f"{name}{{topic={topic}}} == {len(records)}",
        describe=lambda s: str(values(s, name, topic=topic)),
    )
    assert only(samples, "kafka_server_brokertopicmetrics_bytesin_total", topic=topic) > 0
    broker_wide = [v for n, labels, v in samples if n == name and "topic" not in labels]
    assert len(broker_wide) == 1 and broker_wide[0] >= len(records), broker_wide

    records_logged = _json_lines(cdc_stack, "kafka")
    for record in records_logged:
        _check_log_record(record, "kafka")
    assert any("Kafka Server started" in r.get("message", "") for r in records_logged)
