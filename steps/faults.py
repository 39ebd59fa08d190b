"""Steps for features/faults/debezium_under_faults.feature and readers_under_faults.feature:
a sequenced workload, a fault injected mid-stream, and an exact audit of what the approach
delivered.

The mechanics are in :mod:`cdc_support.faults` (workload, run, matrix, timeline) and the
``cdc_fault`` / ``native_reader_factory`` / ``sink_worker_factory`` fixtures; these are the
sentences.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import pytest
from pytest_bdd import given, parsers, then, when

from cdc_support.checks.delivery import AuditReport, DeliveryAudit
from cdc_support.checks.integrity import compare_tables
from cdc_support.events import ChangeEvent
from cdc_support.faults.matrix import FaultRow, matrix_html
from cdc_support.faults.run import (
    CONNECTOR_SETTINGS,
    GUARANTEES,
    fault_named,
    rebuilt_against_source,
    wait_complete,
)
from cdc_support.faults.timeline import fault_timeline, timeline_png
from cdc_support.faults.workload import MySqlWriter, PostgresWriter, SequencedWorkload
from cdc_support.sinks.commit_log import audit as sink_audit
from cdc_support.waiting import WaitTimeout, wait_until
from pytest_cdc.fixtures.stack import ScenarioFixtures
from pytest_cdc.report import evidence

TABLE = "sequenced"
SEED = 16
DELIVERY_TIMEOUT = 300.0
"""Seconds an approach gets, after the workload, to deliver every committed change."""
READERS = {"PostgreSQL": "postgres", "MariaDB": "mariadb"}
COMPONENTS = {"PostgreSQL": "postgres", "MariaDB": "mariadb"}
CONNECTOR_FACTORIES = {"PostgreSQL": "pg_connector_factory", "MariaDB": "mysql_connector_factory"}


@dataclass
class FaultRun:
    """One scenario: the source, how its changes are delivered, and what happened."""

    source: str
    approach: str
    writer: Any
    delivered: Callable[[], list[ChangeEvent]]
    targets: dict[str, Any]
    sink: Any = None
    workload: SequencedWorkload | None = None
    fault: Any = None
    record: Any = None
    audit: AuditReport | None = None
    events: list[ChangeEvent] = field(default_factory=list)
    matrix: list[FaultRow] | None = None
    row: int = -1
    """This run's row in ``matrix`` (the session's), once it was audited."""

    def __repr__(self) -> str:
        return f"{self.approach} on {self.source}"

    def note(self, **changes: Any) -> None:
        """Update this run's row of the matrix (a failing step leaves it as it stands)."""
        assert self.matrix is not None
        self.matrix[self.row] = replace(self.matrix[self.row], **changes)


def _writer(source: str, fixtures: ScenarioFixtures) -> Any:
    if source == "PostgreSQL":
        return PostgresWriter(fixtures.get("pg_database").dsn, TABLE)
    if source == "MariaDB":
        return MySqlWriter(fixtures.get("mysql_database").admin, TABLE, label="MariaDB")
    raise pytest.UsageError(f"unknown source {source!r}; use one of {sorted(READERS)}")


def _prepare(source: str, fixtures: ScenarioFixtures) -> tuple[Any, Any]:
    """The fault injector first (a stack that cannot be faulted skips before anything is
    made), then the sequenced table."""
    injector = fixtures.get("cdc_fault")
    writer = _writer(source, fixtures)
    writer.create()
    return injector, writer


@given(
    parsers.parse(
        "a sequenced table in {source} captured by Debezium, its topic applied by a sink "
        "worker to a Delta table"
    ),
    target_fixture="fault_run",
)
def debezium_run(source: str, cdc_fixtures: ScenarioFixtures) -> FaultRun:
    """Debezium's connector on the table, a reader of its topic, a Delta sink worker on it."""
    _, writer = _prepare(source, cdc_fixtures)
    factory = cdc_fixtures.get(CONNECTOR_FACTORIES[source])
    connector = factory([TABLE], extra=dict(CONNECTOR_SETTINGS[source]) or None)
    topic = connector.topic(TABLE)
    reader = cdc_fixtures.get("kafka_reader_factory")([topic])
    sink = cdc_fixtures.get("sink_worker_factory")(topic, format="delta")

    targets = {"connect": "connect", "kafka": "kafka", "source": COMPONENTS[source], "sink": sink}
    return FaultRun(source, "Debezium", writer, reader.drain, targets, sink=sink)


@given(
    parsers.parse(
        "a sequenced table in {source} captured by {approach} running as a process of its own"
    ),
    target_fixture="fault_run",
)
def native_reader_run(source: str, approach: str, cdc_fixtures: ScenarioFixtures) -> FaultRun:
    """``cdc-spec reader`` on the table: its own process, its output a JSON-lines file."""
    _, writer = _prepare(source, cdc_fixtures)
    reader = cdc_fixtures.get("native_reader_factory")(READERS[source], table=TABLE)
    targets = {"source": COMPONENTS[source], "reader": reader}
    return FaultRun(source, approach, writer, reader.events, targets)


@when(
    parsers.parse(
        "{count:d} sequence-numbered operations run and {fault} once {at:d} are committed"
    )
)
def workload_with_fault(
    fault_run: FaultRun,
    count: int,
    fault: str,
    at: int,
    cdc_fixtures: ScenarioFixtures,
    fault_rows: list[FaultRow],
) -> None:
    """The workload writes in a thread; the fault is injected once ``at`` operations are
    committed; then every committed change must be delivered (at least once)."""
    plan = fault_named(fault)
    assert plan.role in fault_run.targets, f"{fault!r} does not apply to {fault_run!r}"
    workload = SequencedWorkload(fault_run.writer, count, SEED)
    fault_run.workload, fault_run.fault = workload, plan
    workload.start()
    try:
        wait_until(
            lambda: workload.done,
            done=workload.passed(at),
            timeout=DELIVERY_TIMEOUT,
            expected=f"the workload to commit {at} operations",
        )
        committed_before = workload.done
        fault_run.record = cdc_fixtures.get("cdc_fault").inject(
            plan.action, fault_run.targets[plan.role]
        )
        workload.join(DELIVERY_TIMEOUT)
    finally:
        workload.stop()
    evidence.attach_json(
        "the workload and the fault",
        {
            "operations": count,
            "committed when the fault was injected": committed_before,
            "fault": fault_run.record.as_dict(),
            "source outages seen by the writer": workload.outages,
            "seconds": round(workload.seconds, 1),
        },
    )
    try:
        fault_run.audit, fault_run.events = wait_complete(
            workload.ops, fault_run.delivered, timeout=DELIVERY_TIMEOUT, what=fault_run.approach
        )
    except WaitTimeout:  # the Then step says what was lost; the matrix shows it too
        fault_run.events = fault_run.delivered()
        fault_run.audit = DeliveryAudit(workload.ops).audit(fault_run.events)
    _add_row(fault_run, fault_rows)


def _add_row(fault_run: FaultRun, rows: list[FaultRow]) -> None:
    report = fault_run.audit
    assert report is not None
    fault_run.matrix, fault_run.row = rows, len(rows)
    rows.append(
        FaultRow(
            fault=fault_run.fault.short,
            approach=f"{fault_run.source} {fault_run.approach}",
            committed=report.committed,
            delivered=report.delivered,
            lost=len(report.lost),
            duplicated_in_stream=report.duplicates,
            duplicates_applied=None,
            table_equal=None,
            recovery_seconds=None,
            guarantee="",
            passed=False,
        )
    )


@then(
    parsers.parse("no committed change was lost, and duplicates are only what {guarantee} allows")
)
def nothing_lost(fault_run: FaultRun, guarantee: str) -> None:
    """Lost is 0; each duplicate repeats a change committed before the target was back;
    under exactly-once there is none."""
    assert guarantee in GUARANTEES, f"unknown guarantee {guarantee!r}; use one of {GUARANTEES}"
    report = fault_run.audit
    assert report is not None
    evidence.attach_json("delivery audit", report.as_dict(examples=10))
    latest = report.latest_duplicated_commit
    back_at = fault_run.record.back_at
    held = (
        not report.lost
        and not report.unexpected
        and (guarantee == "at-least-once" or report.duplicates == 0)
        and (latest is None or latest <= back_at)
    )
    fault_run.note(guarantee=guarantee, passed=held and fault_run.sink is None)
    assert not report.lost, report.summary()
    assert not report.unexpected, report.summary()
    if guarantee == "exactly-once":
        assert report.duplicates == 0, report.summary()
    assert latest is None or latest <= back_at, (
        f"a duplicate of a change committed at {latest:.3f}, after the target was back at "
        f"{back_at:.3f}: not a replay of the fault; {report.summary()}"
    )


@then("the table rebuilt from the delivered changes equals the source table")
def rebuilt_equals_source(fault_run: FaultRun) -> None:
    """Replaying every delivery in order, repeats included, gives the source table."""
    source = fault_run.writer.rows()
    assert fault_run.workload is not None
    assert source == fault_run.workload.expected_rows(), "the source table is not what was logged"
    report = rebuilt_against_source(fault_run.events, source)
    evidence.attach_text("rebuilt table vs source", report.summary())
    if not report.ok:
        fault_run.note(passed=False)
    assert report.ok, report.summary()


@then("the Delta table equals the source table, with no change applied twice")
def sink_equals_source(fault_run: FaultRun) -> None:
    """The sink's table holds every row's last seq; its commit log shows no offset applied
    in two commits."""
    sink, source = fault_run.sink, fault_run.writer.rows()
    expected = {key: {"seq": seq} for key, seq in source.items()}
    report = wait_until(
        lambda: compare_tables(
            expected, {k: {"seq": int(r["seq"])} for k, r in sink.rows().items()}
        ),
        done=lambda seen: seen.ok,
        timeout=DELIVERY_TIMEOUT,
        interval=1.0,
        expected="the Delta table to equal the source table",
        describe=lambda seen: seen.summary().splitlines()[0],
        ignore=(Exception,),
    )
    result = sink_audit(sink.commit_log())
    evidence.attach_json("sink exactly-once audit", result.as_dict())
    fault_run.note(
        table_equal=report.ok,
        duplicates_applied=len(result.duplicated_offsets),
        passed=report.ok and result.exactly_once,
    )
    assert report.ok, report.summary()
    assert result.exactly_once, result.summary()


@then("the fault's timeline and time to recover are in the report")
def timeline_in_report(fault_run: FaultRun, fault_rows: list[FaultRow]) -> None:
    """Events/s and lag per second around the fault (PNG), and the matrix so far (HTML)."""
    record = fault_run.record
    last_seen = max((e.observed_ts or 0.0 for e in fault_run.events), default=0.0)
    after = max(30, int(last_seen - record.injected_at) + 5)  # the whole recovery, however long
    timeline = fault_timeline(fault_run.events, record.injected_at, record.back_at, after=after)
    title = f"{fault_run.fault.short} under {fault_run.approach} on {fault_run.source}"
    evidence.attach_png("timeline around the fault", timeline_png(timeline, title))
    evidence.attach_text("time to recover", timeline.summary())
    fault_run.note(recovery_seconds=timeline.first_fresh_seconds)
    evidence.attach_html("the fault matrix so far", matrix_html(fault_rows))
    assert timeline.first_fresh_seconds is not None, (
        f"no change committed after the fault was delivered within the window: {timeline}"
    )
