"""``cdc-spec collector`` as a process over the session's real PostgreSQL, MariaDB and Kafka.

Each test starts the installed command on a free port and reads its ``/metrics`` the way
Prometheus does; what the collector reports is compared with what the test wrote.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import port_for
import psycopg
import pytest
import requests
from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient

from cdc_support.postgres.source import drop_slot
from cdc_support.sinks.dlq import ensure_topic
from cdc_support.sinks.metrics import parse_metrics
from cdc_support.waiting import wait_until
from pytest_cdc.process import cdc_spec_command

RUN = uuid.uuid4().hex[:8]
"""This module's groups are named collector-<RUN>-...; its collectors report only those."""


@dataclass
class CollectorProcess:
    """A running ``cdc-spec collector`` and where it answers."""

    proc: subprocess.Popen[bytes]
    url: str
    log: Path

    def scrape(self) -> dict[str, float]:
        response = requests.get(self.url, timeout=5)
        response.raise_for_status()
        return parse_metrics(response.text)

    def log_lines(self) -> list[str]:
        return self.log.read_text().splitlines()[-20:] if self.log.exists() else []

    def wait(self, expected: str, done, timeout: float = 30) -> dict[str, float]:
        """Scrape until ``done(samples)``; a timeout shows the cdc_* samples last seen."""
        return wait_until(
            self.scrape,
            done=done,
            timeout=timeout,
            interval=0.3,
            expected=expected,
            describe=_brief,
            ignore=(requests.RequestException,),
            log_lines=self.log_lines,
        )


def _brief(samples: dict[str, float]) -> str:
    shown = [
        f"{k}={v:g}" for k, v in samples.items() if k.startswith(("cdc_pg", "cdc_my", "cdc_ka"))
    ]
    up = [f"{k}={v:g}" for k, v in samples.items() if k.startswith("cdc_collector_source_up")]
    return ", ".join(up + shown[:20]) + (f" (+{len(shown) - 20} more)" if len(shown) > 20 else "")


@contextmanager
def collector(
    stack, tmp_path: Path, *args: str, mysql_dsn: str | None = None
) -> Iterator[CollectorProcess]:
    """Start the collector with the stack's DSNs in its environment; SIGTERM it after (it must
    exit 0)."""
    port = port_for.select_random()
    env = {**os.environ, "CDC_COLLECTOR_POSTGRES_DSN": stack.postgres_dsn}
    env.pop("CDC_COLLECTOR_MYSQL_DSN", None)
    mysql = mysql_dsn or stack.mysql_dsn
    if mysql:
        env["CDC_COLLECTOR_MYSQL_DSN"] = mysql
    log = tmp_path / f"collector-{port}.log"
    command = [
        *cdc_spec_command(),
        "collector",
        "--port",
        str(port),
        "--kafka-bootstrap",
        stack.kafka_bootstrap,
        *args,
    ]
    with log.open("wb") as err:
        proc = subprocess.Popen(command, env=env, stderr=err, start_new_session=True)
    running = CollectorProcess(proc, f"http://127.0.0.1:{port}/metrics", log)
    try:
        running.wait("the collector to serve /metrics", lambda s: bool(s))
        yield running
        assert proc.poll() is None, f"the collector exited: {running.log_lines()}"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0, running.log_lines()
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=15)


def _sample(name: str, **labels: str) -> str:
    """A sample's key as :func:`parse_metrics` writes it."""
    pairs = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    return f"{name}{{{pairs}}}"


# --------------------------------------------------------------------------- PostgreSQL


def _inserted_wal(conn: psycopg.Connection) -> int:
    """Where the next WAL record goes, as a number (written or not yet)."""
    row = conn.execute("SELECT pg_wal_lsn_diff(pg_current_wal_insert_lsn(), '0/0')").fetchone()
    return int(row[0])


@pytest.fixture
def logical_slot(pg_database) -> Iterator[str]:
    """A logical replication slot nobody reads, in this test's database; dropped after."""
    slot = f"collector_{RUN}_{uuid.uuid4().hex[:6]}"
    with psycopg.connect(pg_database.dsn, autocommit=True) as conn:
        conn.execute("SELECT pg_create_logical_replication_slot(%s, 'test_decoding')", (slot,))
        try:
            yield slot
        finally:
            drop_slot(conn, slot)
        assert not conn.execute(
            "SELECT 1 FROM pg_replication_slots WHERE slot_name = %s", (slot,)
        ).fetchone()


def test_a_slot_retains_the_wal_written_elsewhere_after_it(
    cdc_stack, pg_database, logical_slot, tmp_path
):
    where = {"slot": logical_slot, "database": pg_database.name}
    retained = _sample(
        "cdc_pg_slot_retained_wal_bytes", **where, plugin="test_decoding", active="false"
    )
    with collector(cdc_stack, tmp_path, "--groups-regex", "none") as running:
        before = running.wait(f"{retained} reported", lambda s: retained in s)
        assert before[_sample("cdc_pg_slot_active", **where)] == 0
        with psycopg.connect(cdc_stack.postgres_dsn, autocommit=True) as other:
            start = _inserted_wal(other)
            other.execute(  # 1 MiB of WAL in another database, no table needed
                "SELECT pg_logical_emit_message(true, 'cdc-spec', repeat('x', 1048576))"
            )
            written = _inserted_wal(other) - start
        assert written >= 1048576
        after = running.wait(
            f"{retained} to grow by at least {written} bytes from {before[retained]}",
            lambda s: s.get(retained, 0) - before[retained] >= written,
        )
        assert after[_sample("cdc_pg_slot_confirmed_lag_bytes", **where)] >= written
        assert after["cdc_pg_wal_position_bytes"] >= start + written


# --------------------------------------------------------------------------- MariaDB


def _position(samples: dict[str, float]) -> tuple[float, float]:
    return samples["cdc_mysql_binlog_file_number"], samples["cdc_mysql_binlog_position_bytes"]


def test_the_binlog_position_grows_with_rows_written(cdc_stack, mysql_conn, tmp_path):
    with collector(cdc_stack, tmp_path, "--groups-regex", "none") as running:
        up = _sample("cdc_collector_source_up", source="mysql")
        before = running.wait("mysql up", lambda s: s.get(up) == 1)
        with mysql_conn.cursor() as cur:
            cur.execute("CREATE TABLE t (id INT PRIMARY KEY, note VARCHAR(200))")
            cur.executemany("INSERT INTO t VALUES (%s, %s)", [(i, "x" * 200) for i in range(200)])
            cur.execute("SHOW MASTER STATUS")
            file, position = cur.fetchone()[:2]
        written = (int(file.rsplit(".", 1)[1]), position)
        assert written > _position(before)
        after = running.wait(
            f"binlog at {written} or later (was {_position(before)})",
            lambda s: _position(s) >= written,
        )
        assert after["cdc_mysql_binlog_total_bytes"] > before["cdc_mysql_binlog_total_bytes"]


# --------------------------------------------------------------------------- Kafka


def _produce(bootstrap: str, topic: str, count: int) -> None:
    producer = Producer({"bootstrap.servers": bootstrap})
    for i in range(count):
        producer.produce(topic, value=str(i).encode(), partition=0)
    assert producer.flush(30) == 0


def _consumer(bootstrap: str, group: str) -> Consumer:
    return Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": group,
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
        }
    )


@pytest.fixture
def kafka_scratch(cdc_stack) -> Iterator[tuple[str, str, str]]:
    """A fresh 2-partition topic and two group names; the topic and the groups are deleted
    after the test."""
    bootstrap = cdc_stack.kafka_bootstrap
    topic = f"collector_{RUN}_{uuid.uuid4().hex[:6]}"
    groups = [f"collector-{RUN}-committed", f"collector-{RUN}-fresh"]
    admin = AdminClient({"bootstrap.servers": bootstrap})
    ensure_topic(admin, topic, partitions=2)
    try:
        yield topic, *groups
    finally:
        for future in admin.delete_consumer_groups(groups).values():
            with contextlib.suppress(KafkaException):  # a group the test never made
                future.result(30)
        admin.delete_topics([topic])[topic].result(30)


def test_consumer_group_lag_is_end_minus_committed_or_minus_start(
    cdc_stack, kafka_scratch, tmp_path
):
    bootstrap = cdc_stack.kafka_bootstrap
    topic, committed_group, fresh_group = kafka_scratch
    n, k = 25, 10
    _produce(bootstrap, topic, n)
    committer = _consumer(bootstrap, committed_group)
    committer.commit(offsets=[TopicPartition(topic, 0, k)], asynchronous=False)
    committer.close()
    reader = _consumer(bootstrap, fresh_group)  # joins the group, never commits
    try:
        reader.subscribe([topic])
        wait_until(
            lambda: (reader.poll(0.2), reader.assignment())[1],
            timeout=60,
            expected=f"{fresh_group} to be assigned {topic}",
        )
        with collector(cdc_stack, tmp_path, "--groups-regex", f"collector-{RUN}-.*") as running:
            lag = "cdc_kafka_consumer_group_lag_messages"
            committed = "cdc_kafka_consumer_group_committed_offset"
            p0 = {"topic": topic, "partition": "0"}
            p1 = {"topic": topic, "partition": "1"}
            want = {
                _sample(lag, group=committed_group, **p0): n - k,
                _sample(lag, group=committed_group, **p1): 0,  # an empty partition, no commit
                _sample(lag, group=fresh_group, **p0): n,  # no commit: from the start offset
                _sample(committed, group=committed_group, **p0): k,
                _sample("cdc_kafka_topic_end_offset", **p0): n,
            }
            samples = running.wait(
                f"{want}", lambda s: all(s.get(name) == value for name, value in want.items())
            )
    finally:
        reader.close()
    assert _sample(committed, group=fresh_group, **p0) not in samples
    assert not [name for name in samples if "cdc-spec-connect" in name]


# --------------------------------------------------------------------------- failures


def test_a_source_that_is_down_is_reported_and_the_collector_stays_up(cdc_stack, tmp_path):
    closed = port_for.select_random()  # nothing listens there
    with collector(
        cdc_stack, tmp_path, mysql_dsn=f"mysql://cdc:s3cr3tpw@127.0.0.1:{closed}"
    ) as running:
        mysql_errors = _sample("cdc_collector_errors_total", source="mysql")
        first = running.wait("an error counted for mysql", lambda s: s.get(mysql_errors, 0) >= 1)
        assert first[_sample("cdc_collector_source_up", source="mysql")] == 0
        assert first[_sample("cdc_collector_source_up", source="postgres")] == 1
        assert first[_sample("cdc_collector_source_up", source="kafka")] == 1
        assert (
            "cdc_pg_wal_position_bytes" in first and "cdc_mysql_binlog_position_bytes" not in first
        )
        assert not [name for name in first if "cdc-spec-connect" in name]  # Connect's own group
        later = running.wait(
            "more errors counted", lambda s: s.get(mysql_errors, 0) > first[mysql_errors]
        )
        assert later[_sample("cdc_collector_source_up", source="postgres")] == 1
        assert running.proc.poll() is None
    entries = [json.loads(line) for line in running.log.read_text().splitlines()]
    down = [e for e in entries if e["level"] == "WARNING" and e.get("source") == "mysql"]
    assert len(down) == 1, down  # one line per outage, not one per scrape
    assert down[0]["component"] == "collector"
    assert f"127.0.0.1:{closed}" in down[0]["message"] and "s3cr3tpw" not in down[0]["message"]


def test_bad_options_and_a_port_in_use_exit_2_with_one_line(cdc_stack):
    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*cdc_spec_command(), "collector", *args],
            env={**os.environ, "CDC_COLLECTOR_POSTGRES_DSN": cdc_stack.postgres_dsn},
            capture_output=True,
            text=True,
            timeout=60,
        )

    bad = run("--port", "1", "--kafka-bootstrap", "k:1", "--groups-regex", "(")
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1, bad.stderr
    assert "--groups-regex" in bad.stderr
    with socket_listening() as port:
        taken = run("--port", str(port), "--kafka-bootstrap", cdc_stack.kafka_bootstrap)
    assert taken.returncode == 2 and len(taken.stderr.strip().splitlines()) == 1, taken.stderr
    assert f"port {port}" in taken.stderr and "--port" in taken.stderr


@contextmanager
def socket_listening() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def test_sigterm_while_scrapes_are_answered_exits_0_every_time(cdc_stack, tmp_path):
    """Prometheus scrapes every second, so a stack's stop often SIGTERMs the collector while
    it answers one; it must still exit 0 (librdkafka's threads once aborted it: SIGABRT)."""
    for attempt in range(6):
        stop = threading.Event()
        with collector(cdc_stack, tmp_path) as running:

            def scrape(url: str = running.url, stop: threading.Event = stop) -> None:
                while not stop.is_set():
                    with contextlib.suppress(requests.RequestException):
                        requests.get(url, timeout=5)

            threads = [threading.Thread(target=scrape, daemon=True) for _ in range(4)]
            for thread in threads:
                thread.start()
            running.wait(
                f"a scrape answered with the Kafka source up (attempt {attempt + 1})",
                lambda s: s.get('cdc_collector_source_up{source="kafka"}') == 1,
            )
        stop.set()
