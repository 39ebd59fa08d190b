"""Steps for features/pipelines/lakehouse_sinks.feature: the sink worker and its table.

The sink worker is a real ``cdc-spec sink`` process from the ``sink_worker_factory`` fixture;
the Then steps compare its table with the source table and read its commit log and metrics.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from pytest_bdd import given, parsers, then

from cdc_support.checks.delivery import OP_CODES
from cdc_support.checks.integrity import compare_tables
from cdc_support.checks.lag import lag_against_commits
from cdc_support.sinks.base import duplicate_keys
from cdc_support.sinks.commit_log import applied_events, by_kind, commit_latencies
from cdc_support.sinks.commit_log import lag_samples as log_lag_samples
from cdc_support.sinks.trend import latency_plot_png, latency_trend
from cdc_support.source_table import Rows, SourceTable
from cdc_support.waiting import wait_until
from cdc_support.workload import NORMALIZERS
from pytest_cdc.fixtures.sinks import SinkWorkerProcess
from pytest_cdc.report import evidence
from steps.common import assert_lag_under, assert_tables_equal
from steps.pipelines import APPLY_TIMEOUT, CapturedTable, Sink

FORMATS = {"Delta": "delta", "Iceberg": "iceberg"}


def _format(name: str) -> str:
    if name not in FORMATS:
        raise pytest.UsageError(f"unknown table format {name!r}; use one of {list(FORMATS)}")
    return FORMATS[name]


@given(
    parsers.parse("a sink worker applies the customers topic to a new {fmt} table"),
    target_fixture="sink",
)
def sink_worker(
    fmt: str,
    captured_table: CapturedTable,
    sink_worker_factory: Callable[..., SinkWorkerProcess],
) -> Sink:
    """Start ``cdc-spec sink`` as its own process; wait until the snapshot rows are in."""
    worker = sink_worker_factory(captured_table.topic, format=_format(fmt))
    evidence.attach_text(
        "sink worker command line", " ".join(worker.command) + f"\n\npid {worker.pid}"
    )
    worker.wait_applied(captured_table.table.seeded, timeout=APPLY_TIMEOUT)
    return Sink(worker, fmt)


def wait_and_read(sink: Sink, source: SourceTable) -> Rows:
    """Wait until the worker has committed every change the source made; the source rows."""
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
def sink_equals_source(sink: Sink, pipeline_source: SourceTable, fmt: str) -> None:
    """Count, order-independent checksum and per-key diff (attached when they differ); and
    one row per key (Iceberg does not enforce keys)."""
    expected = wait_and_read(sink, pipeline_source)
    all_rows = sink.worker.read_all()
    key = pipeline_source.key
    twice = duplicate_keys(all_rows, key)
    evidence.attach_json(f"{fmt} table history (latest commits)", sink.worker.history(12))
    actual = {tuple(r[k] for k in key): r for r in all_rows}
    assert_tables_equal(expected, actual, f"{fmt} table vs {pipeline_source.label} table")
    assert not twice, f"integrity failure: keys held by more than one row: {twice[:10]}"
    assert len(all_rows) == len(expected), (len(all_rows), len(expected))


@then(
    parsers.parse(
        "the p95 lag from source commit to visible in the {fmt} table is under {limit:g} seconds"
    )
)
def p95_lag(sink: Sink, pipeline_source: SourceTable, fmt: str, limit: float) -> None:
    """Per workload event: source commit → the table commit holding it returned.

    PostgreSQL: the commit time Debezium read from the WAL (microseconds). MariaDB's binlog
    has whole seconds only, so there the commit time is the one the workload recorded when
    COMMIT returned (events and commits joined in order)."""
    entries = sink.worker.commit_log()
    if pipeline_source.precise_commit_times:
        samples = log_lag_samples(entries, exclude_ops={"r"})
        path = "source commit (WAL) → visible in the table"
    else:
        events = applied_events(entries, exclude_ops={"r"})
        commits = [(OP_CODES[o.op], o.key, o.committed_at) for o in pipeline_source.workload]
        samples = lag_against_commits(events, commits)
        path = "client commit → visible in the table"
    assert len(samples) == len(pipeline_source.workload), (
        f"{len(samples)} lag samples for {len(pipeline_source.workload)} operations"
    )
    assert_lag_under(samples, limit, f"{pipeline_source.label} → {fmt}", path)


@then(parsers.parse("the commit latency of the {fmt} table did not grow during the run"))
def latency_flat(sink: Sink, fmt: str) -> None:
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
def metrics_report(sink: Sink, pipeline_source: SourceTable) -> None:
    """/metrics: events consumed and applied, tombstones, batches, the lag histogram."""
    worker = sink.worker
    evidence.attach_text("/metrics", worker.metrics_text())
    m = worker.metrics()
    deletes = sum(1 for o in pipeline_source.workload if o.op == "delete")
    kinds = by_kind(worker.commit_log())
    events = pipeline_source.change_events
    checks = {
        "cdc_sink_events_consumed_total": events,
        "cdc_sink_events_applied_total": events,
        "cdc_sink_end_to_end_lag_seconds_count": events,
        "cdc_sink_tombstones_total": deletes,
        "cdc_sink_batches_committed_total": kinds.get("commit", 0),
    }
    seen = {name: m.get(name) for name in checks}
    evidence.attach_json("metrics vs what happened", {"expected": checks, "reported": seen})
    assert seen == {k: float(v) for k, v in checks.items()}, f"expected {checks}, got {seen}"
    errors = {k: v for k, v in m.items() if k.startswith("cdc_sink_errors_total") and v}
    letters = {k: v for k, v in m.items() if k.startswith("cdc_sink_dead_letters_total") and v}
    assert not errors and not letters, f"errors {errors}, dead letters {letters}"


@then(parsers.parse("the {fmt} table has a {column} column"))
def sink_has_column(sink: Sink, pipeline_source: SourceTable, fmt: str, column: str) -> None:
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
def old_rows_null(
    sink: Sink, rows_written_after_alter: set[tuple[Any, ...]], column: str, fmt: str
) -> None:
    """Rows written before the ALTER read null in the new column; the rows written after it
    hold their value."""
    rows = sink.worker.rows()
    touched = rows_written_after_alter
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
