"""Steps for features/faults/snapshots.feature: a preloaded table, a workload while Debezium
reads it (an initial snapshot, one Connect kill restarts, an incremental one), and the audit
of the handover.

The mechanics are in :mod:`cdc_support.checks.handover`, :mod:`cdc_support.faults.interleaving`
and :mod:`cdc_support.kafka.signals`; these are the sentences.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import pytest
from pytest_bdd import given, parsers, then, when

from cdc_support.checks.delivery import DeliveryAudit
from cdc_support.checks.handover import HandoverAudit, HandoverReport, from_last_snapshot
from cdc_support.events import ChangeEvent
from cdc_support.faults.interleaving import interleaving, interleaving_png
from cdc_support.faults.run import rebuilt_against_source
from cdc_support.faults.workload import PostgresWriter, SequencedWorkload
from cdc_support.kafka.signals import (
    SIGNAL_TABLE,
    create_signal_table,
    execute_snapshot,
    signal_config,
)
from cdc_support.waiting import wait_until
from pytest_cdc.fixtures.stack import ScenarioFixtures
from pytest_cdc.report import evidence

TABLE = "sequenced"
SEED = 17
TIMEOUT = 300.0
"""Seconds a snapshot, a workload or a delivery gets."""


@dataclass
class SnapshotRun:
    """One scenario: the table, its connector and reader, the workload and what came."""

    writer: PostgresWriter
    preloaded: int
    dsn: str
    connector: Any = None
    reader: Any = None
    workload: SequencedWorkload | None = None
    marks: list[tuple[float, str]] = field(default_factory=list)
    """(epoch seconds, label): the moments the report's plot marks."""
    events: list[ChangeEvent] = field(default_factory=list)
    handover: HandoverReport | None = None


def _source(source: str) -> None:
    if source != "PostgreSQL":
        raise pytest.UsageError(f"snapshots.feature runs on PostgreSQL, not {source!r}")


@given(
    parsers.re(r"a sequenced table in (?P<source>\w+) preloaded with (?P<rows>\d+) rows$"),
    target_fixture="snapshot_run",
)
def preloaded_table(source: str, rows: str, cdc_fixtures: ScenarioFixtures) -> SnapshotRun:
    """The sequenced table with ids 1..rows (seq 0), before any capture."""
    _source(source)
    dsn = cdc_fixtures.get("pg_database").dsn
    writer = PostgresWriter(dsn, TABLE)
    writer.create()
    writer.preload(int(rows))
    return SnapshotRun(writer, int(rows), dsn)


@given(
    parsers.parse(
        "a sequenced table in {source} preloaded with {rows:d} rows, captured by Debezium "
        "without an initial snapshot"
    ),
    target_fixture="snapshot_run",
)
def preloaded_and_streaming(source: str, rows: int, cdc_fixtures: ScenarioFixtures) -> SnapshotRun:
    """The preloaded table, a signal table, and a connector that streams from now on
    (snapshot.mode=no_data) with the source signal channel on."""
    run = preloaded_table(source, str(rows), cdc_fixtures)
    create_signal_table(run.dsn)
    run.connector = cdc_fixtures.get("pg_connector_factory")(
        [TABLE], snapshot_mode="no_data", extra=signal_config(), timeout=TIMEOUT
    )
    run.reader = cdc_fixtures.get("kafka_reader_factory")([run.connector.topic(TABLE)])
    return run


def _workload(run: SnapshotRun, count: int, rate: float | None = None) -> SequencedWorkload:
    run.workload = SequencedWorkload(run.writer, count, SEED, preloaded=run.preloaded, rate=rate)
    return run.workload


def _attach_workload(run: SnapshotRun) -> None:
    workload = run.workload
    assert workload is not None
    evidence.attach_json(
        "the workload",
        {
            "rows preloaded": run.preloaded,
            "operations": workload.count,
            "seconds": round(workload.seconds, 1),
            "moments": {
                label: round(at - (workload.started_at or at), 2) for at, label in run.marks
            },
        },
    )


@when(
    parsers.re(
        r"Debezium starts on it, and (?P<count>\d+) sequence-numbered operations run at "
        r"(?P<rate>\d+) per second once it has read (?P<first>\d+) rows"
        r"(?:; Kafka Connect is killed with SIGKILL once (?P<reads>\d+) are read)?$"
    )
)
def snapshot_under_load(
    snapshot_run: SnapshotRun,
    count: str,
    rate: str,
    first: str,
    reads: str | None,
    cdc_fixtures: ScenarioFixtures,
) -> None:
    """The connector starts; once its snapshot has read ``first`` rows the workload writes
    (``rate`` per second) while it reads on; optionally Connect is killed once ``reads`` rows
    were read; then the snapshot must finish, the workload end and every change arrive."""
    run, workload = snapshot_run, _workload(snapshot_run, int(count), float(rate))
    injector = cdc_fixtures.get("cdc_fault") if reads else None
    run.connector = cdc_fixtures.get("pg_connector_factory")([TABLE], wait=False, timeout=TIMEOUT)
    run.reader = cdc_fixtures.get("kafka_reader_factory")([run.connector.topic(TABLE)])
    _wait_reads(run, int(first))
    workload.start()
    try:
        run.marks.append((time.time(), "workload starts"))
        if reads:
            _wait_reads(run, int(reads))
            record = injector.inject("kill", "connect")
            run.marks += [(record.injected_at, "Connect killed"), (record.back_at, "Connect back")]
        run.connector.wait_streaming(timeout=TIMEOUT)
        workload.join(TIMEOUT)
    finally:
        workload.stop()
    _attach_workload(run)
    _wait_rebuilt(run)


def _wait_reads(run: SnapshotRun, rows: int) -> None:
    """Until the topic holds ``rows`` records — all reads while the snapshot runs — asked of
    the broker: the reader may be far behind the connector."""
    wait_until(
        run.reader.written,
        done=lambda written: written >= rows,
        timeout=TIMEOUT,
        interval=0.1,
        expected=f"Debezium's snapshot to have written {rows} reads to its topic",
    )


@when(
    parsers.parse(
        "{count:d} sequence-numbered operations run at {rate:d} per second and an incremental "
        "snapshot is signalled once {at:d} are committed"
    )
)
def incremental_under_load(snapshot_run: SnapshotRun, count: int, rate: int, at: int) -> None:
    """The workload writes at ``rate``; the signal goes in once ``at`` are committed."""
    run, workload = snapshot_run, _workload(snapshot_run, count, float(rate))
    workload.start()
    try:
        wait_until(
            lambda: workload.done,
            done=workload.passed(at),
            timeout=TIMEOUT,
            expected=f"the workload to commit {at} operations",
        )
        signal = execute_snapshot(run.dsn, [f"public.{TABLE}"])
        run.marks.append((time.time(), "execute-snapshot signalled"))
        evidence.attach_json(
            "the signal", {"table": SIGNAL_TABLE, "id": signal, "type": "execute-snapshot"}
        )
        workload.join(TIMEOUT)
    finally:
        workload.stop()
    _attach_workload(run)
    _wait_rebuilt(run)


def _wait_rebuilt(run: SnapshotRun) -> None:
    """Poll the topic until replaying it from the last snapshot's first read gives the source
    table (or the deadline says how far it is); then audit the handover."""
    source = run.writer.rows()
    assert run.workload is not None
    assert source == run.workload.expected_rows(), "the source table is not what was logged"
    report = wait_until(
        lambda: rebuilt_against_source(from_last_snapshot(run.reader.drain()), source),
        done=lambda seen: seen.ok,
        timeout=TIMEOUT,
        interval=1.0,
        expected="the table rebuilt from the topic's last snapshot on to equal the source table",
        describe=lambda seen: seen.summary().splitlines()[0],
    )
    run.events = run.reader.drain()
    evidence.attach_text("rebuilt from the last snapshot on vs source", report.summary())
    run.handover = HandoverAudit(run.workload.ops, preloaded=run.preloaded).audit(run.events)
    evidence.attach_json("snapshot and stream audit", run.handover.as_dict())
    if run.handover.attempts > 1:
        naive = rebuilt_against_source(run.events, source)
        evidence.attach_text("the whole topic replayed, both snapshots included", naive.summary())


@then("the snapshot read every row once, and operations committed while it read")
def read_once(snapshot_run: SnapshotRun) -> None:
    """No row read twice; the workload overlapped the reads (else the scenario shows
    nothing)."""
    report = snapshot_run.handover
    assert report is not None
    assert report.reread == 0, report.summary()
    assert report.committed_while_reading > 0, f"the workload did not overlap: {report.summary()}"


@then("the snapshot started again: rows were read twice, and every row at least once")
def read_again(snapshot_run: SnapshotRun) -> None:
    """Re-reads are the restart's cost; the restart read every row present."""
    report = snapshot_run.handover
    assert report is not None
    evidence.attach_text("what the restart cost", report.summary())
    assert report.reread > 0, (
        f"no row was read twice: the snapshot did not restart; {report.summary()}"
    )


@then(
    "every change committed after the snapshot's point was streamed; the doubled ones are counted"
)
def stream_complete(snapshot_run: SnapshotRun) -> None:
    """From the first streamed operation on, nothing lost and nothing unexpected."""
    report = snapshot_run.handover
    assert report is not None
    evidence.attach_text("handover", report.summary())
    assert report.first_streamed_seq is not None, report.summary()
    assert not report.stream.lost, report.summary()
    assert not report.stream.unexpected, report.summary()


@then("every committed change was streamed, and reads and streamed changes interleaved")
def incremental_complete(snapshot_run: SnapshotRun) -> None:
    """Streaming ran throughout: every operation delivered; reads came in several runs."""
    run = snapshot_run
    assert run.workload is not None
    audit = DeliveryAudit(run.workload.ops).audit(run.events)
    evidence.attach_json("stream audit", audit.as_dict())
    assert not audit.lost and not audit.unexpected, audit.summary()
    result = interleaving(run.events)
    assert result.read_runs > 1, f"the reads did not interleave with the stream: {result.summary()}"


@then("the table rebuilt from the last snapshot's reads and the stream equals the source table")
def rebuilt_equal(snapshot_run: SnapshotRun) -> None:
    """Checked while waiting (the wait ends only when it holds); restated for the report."""
    events = from_last_snapshot(snapshot_run.events)
    report = rebuilt_against_source(events, snapshot_run.writer.rows())
    assert report.ok, report.summary()


@then("the interleaving of reads and streamed changes is in the report")
def interleaving_in_report(snapshot_run: SnapshotRun) -> None:
    """Reads/s and streamed changes/s, the moments marked."""
    run = snapshot_run
    result = interleaving(run.events)
    marks = [(at - result.start, label) for at, label in run.marks]
    evidence.attach_png(
        "reads and streamed changes per second",
        interleaving_png(result, "Debezium on PostgreSQL", marks),
    )
    evidence.attach_json("interleaving", result.as_dict())
    assert sum(result.reads) > 0, result.summary()
