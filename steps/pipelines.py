"""Steps for features/pipelines/lakehouse_sinks.feature: Debezium topics → Delta / Iceberg.

A :class:`PipelineSource` hides which database the pipeline starts from (PostgreSQL or
MariaDB, the ``<source>`` column), so one Scenario Outline states each rule once; the sink
worker is a real ``cdc-spec sink`` process from the ``sink_worker_factory`` fixture.
"""

from __future__ import annotations

import abc
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import psycopg
import pymysql
import pytest
from confluent_kafka import Producer
from pytest_bdd import given, parsers, then, when

from cdc_support.checks.delivery import OP_CODES
from cdc_support.checks.integrity import compare_tables
from cdc_support.checks.lag import lag_against_commits
from cdc_support.mysql import source as mysql_source
from cdc_support.sinks.base import duplicate_keys
from cdc_support.sinks.commit_log import applied_events, audit, by_kind, commit_latencies
from cdc_support.sinks.commit_log import lag_samples as log_lag_samples
from cdc_support.sinks.dlq import read_dead_letters
from cdc_support.sinks.trend import latency_plot_png, latency_trend
from cdc_support.waiting import wait_until
from cdc_support.workload import (
    KEY_COLUMNS,
    NORMALIZERS,
    EcommerceGenerator,
    Operation,
    create_schema,
    fetch_table,
    mixed_workload,
)
from pytest_cdc import evidence
from pytest_cdc.fixtures import DebeziumConnector
from pytest_cdc.sink_fixtures import KillRecord, SinkWorkerProcess
from steps.common import assert_lag_under, assert_tables_equal

TABLE = "customers"
KEY = KEY_COLUMNS[TABLE]
SOURCES = ("PostgreSQL", "MariaDB")
FORMATS = {"Delta": "delta", "Iceberg": "iceberg"}
SCHEMA_IN_VALUES = {
    "value.converter": "org.apache.kafka.connect.json.JsonConverter",
    "value.converter.schemas.enable": "true",
}
"""Connector overrides: record values carry their Kafka Connect schema, so the sink can give
its table typed columns (a timestamptz column arrives as io.debezium.time.ZonedTimestamp)."""
APPLY_TIMEOUT = 180.0
TIERS = ("bronze", "silver", "gold")


# --------------------------------------------------------------------------- sources


class PipelineSource(abc.ABC):
    """The source database of a pipeline, as the steps see it."""

    label: str
    connector: DebeziumConnector

    def __init__(self) -> None:
        self.seeded = 0
        self.workload: list[Operation] = []
        self.other_changes = 0
        self.touched_after_alter: set[tuple[Any, ...]] = set()
        self.alter_done = False

    def __repr__(self) -> str:
        return f"{self.label} {TABLE} table"

    @property
    def topic(self) -> str:
        """The Debezium topic of the table."""
        return self.connector.topic(TABLE)

    @property
    def change_events(self) -> int:
        """Change events the source has produced so far (one per row written)."""
        return self.seeded + len(self.workload) + self.other_changes

    @abc.abstractmethod
    def seed(self, count: int, seed: int) -> None:
        """Create the table with ``count`` generated rows (before capture starts)."""

    @abc.abstractmethod
    def capture(self, request: pytest.FixtureRequest) -> DebeziumConnector:
        """Register the Debezium connector; it streams when this returns."""

    @abc.abstractmethod
    def run_workload(self, gen: EcommerceGenerator, count: int) -> list[Operation]:
        """``count`` single-row transactions (insert/update/delete); appended to the log."""

    @abc.abstractmethod
    def execute(self, statement: str, args: tuple[Any, ...] = ()) -> None:
        """One statement in its own transaction."""

    @abc.abstractmethod
    def rows(self) -> dict[tuple[Any, ...], dict[str, Any]]:
        """The table now, by key."""

    @abc.abstractmethod
    def add_column(self, column: str) -> None:
        """ALTER TABLE ... ADD COLUMN (nullable text)."""

    def insert_row(self, row: dict[str, Any]) -> None:
        """INSERT one row (its own transaction)."""
        columns = list(row)
        quote = self.quote
        self.execute(
            f"INSERT INTO {TABLE} ({', '.join(quote(c) for c in columns)}) "
            f"VALUES ({', '.join(['%s'] * len(columns))})",
            tuple(row[c] for c in columns),
        )
        self.other_changes += 1

    @staticmethod
    def quote(column: str) -> str:
        """Quote an identifier (both databases accept plain names for ours)."""
        return column


class PostgresSource(PipelineSource):
    """A table in the scenario's own PostgreSQL database."""

    label = "PostgreSQL"

    def __init__(self, conn: psycopg.Connection) -> None:
        super().__init__()
        self.conn = conn

    def seed(self, count: int, seed: int) -> None:
        create_schema(self.conn)
        gen = EcommerceGenerator(seed)
        gen.bulk_load(self.conn, TABLE, gen.customers(count))
        self.seeded = count

    def capture(self, request: pytest.FixtureRequest) -> DebeziumConnector:
        factory = request.getfixturevalue("debezium_connector_factory")
        self.connector = factory([TABLE], extra=SCHEMA_IN_VALUES)
        return self.connector

    def run_workload(self, gen: EcommerceGenerator, count: int) -> list[Operation]:
        ops = mixed_workload(self.conn, gen, count, table=TABLE)
        self.workload.extend(ops)
        return ops

    def execute(self, statement: str, args: tuple[Any, ...] = ()) -> None:
        self.conn.execute(statement, args)  # type: ignore[arg-type]

    def rows(self) -> dict[tuple[Any, ...], dict[str, Any]]:
        return fetch_table(self.conn, TABLE, KEY)

    def add_column(self, column: str) -> None:
        self.execute(f"ALTER TABLE {TABLE} ADD COLUMN {column} text")


class MariaDbSource(PipelineSource):
    """A table in the scenario's own MariaDB database."""

    label = "MariaDB"

    def __init__(self, conn: pymysql.Connection) -> None:
        super().__init__()
        self.conn = conn

    def seed(self, count: int, seed: int) -> None:
        mysql_source.create_table(self.conn, TABLE)
        mysql_source.insert_rows(self.conn, TABLE, EcommerceGenerator(seed).customers(count))
        self.seeded = count

    def capture(self, request: pytest.FixtureRequest) -> DebeziumConnector:
        factory = request.getfixturevalue("mysql_connector_factory")
        self.connector = factory([TABLE], extra=SCHEMA_IN_VALUES)
        return self.connector

    def run_workload(self, gen: EcommerceGenerator, count: int) -> list[Operation]:
        ops = mysql_source.mixed_workload(self.conn, gen, count, table=TABLE)
        self.workload.extend(ops)
        return ops

    def execute(self, statement: str, args: tuple[Any, ...] = ()) -> None:
        with self.conn.cursor() as cur:
            cur.execute(statement, args)

    def rows(self) -> dict[tuple[Any, ...], dict[str, Any]]:
        return mysql_source.fetch_table(self.conn, TABLE, KEY)

    def add_column(self, column: str) -> None:
        self.execute(f"ALTER TABLE {TABLE} ADD COLUMN {column} VARCHAR(16) NULL")


def _source(name: str, request: pytest.FixtureRequest) -> PipelineSource:
    if name == "PostgreSQL":
        return PostgresSource(request.getfixturevalue("pg_conn"))
    if name == "MariaDB":
        return MariaDbSource(request.getfixturevalue("mysql_conn"))
    raise pytest.UsageError(f"unknown source {name!r} in the feature; use one of {SOURCES}")


def _format(name: str) -> str:
    if name not in FORMATS:
        raise pytest.UsageError(f"unknown table format {name!r}; use one of {list(FORMATS)}")
    return FORMATS[name]


def _tally(ops: list[Operation]) -> dict[str, int]:
    tally: dict[str, int] = {}
    for op in ops:
        tally[op.op] = tally.get(op.op, 0) + 1
    return tally


# --------------------------------------------------------------------------- scenario state


@dataclass
class Sink:
    """The scenario's sink worker and table, and what happened to them."""

    worker: SinkWorkerProcess
    label: str
    kills: list[KillRecord] = field(default_factory=list)
    poison: dict[str, Any] | None = None

    def __repr__(self) -> str:
        return f"{self.label} table written by {self.worker!r}"


# --------------------------------------------------------------------------- given


@given(
    parsers.parse(
        "a customers table in {source} with {count:d} rows generated with seed {seed:d}, "
        "captured by Debezium"
    ),
    target_fixture="pipeline_source",
)
def captured_source(source: str, count: int, seed: int, request: pytest.FixtureRequest):
    """Create and fill the table, then register Debezium (its snapshot reads the rows)."""
    src = _source(source, request)
    src.seed(count, seed)
    connector = src.capture(request)
    evidence.attach_json(
        "connector config", {k: v for k, v in connector.config.items() if "password" not in k}
    )
    return src


@given(
    parsers.parse("a sink worker applies the customers topic to a new {fmt} table"),
    target_fixture="sink",
)
def sink_worker(
    fmt: str,
    pipeline_source: PipelineSource,
    sink_worker_factory: Callable[..., SinkWorkerProcess],
) -> Sink:
    """Start ``cdc-spec sink`` as its own process; wait until the snapshot rows are in."""
    worker = sink_worker_factory(pipeline_source.topic, format=_format(fmt))
    evidence.attach_text(
        "sink worker command line", " ".join(worker.command) + f"\n\npid {worker.pid}"
    )
    worker.wait_applied(pipeline_source.seeded, timeout=APPLY_TIMEOUT)
    return Sink(worker, fmt)


# --------------------------------------------------------------------------- when


@when(
    parsers.parse(
        "a workload of {count:d} operations with seed {seed:d} runs against the source table"
    )
)
def pipeline_workload(pipeline_source: PipelineSource, count: int, seed: int):
    """Inserts, updates and deletes, each its own transaction (its commit time recorded)."""
    ops = pipeline_source.run_workload(EcommerceGenerator(seed + 1), count)
    evidence.attach_json("workload", {"operations": count, "by kind": _tally(ops)})


@when(
    parsers.parse(
        "a workload of {count:d} operations with seed {seed:d} runs, and the sink worker is "
        "killed with SIGKILL once it committed {kill_at:d} events and restarted after "
        "operation {restart_at:d}"
    )
)
def workload_with_kill(
    pipeline_source: PipelineSource,
    sink: Sink,
    count: int,
    seed: int,
    kill_at: int,
    restart_at: int,
):
    """The workload runs in a thread; the worker is killed while events stream in, and
    started again (same group, same table) while the workload goes on. (Should the worker
    lag behind, the writer waits at operation ``restart_at`` for the kill, so the kill is
    always mid-stream.)"""
    assert 0 < kill_at < restart_at < count, "need 0 < kill_at < restart_at < count"
    gen = EcommerceGenerator(seed + 1)
    progress = {"done": 0}
    failure: list[BaseException] = []
    killed = threading.Event()

    def write() -> None:
        try:
            while progress["done"] < count:
                if progress["done"] >= restart_at and not killed.wait(APPLY_TIMEOUT):
                    raise TimeoutError("the worker was not killed while the workload ran")
                step = min(50, count - progress["done"])
                pipeline_source.run_workload(gen, step)
                progress["done"] += step
        except BaseException as exc:  # reported by the main thread
            failure.append(exc)

    writer = threading.Thread(target=write, name="workload", daemon=True)
    writer.start()
    worker = sink.worker
    try:
        worker.wait_applied(pipeline_source.seeded + kill_at, timeout=APPLY_TIMEOUT)
        written_at_kill = progress["done"]
        record = worker.kill()
        killed.set()
        sink.kills.append(record)
        evidence.attach_json(
            "the kill",
            {**record.as_dict(), "operations written when killed": written_at_kill},
        )
        assert record.killed_by_sigkill, f"the worker did not die by SIGKILL: {record}"
        assert written_at_kill < count, (
            f"the workload had finished ({written_at_kill} operations) before the kill: "
            "not mid-stream; lower the kill threshold"
        )
        wait_until(
            lambda: progress["done"],
            done=lambda done: done >= restart_at or bool(failure),
            timeout=APPLY_TIMEOUT,
            expected=f"the workload to pass operation {restart_at}",
            describe=lambda done: f"{done} operations written",
        )
        worker.restart()
        evidence.attach_text("restarted worker", f"pid {worker.pid}")
    finally:
        killed.set()  # never leave the writer waiting, also when a step above failed
        writer.join(timeout=APPLY_TIMEOUT)
    if failure:
        raise failure[0]
    evidence.attach_json(
        "workload", {"operations": count, "by kind": _tally(pipeline_source.workload)}
    )


@when(
    parsers.parse(
        "a record that is not JSON is written to the customers topic between two workloads "
        "of {count:d} operations"
    )
)
def poison_between_workloads(
    pipeline_source: PipelineSource, sink: Sink, cdc_stack: Any, count: int
):
    """Debezium's records before and after, and in between one that no parser accepts."""
    gen = EcommerceGenerator(101)
    pipeline_source.run_workload(gen, count)
    delivered: list[Any] = []
    producer = Producer({"bootstrap.servers": cdc_stack.kafka_bootstrap})
    key, value = b'{"id": 999999}', b"this is not JSON {"
    producer.produce(
        pipeline_source.topic,
        key=key,
        value=value,
        on_delivery=lambda err, msg: delivered.append((err, msg)),
    )
    assert producer.flush(30) == 0, "the poison record was not delivered"
    err, msg = delivered[0]
    assert err is None, f"producing the poison record failed: {err}"
    sink.poison = {
        "key": key.decode(),
        "value": value.decode(),
        "topic": msg.topic(),
        "partition": msg.partition(),
        "offset": msg.offset(),
    }
    evidence.attach_json("the record written to the topic", sink.poison)
    pipeline_source.run_workload(gen, count)


@when(parsers.parse("the column {column} is added to the source table"))
def add_source_column(pipeline_source: PipelineSource, column: str):
    """ALTER TABLE ... ADD COLUMN: existing rows read null in it."""
    pipeline_source.add_column(column)
    pipeline_source.alter_done = True


@when(
    parsers.parse(
        "{inserted:d} new customers with a loyalty tier are inserted and {updated:d} existing "
        "customers get one"
    )
)
def rows_with_tier(pipeline_source: PipelineSource, inserted: int, updated: int):
    """New rows carry the column; a few old rows are updated to get a value."""
    gen = EcommerceGenerator(500)
    gen.reserve_keys_above(TABLE, max(k[0] for k in pipeline_source.rows()))
    for index in range(inserted):
        row = {**gen.customer(), "loyalty_tier": TIERS[index % len(TIERS)]}
        pipeline_source.insert_row(row)
        pipeline_source.touched_after_alter.add((row["id"],))
    for key in sorted(pipeline_source.rows())[:updated]:
        pipeline_source.execute(
            f"UPDATE {TABLE} SET loyalty_tier = %s WHERE id = %s", ("gold", key[0])
        )
        pipeline_source.other_changes += 1
        pipeline_source.touched_after_alter.add(key)


# --------------------------------------------------------------------------- then


def _wait_and_read(sink: Sink, source: PipelineSource) -> dict[tuple[Any, ...], dict[str, Any]]:
    """Wait until the worker has committed every change the source made, then read it."""
    worker = sink.worker
    expected = source.rows()
    if not sink.kills:
        worker.wait_applied(source.change_events, timeout=APPLY_TIMEOUT)
        return expected
    # after a restart this run's metrics miss what the first run applied: watch the table
    wait_until(
        lambda: compare_tables(expected, worker.rows(), normalizers=NORMALIZERS),
        done=lambda report: report.ok,
        timeout=APPLY_TIMEOUT,
        interval=1.0,
        expected=f"the {sink.label} table to equal the source table",
        describe=lambda report: report.summary().splitlines()[0],
        log_lines=lambda: worker.logs(15).splitlines(),
    )
    return expected


@then(parsers.parse("the {fmt} table equals the source table"))
def sink_equals_source(sink: Sink, pipeline_source: PipelineSource, fmt: str):
    """Count, order-independent checksum and per-key diff (attached when they differ); and
    one row per key (Iceberg does not enforce keys)."""
    expected = _wait_and_read(sink, pipeline_source)
    all_rows = sink.worker.read_all()
    twice = duplicate_keys(all_rows, KEY)
    evidence.attach_json(f"{fmt} table history (latest commits)", sink.worker.history(12))
    actual = {tuple(r[k] for k in KEY): r for r in all_rows}
    assert_tables_equal(expected, actual, f"{fmt} table vs {pipeline_source.label} table")
    assert not twice, f"integrity failure: keys held by more than one row: {twice[:10]}"
    assert len(all_rows) == len(expected), (len(all_rows), len(expected))


@then(
    parsers.parse(
        "the p95 lag from source commit to visible in the {fmt} table is under {limit:g} seconds"
    )
)
def p95_lag(sink: Sink, pipeline_source: PipelineSource, fmt: str, limit: float):
    """Per workload event: source commit → the table commit holding it returned.

    PostgreSQL: the commit time Debezium read from the WAL (microseconds). MariaDB's binlog
    has whole seconds only, so there the commit time is the one the workload recorded when
    COMMIT returned (events and commits joined in order)."""
    entries = sink.worker.commit_log()
    if isinstance(pipeline_source, MariaDbSource):
        events = applied_events(entries, exclude_ops={"r"})
        commits = [(OP_CODES[o.op], o.key, o.committed_at) for o in pipeline_source.workload]
        samples = lag_against_commits(events, commits)
        path = "client commit → visible in the table"
    else:
        samples = log_lag_samples(entries, exclude_ops={"r"})
        path = "source commit (WAL) → visible in the table"
    assert len(samples) == len(pipeline_source.workload), (
        f"{len(samples)} lag samples for {len(pipeline_source.workload)} operations"
    )
    assert_lag_under(samples, limit, f"{pipeline_source.label} → {fmt}", path)


@then(parsers.parse("the commit latency of the {fmt} table did not grow during the run"))
def latency_flat(sink: Sink, fmt: str):
    """Median of the last 5 commits ≤ 3 x median of the first 5 + 0.5 s (maintenance keeps
    Iceberg's snapshot list and file count small; see the plot)."""
    entries = sink.worker.commit_log()
    latencies = commit_latencies(entries)
    trend = latency_trend(latencies)
    marks, commit_no = [], 0
    for entry in entries:
        if entry.get("kind") == "commit":
            commit_no += 1
        elif entry.get("kind") == "maintenance":
            marks.append(commit_no)
    maintenance = [e for e in entries if e.get("kind") == "maintenance"]
    evidence.attach_json(f"{fmt} commit latency trend", {**trend, "maintenance": maintenance[:50]})
    evidence.attach_png(
        f"{fmt} commit latency per commit",
        latency_plot_png(
            {f"{fmt} commits": latencies},
            title=f"{fmt} sink: commit latency per batch (dotted: maintenance)",
            marks=marks,
        ),
    )
    assert trend["commits"] >= 10, f"only {trend['commits']} commits: too few to see a trend"
    bound = 3 * trend["median_first"] + 0.5
    assert trend["median_last"] <= bound, (
        f"commit latency grew: last commits' median {trend['median_last']:.3f}s > "
        f"3 x first commits' median + 0.5s = {bound:.3f}s ({trend})"
    )


@then("the worker's metrics endpoint reports every event it applied")
def metrics_report(sink: Sink, pipeline_source: PipelineSource):
    """/metrics: events consumed and applied, tombstones, batches, the lag histogram."""
    worker = sink.worker
    text = worker.metrics_text()
    evidence.attach_text("/metrics", text)
    m = worker.metrics()
    entries = worker.commit_log()
    deletes = sum(1 for o in pipeline_source.workload if o.op == "delete")
    kinds = by_kind(entries)
    checks = {
        "cdc_sink_events_consumed_total": pipeline_source.change_events,
        "cdc_sink_events_applied_total": pipeline_source.change_events,
        "cdc_sink_end_to_end_lag_seconds_count": pipeline_source.change_events,
        "cdc_sink_tombstones_total": deletes,
        "cdc_sink_batches_committed_total": kinds.get("commit", 0),
    }
    seen = {name: m.get(name) for name in checks}
    evidence.attach_json("metrics vs what happened", {"expected": checks, "reported": seen})
    assert seen == {k: float(v) for k, v in checks.items()}, f"expected {checks}, got {seen}"
    errors = {k: v for k, v in m.items() if k.startswith("cdc_sink_errors_total") and v}
    letters = {k: v for k, v in m.items() if k.startswith("cdc_sink_dead_letters_total") and v}
    assert not errors and not letters, f"errors {errors}, dead letters {letters}"


@then("every change event was applied exactly once across both runs of the worker")
def exactly_once(sink: Sink, pipeline_source: PipelineSource):
    """From the commit log: no offset in two commits, nothing applied below the position
    the table recorded when the second run started, no offset range skipped."""
    entries = sink.worker.commit_log()
    result = audit(entries)
    starts = [e for e in entries if e.get("kind") == "start"]
    evidence.attach_json("exactly-once audit", result.as_dict())
    evidence.attach_json("worker runs (start lines of the commit log)", starts)
    evidence.attach_text("worker log (last lines)", sink.worker.logs(40))
    assert result.runs == 2, f"expected 2 runs of the worker, the log shows {result.runs}"
    assert result.exactly_once, result.summary()
    restarted = starts[-1]
    assert restarted.get("stored"), (
        f"the restarted worker found no position in the table: {restarted}"
    )


@then(
    "the dead-letter topic holds that record, with the reason and its topic, partition and "
    "offset in its headers"
)
def dead_letter_holds_record(sink: Sink, cdc_stack: Any):
    """Key and value unchanged; ``cdc.dlq.*`` headers say why and where from."""
    assert sink.poison is not None
    letters = read_dead_letters(
        cdc_stack.kafka_bootstrap, sink.worker.config.dead_letter_topic, count=1, timeout=60
    )
    evidence.attach_json(f"dead letters on {sink.worker.config.dead_letter_topic}", letters)
    assert len(letters) == 1, f"expected exactly 1 dead letter, got {len(letters)}"
    letter = letters[0]
    headers = letter["headers"]
    poison = sink.poison
    assert (letter["key"], letter["value"]) == (poison["key"], poison["value"]), letter
    assert "not JSON" in headers.get("cdc.dlq.reason", ""), headers
    assert headers.get("cdc.dlq.topic") == poison["topic"], headers
    assert headers.get("cdc.dlq.partition") == str(poison["partition"]), headers
    assert headers.get("cdc.dlq.offset") == str(poison["offset"]), headers


@then(parsers.parse("the worker's metrics count {count:d} dead letter"))
def dead_letter_metric(sink: Sink, pipeline_source: PipelineSource, count: int):
    """The dead letter is counted; the worker went on (it applied the records after it)."""
    worker = sink.worker
    worker.wait_applied(pipeline_source.change_events, timeout=APPLY_TIMEOUT)
    m = worker.metrics()
    letters = sum(v for k, v in m.items() if k.startswith("cdc_sink_dead_letters_total"))
    evidence.attach_json(
        "dead-letter and error metrics",
        {k: v for k, v in m.items() if "dead_letters" in k or "errors" in k},
    )
    assert letters == count, f"expected {count} dead letters in the metrics, got {letters}"
    assert m.get("cdc_sink_events_applied_total") == pipeline_source.change_events


@then(parsers.parse("the {fmt} table has a {column} column"))
def sink_has_column(sink: Sink, pipeline_source: PipelineSource, fmt: str, column: str):
    """Added by the worker when the first event carrying it arrived."""
    sink.worker.wait_applied(pipeline_source.change_events, timeout=APPLY_TIMEOUT)
    columns = {name: str(kind) for name, kind in sink.worker.table_columns().items()}
    added = [
        {k: (len(v) if k == "events" else v) for k, v in e.items()}
        for e in sink.worker.commit_log()
        if e.get("columns")
    ]
    evidence.attach_json(f"{fmt} table columns", columns)
    evidence.attach_json("commit-log lines that changed the columns", added)
    assert column in columns, f"{column} not among the {fmt} table's columns {sorted(columns)}"


@then(
    parsers.parse(
        "the rows not written since the column was added have no {column} in the {fmt} table"
    )
)
def old_rows_null(sink: Sink, pipeline_source: PipelineSource, column: str, fmt: str):
    """Rows written before the ALTER read null in the new column; the rows written after it
    hold their value."""
    rows = sink.worker.rows()
    touched = pipeline_source.touched_after_alter
    untouched = {k: r for k, r in rows.items() if k not in touched}
    evidence.attach_html(
        f"{fmt} rows around the new column",
        evidence.table_html(
            f"{column} in the {fmt} table",
            [
                {"id": k[0], column: r.get(column), "written after the ALTER": k in touched}
                for k, r in sorted(rows.items())
            ][:40],
        ),
    )
    assert untouched and all(r.get(column) is None for r in untouched.values()), (
        f"rows not written since the ALTER must read null: "
        f"{[(k, r.get(column)) for k, r in untouched.items() if r.get(column) is not None][:5]}"
    )
    assert all(rows[k].get(column) for k in touched), "rows written after the ALTER lost it"


@then(parsers.parse("the restarted worker went on from the position the {fmt} table recorded"))
def resumed_from_table(sink: Sink, fmt: str):
    """Iceberg: the restarted worker seeks to the offsets of the current snapshot. Delta: it
    reads from the group's committed offsets (committed after the table, so at or behind
    it) and skips every record below the app transaction version the table recorded."""
    entries = sink.worker.commit_log()
    starts = [i for i, e in enumerate(entries) if e.get("kind") == "start"]
    assert len(starts) == 2, f"expected 2 runs, the commit log shows {len(starts)}"
    second = entries[starts[1]]
    after = [e for e in entries[starts[1] :] if e.get("kind") in ("commit", "skip", "consumed")]
    assert after, "the restarted worker consumed nothing"
    topic = str(after[0]["topic"])
    (partition, (first, _)), *_ = after[0]["ranges"][topic].items()
    stored = (second.get("stored") or {}).get(topic, {}).get(partition)
    committed = (second.get("committed") or {}).get(topic, {}).get(partition)
    skipped = sum(int(e["summary"].get("skipped_replayed", 0)) for e in after)
    facts = {
        "format": fmt,
        "resumes from": second.get("resume"),
        "table recorded (next offset)": stored,
        "consumer group committed": committed,
        "first offset read after the restart": first,
        "records read again and skipped": skipped,
    }
    evidence.attach_json("where the restarted worker went on", facts)
    assert stored is not None, f"the {fmt} table recorded no position: {second}"
    if sink.worker.target.format == "iceberg":
        assert first == stored, f"expected the restart to seek to offset {stored}: {facts}"
        assert skipped == 0, facts
    else:
        assert first == (committed or 0), f"expected the group's offset {committed}: {facts}"
        assert skipped == max(0, stored - first), (
            f"every record below the table's version {stored} must be skipped: {facts}"
        )
