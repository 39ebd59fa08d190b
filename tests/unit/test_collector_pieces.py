"""The harness collector's pure logic, its scrape runner over fake sources, and its options.

The sources themselves (PostgreSQL, MariaDB, Kafka) are exercised against real services in
tests/integration/test_collector.py.
"""

from __future__ import annotations

import logging
import re
import socket
import threading
import time
import urllib.request

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily

from cdc_support import cli
from cdc_support.observability.collector import HarnessCollector, serve
from cdc_support.observability.kafka_lag import (
    assigned_partitions,
    group_partitions,
    lag_of,
    wanted_group,
)
from cdc_support.observability.mysql_binlog import binlog_file_number
from cdc_support.sinks.metrics import parse_metrics

# --------------------------------------------------------------------------- pure pieces


def test_connect_and_internal_groups_are_left_out_and_a_regex_narrows_the_rest():
    assert wanted_group("sink-customers", None)
    assert not wanted_group("cdc-spec-connect", None)
    assert not wanted_group("_confluent-ksql", None)
    narrow = re.compile(r"sink-.*")
    assert wanted_group("sink-customers", narrow)
    assert not wanted_group("other-sink-customers", narrow)  # the whole id must match
    assert not wanted_group("cdc-spec-connect", re.compile(".*"))


def test_lag_counts_from_the_commit_or_from_the_start_offset_and_is_never_negative():
    assert lag_of(committed=7, start=0, end=10) == 3
    assert lag_of(committed=None, start=4, end=10) == 6
    assert lag_of(committed=12, start=0, end=10) == 0


def test_a_group_covers_every_partition_of_the_topics_it_committed_on_or_is_assigned():
    committed = {("a", 1): 5}
    assigned = [("b", 0)]
    partitions = {"a": 2, "b": 1, "c": 4}
    assert group_partitions(committed, assigned, partitions) == {
        ("a", 0): None,
        ("a", 1): 5,
        ("b", 0): None,
    }
    # a topic deleted since the commit is skipped
    assert group_partitions({("gone", 0): 3}, [], partitions) == {}


def test_assigned_partitions_are_read_from_kafka_pythons_group_description():
    member = {
        "member_id": "m-1",
        "member_assignment": {
            "assigned_partitions": [
                {"topic": "t", "partitions": [0, 2]},
                {"topic": "u", "partitions": [1]},
            ],
            "user_data": "",
        },
    }
    joining = {"member_id": "m-2", "member_assignment": None}
    described = {"group_id": "g", "members": [member, joining], "error": None}
    assert assigned_partitions(described) == [("t", 0), ("t", 2), ("u", 1)]
    assert assigned_partitions({"group_id": "g", "members": [], "error": None}) == []
    assert assigned_partitions({"group_id": "g", "error": "GroupIdNotFound"}) == []
    assert assigned_partitions(None) == []


def test_binlog_file_numbers_are_the_extension():
    assert binlog_file_number("mariadb-bin.000042") == 42
    assert binlog_file_number("/var/lib/mysql/binlog.000001") == 1
    with pytest.raises(ValueError, match="mariadb-bin"):
        binlog_file_number("mariadb-bin")


# --------------------------------------------------------------------------- the scrape runner


class FakeSource:
    """A source answering a gauge, failing while ``fail`` is set, or blocking on ``gate``."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.where = f"{name}-host:1"
        self.fail: str | None = None
        self.gate: threading.Event | None = None
        self.reads = 0
        self.timeouts: list[float] = []

    def read(self, timeout: float) -> list[GaugeMetricFamily]:
        self.reads += 1
        self.timeouts.append(timeout)
        if self.gate is not None:
            self.gate.wait(10)
        if self.fail:
            raise ConnectionError(self.fail)
        return [GaugeMetricFamily(f"cdc_{self.name}_fake", "fake", value=self.reads)]

    def close(self) -> None:
        pass


def scrape(collector: HarnessCollector) -> dict[str, float]:
    registry = CollectorRegistry()
    registry.register(collector)
    return parse_metrics(generate_latest(registry).decode())


def test_a_failing_source_is_down_and_counted_while_the_others_report(caplog):
    pg, kafka = FakeSource("postgres"), FakeSource("kafka")
    collector = HarnessCollector([pg, kafka], timeout=2.0)
    pg.fail = "connection refused"
    with caplog.at_level(logging.INFO, logger="cdc_support.observability"):
        first = scrape(collector)
        second = scrape(collector)
    assert first['cdc_collector_source_up{source="postgres"}'] == 0
    assert first['cdc_collector_source_up{source="kafka"}'] == 1
    assert "cdc_postgres_fake" not in first and first["cdc_kafka_fake"] == 1
    assert second['cdc_collector_errors_total{source="postgres"}'] == 2
    assert second['cdc_collector_errors_total{source="kafka"}'] == 0
    down = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(down) == 1, [r.getMessage() for r in caplog.records]  # once per outage
    assert "postgres" in down[0].getMessage() and "connection refused" in down[0].getMessage()

    pg.fail = None
    with caplog.at_level(logging.INFO, logger="cdc_support.observability"):
        third = scrape(collector)
    assert third['cdc_collector_source_up{source="postgres"}'] == 1
    assert third['cdc_collector_errors_total{source="postgres"}'] == 2
    assert any("answers again" in r.getMessage() for r in caplog.records)


def test_a_source_that_hangs_is_down_after_the_timeout_and_not_queried_twice():
    slow, fast = FakeSource("mysql"), FakeSource("kafka")
    slow.gate = threading.Event()
    collector = HarnessCollector([slow, fast], timeout=0.3)
    try:
        started = time.monotonic()
        first = scrape(collector)
        assert time.monotonic() - started < 1.5
        assert first['cdc_collector_source_up{source="mysql"}'] == 0
        assert first["cdc_kafka_fake"] == 1
        second = scrape(collector)  # the first query is still running: no second one
        assert second['cdc_collector_source_up{source="mysql"}'] == 0
        assert slow.reads == 1 and fast.reads == 2
    finally:
        slow.gate.set()


def test_concurrent_scrapes_share_one_query_per_source():
    source = FakeSource("postgres")
    source.gate = threading.Event()
    collector = HarnessCollector([source], timeout=5.0)
    results: list[dict[str, float]] = []
    threads = [threading.Thread(target=lambda: results.append(scrape(collector))) for _ in "ab"]
    for thread in threads:
        thread.start()
    threading.Timer(0.3, source.gate.set).start()
    for thread in threads:
        thread.join(10)
    assert source.reads == 1
    assert [r['cdc_collector_source_up{source="postgres"}'] for r in results] == [1, 1]


def test_the_http_server_serves_metrics_and_a_scrape_timeout_header_shortens_the_budget():
    source = FakeSource("postgres")
    collector = HarnessCollector([source], timeout=5.0)
    server = serve(collector, "127.0.0.1", 0)
    try:
        url = f"http://127.0.0.1:{server.server_port}/metrics"
        request = urllib.request.Request(url, headers={"X-Prometheus-Scrape-Timeout-Seconds": "1"})
        with urllib.request.urlopen(request, timeout=10) as response:
            samples = parse_metrics(response.read().decode())
        assert samples['cdc_collector_source_up{source="postgres"}'] == 1
        assert 0 < source.timeouts[-1] < 1.0
        with urllib.request.urlopen(url, timeout=10) as response:
            response.read()
        assert source.timeouts[-1] == 5.0
    finally:
        server.shutdown()
        server.server_close()


# --------------------------------------------------------------------------- options


@pytest.fixture
def no_dsn_env(monkeypatch):
    monkeypatch.delenv("CDC_COLLECTOR_POSTGRES_DSN", raising=False)
    monkeypatch.delenv("CDC_COLLECTOR_MYSQL_DSN", raising=False)


BASE = ["collector", "--port", "0", "--kafka-bootstrap", "127.0.0.1:1"]
PG = ["--postgres-dsn", "postgresql://u:secret@127.0.0.1:1/db"]


@pytest.mark.parametrize(
    ("argv", "named"),
    [
        (BASE, "--postgres-dsn"),
        ([*BASE, *PG, "--groups-regex", "("], "--groups-regex"),
        ([*BASE, *PG, "--mysql-dsn", "http://x"], "--mysql-dsn"),
        ([*BASE, "--postgres-dsn", "not a dsn ==="], "--postgres-dsn"),
        ([*BASE, *PG, "--timeout", "0"], "--timeout"),
        (["collector", *PG, "--port", "0"], "--kafka-bootstrap"),
        (["collector", *PG, "--kafka-bootstrap", "k:1", "--port", "70000"], "--port"),
    ],
)
def test_bad_options_exit_2_with_one_line_naming_the_option(no_dsn_env, capsys, argv, named):
    with pytest.raises(SystemExit) as exited:
        cli.main(argv)
    assert exited.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and named in err, err
    assert "secret" not in err


def test_a_port_in_use_exits_2_naming_the_port(no_dsn_env, capsys):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        status = cli.main(["collector", *PG, "--kafka-bootstrap", "k:1", "--port", str(port)])
    assert status == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and f"port {port}" in err and "--port" in err, err


def test_dsns_may_come_from_the_environment(monkeypatch):
    from cdc_support.observability.cli import add_parser

    monkeypatch.setenv("CDC_COLLECTOR_POSTGRES_DSN", "postgresql://u:pw@127.0.0.1:5/db")
    monkeypatch.setenv("CDC_COLLECTOR_MYSQL_DSN", "mysql://u:pw@127.0.0.1:6")
    parser = cli.OneLineParser(prog="cdc-spec")
    add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["collector", "--port", "1", "--kafka-bootstrap", "k:1"])
    assert args.postgres_dsn.endswith(":5/db") and args.mysql_dsn.endswith(":6")
