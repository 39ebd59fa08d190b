"""Steps for features/pipelines/schema_changes.feature: one schema change mid-stream, seen by
Debezium, by the native reader, and by a Delta and an Iceberg sink worker at once.

The table, the changes and the writes are :mod:`cdc_support.schema_changes`; what a sink does
with a change is :mod:`cdc_support.sinks.type_changes`. Each Then step waits for its own path
and attaches what it measured; the last one attaches the case's matrix.
"""

from __future__ import annotations

from typing import Any

import pytest
from pytest_bdd import given, parsers, then, when

from cdc_support.capture import CaptureApproach
from cdc_support.events import ChangeEvent
from cdc_support.mysql.binlog_capture import BinlogReaderApproach
from cdc_support.schema_changes import CASES, AccountsTable, EventShape, FieldTypes
from cdc_support.schema_changes.cases import BIG_KEYS, SEEDED, writes_after, writes_before
from cdc_support.schema_changes.observed import (
    dead_letter_key,
    dead_letters_of,
    event_shape,
    expected_rows,
    handled_events,
    type_name,
)
from cdc_support.schema_changes.pipeline import SchemaPipeline
from cdc_support.sinks.columns import SINK_CONNECTOR_SETTINGS
from cdc_support.waiting import wait_until
from pytest_cdc.fixtures.sinks import SinkWorkerBase
from pytest_cdc.fixtures.stack import ScenarioFixtures
from pytest_cdc.report import evidence
from steps.common import assert_tables_equal

TIMEOUT = 90.0
READERS = {"PostgreSQL": "the logical decoding consumer", "MariaDB": "the binlog reader"}
FORMATS = {"Delta": "delta", "Iceberg": "iceberg"}


def _native_reader(source: str, fixtures: ScenarioFixtures) -> CaptureApproach:
    if source == "PostgreSQL":
        return fixtures.get("pg_capture_factory")("logical decoding", table="accounts")
    make = fixtures.get("binlog_reader_factory")
    reader = BinlogReaderApproach("accounts", ("id",), make_reader=make)
    fixtures.at_teardown(reader.close)
    return reader


def _types(worker: SinkWorkerBase) -> dict[str, str]:
    return {name: type_name(kind) for name, kind in worker.table_columns().items()}


@given(
    parsers.parse(
        "an accounts table in {source} with 10 rows, captured by Debezium and by {reader}, "
        "and applied to a Delta and an Iceberg table by two sink workers"
    ),
    target_fixture="schema_pipeline",
)
def schema_pipeline(source: str, reader: str, cdc_fixtures: ScenarioFixtures) -> SchemaPipeline:
    """Create and fill the table; register Debezium (values with their schema), start the
    native reader (from now on) and a sink worker per format; wait until both tables hold
    the 10 rows."""
    if READERS.get(source) != reader:
        raise pytest.UsageError(f"use one of {READERS} as source and native reader")
    conn = cdc_fixtures.get("pg_conn" if source == "PostgreSQL" else "mysql_conn")
    table = AccountsTable.postgres(conn) if source == "PostgreSQL" else AccountsTable.mariadb(conn)
    table.create()
    factory = "pg_connector_factory" if source == "PostgreSQL" else "mysql_connector_factory"
    connector = cdc_fixtures.get(factory)([table.name], extra=SINK_CONNECTOR_SETTINGS)
    topic = connector.topic(table.name)
    types = FieldTypes()
    debezium = cdc_fixtures.get("kafka_reader_factory")([topic], parse=types)
    native = _native_reader(source, cdc_fixtures)
    native.start()
    make = cdc_fixtures.get("sink_worker_factory")
    sinks = {label: make(topic, format=fmt) for label, fmt in FORMATS.items()}
    pipeline = SchemaPipeline(table, topic, debezium, types, reader, native, sinks)
    for label, worker in sinks.items():
        worker.wait_applied(table.change_events, timeout=TIMEOUT)
        pipeline.types_before[label] = _types(worker)
    evidence.attach_json("sink table columns before the change", pipeline.types_before)
    return pipeline


@when(
    parsers.parse(
        "6 rows are written, then {change} at the source, then 8 more are written or deleted"
    )
)
def change_mid_stream(schema_pipeline: SchemaPipeline, change: str) -> None:
    """The writes before, the ALTER TABLE, the writes after (values only the new shape holds
    in rows 16 and 17), each its own transaction, without waiting for any reader between."""
    if change not in CASES:
        raise pytest.UsageError(f"unknown change {change!r}; use one of {list(CASES)}")
    case = schema_pipeline.case = CASES[change]
    table = schema_pipeline.table
    for write in writes_before():
        table.write(write)
    statement = table.change(case)
    for write in writes_after(case):
        table.write(write)
    evidence.attach_text("the change", f"{statement}\n\nthen: {writes_after(case)}")


# --------------------------------------------------------------------------- the events


def _events(pipeline: SchemaPipeline, path: str) -> tuple[list[ChangeEvent], list[Any] | None]:
    """Every event of ``path`` ("Debezium" or the native reader), waited for."""
    table = pipeline.table
    if path == "Debezium":
        seen = pipeline.debezium.read_until(
            lambda s: len(s.events) >= table.change_events,
            timeout=TIMEOUT,
            expected=f"{table.change_events} change events",
        )
        return seen.events, pipeline.field_types.types
    if path == pipeline.reader_name:
        streamed = table.change_events - SEEDED  # the reader starts from now: no snapshot
        return pipeline.reader.wait_count(streamed, timeout=TIMEOUT), None
    raise pytest.UsageError(f"unknown path {path!r}; use Debezium or {pipeline.reader_name}")


def _shape(pipeline: SchemaPipeline, path: str) -> EventShape:
    events, types = _events(pipeline, path)
    shape = event_shape(path, pipeline.changed(), events, types)
    evidence.attach_json(f"{path}: events around the change", shape.as_dict())
    pipeline.matrix[path] = shape.summary()
    return shape


@then(parsers.parse("{path}'s events after the change no longer carry {column}"))
def events_without_column(schema_pipeline: SchemaPipeline, path: str, column: str) -> None:
    """Every event before the drop carries the column, none after it does."""
    assert column == schema_pipeline.changed().column, f"the change is about {column}"
    shape = _shape(schema_pipeline, path)
    assert shape.ok, f"{path}: {shape.problems}"


@then(
    parsers.parse(
        "{path}'s events after the change carry the values only the new type holds, exactly"
    )
)
def events_with_new_values(schema_pipeline: SchemaPipeline, path: str) -> None:
    """Rows 16 and 17 arrive with exactly the values written (above 2^31, 300 characters,
    10 digits before the point); Debezium's field type is the new one."""
    shape = _shape(schema_pipeline, path)
    assert shape.ok, f"{path}: {shape.problems}"
    if shape.types and not schema_pipeline.changed().same_connect_type:
        assert shape.types["before"] != shape.types["after"], f"{path}: {shape.types}"


# --------------------------------------------------------------------------- the sinks


def _settled(pipeline: SchemaPipeline, fmt: str) -> SinkWorkerBase:
    """The worker of ``fmt``, once it committed or dead-lettered every change event."""
    worker = pipeline.sinks[fmt]
    total = pipeline.table.change_events

    def handled() -> float:
        assert worker.running(), f"{worker!r} stopped; its log:\n{worker.logs(30)}"
        return handled_events(worker.metrics())

    wait_until(
        handled,
        done=lambda n: n >= total,
        timeout=TIMEOUT,
        interval=0.25,
        expected=f"{worker!r} to commit or dead-letter {total} change events",
        describe=lambda n: f"{n:.0f} handled",
        log_lines=lambda: worker.logs(15).splitlines(),
    )
    return worker


def _dead_letters(worker: SinkWorkerBase) -> list[dict[str, Any]]:
    """The dead letters this worker wrote (both workers share ``<topic>.dlq``)."""
    config = worker.config
    return dead_letters_of(config.bootstrap, config.dead_letter_topic, config.group)


def _column_types(pipeline: SchemaPipeline, fmt: str, column: str) -> tuple[str, str]:
    worker = _settled(pipeline, fmt)
    now = _types(worker)
    changes = [e["columns"] for e in worker.commit_log() if e.get("columns")]
    evidence.attach_json(
        f"{fmt} table: columns before → after",
        {"before": pipeline.types_before[fmt], "after": now, "commit-log changes": changes},
    )
    assert column in now, f"{column} is not a column of the {fmt} table: {sorted(now)}"
    return pipeline.types_before[fmt][column], now[column]


def _big_values_exact(pipeline: SchemaPipeline, fmt: str) -> None:
    case = pipeline.changed()
    rows = pipeline.sinks[fmt].rows()
    held = {k: rows.get((k,), {}).get(case.column) for k in BIG_KEYS}
    assert held == dict(zip(BIG_KEYS, case.big_values, strict=True)), f"{fmt} holds {held}"


@then(parsers.parse("the {fmt} table keeps {column}, null in the rows written since the drop"))
def sink_keeps_dropped(schema_pipeline: SchemaPipeline, fmt: str, column: str) -> None:
    """The column stays; rows written after the drop read null in it, older rows keep theirs."""
    before, after = _column_types(schema_pipeline, fmt, column)
    rows = schema_pipeline.sinks[fmt].rows()
    written = {(w.key,) for w in writes_after(schema_pipeline.changed()) if w.op != "delete"}
    wrong = {
        k[0]: r.get(column)
        for k, r in rows.items()
        if r.get(column) != (None if k in written else f"L{k[0]}")
    }
    schema_pipeline.matrix[fmt] = f"kept {column} {after}; null in {len(written)} rows since"
    schema_pipeline.refused[fmt] = 0
    assert before == after and not wrong, f"{fmt}: {column} {before}→{after}, wrong: {wrong}"


@then(parsers.parse("the {fmt} table widens {column} from {old} to {new}"))
def sink_widens(schema_pipeline: SchemaPipeline, fmt: str, column: str, old: str, new: str) -> None:
    """The table's column type grew in place; the new values are in it, exactly."""
    before, after = _column_types(schema_pipeline, fmt, column)
    schema_pipeline.matrix[fmt] = f"widened {column} {before} → {after}"
    schema_pipeline.refused[fmt] = 0
    assert (before, after) == (old, new), f"{fmt}: {column} went {before} → {after}"
    _big_values_exact(schema_pipeline, fmt)


@then(parsers.parse("the {fmt} table keeps {column} as {kind}, which holds every new value"))
def sink_keeps_holds(schema_pipeline: SchemaPipeline, fmt: str, column: str, kind: str) -> None:
    """Nothing to change: the new values fit the column the table has."""
    before, after = _column_types(schema_pipeline, fmt, column)
    schema_pipeline.matrix[fmt] = f"kept {column} {after}: holds every value"
    schema_pipeline.refused[fmt] = 0
    assert before == after == kind, f"{fmt}: {column} went {before} → {after}"
    _big_values_exact(schema_pipeline, fmt)


@then(
    parsers.parse(
        "the {fmt} table keeps {column} as {kind} and dead-letters the {count:d} records "
        "whose value does not fit"
    )
)
def sink_keeps_refuses(
    schema_pipeline: SchemaPipeline, fmt: str, column: str, kind: str, count: int
) -> None:
    """The type stays; the records of rows 16 and 17 are on the dead-letter topic, their
    reason naming the column, the new type and why the table keeps its own."""
    before, after = _column_types(schema_pipeline, fmt, column)
    letters = _dead_letters(schema_pipeline.sinks[fmt])
    reasons = {str(dead_letter_key(x)): x["headers"].get("cdc.dlq.reason") for x in letters}
    evidence.attach_json(f"{fmt} dead letters: key → reason", reasons)
    schema_pipeline.matrix[fmt] = f"kept {column} {after}; dead-lettered {len(letters)} records"
    schema_pipeline.refused[fmt] = count
    assert before == after == kind, f"{fmt}: {column} went {before} → {after}"
    assert sorted(dead_letter_key(x) for x in letters) == [(k,) for k in BIG_KEYS][:count]
    assert all(f"column '{column}'" in r and "cannot widen" in r for r in reasons.values())


@then(
    "each sink table equals the source table for every row it applied, and holds every other "
    "row's record on the dead-letter topic; both workers still run"
)
def sinks_equal_source(schema_pipeline: SchemaPipeline) -> None:
    """Per table: the source rows (their current columns) but the dead-lettered keys."""
    source = schema_pipeline.table.rows()
    columns = list(next(iter(source.values())))
    for fmt in FORMATS:
        worker = _settled(schema_pipeline, fmt)
        skipped = {dead_letter_key(x) for x in _dead_letters(worker)}
        stated = schema_pipeline.refused.get(fmt)
        assert stated is not None, f"the scenario states nothing about the {fmt} table"
        assert len(skipped) == stated, f"{fmt} dead-lettered {sorted(skipped)}, not {stated}"
        expected = expected_rows(source, columns, skipped)
        actual = expected_rows(worker.rows(), columns, ())
        assert_tables_equal(expected, actual, f"{fmt} table vs source (but {sorted(skipped)})")
        assert worker.running(), f"{worker!r} stopped"
    case = schema_pipeline.changed()
    evidence.attach_html(
        "what each path did with the change",
        evidence.table_html(
            f"{schema_pipeline.table.label}: {case.column} {case.before} → {case.after}",
            [{"path": path, "what it did": done} for path, done in schema_pipeline.matrix.items()],
        ),
    )
