"""Steps for features/pipelines/sink_poison.feature: a table without a primary key (keyless)
applied by a sink worker keyed with ``--key``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pytest_bdd import given, parsers, then, when

from cdc_support.checks.integrity import compare_tables
from cdc_support.kafka.connector import DebeziumConnector
from cdc_support.logs import json_level
from cdc_support.postgres.tables import (
    create_keyless_table,
    delete_one,
    fetch_rows,
    insert_rows,
    update_one,
)
from cdc_support.sinks.config import table_format
from cdc_support.sinks.dlq import count_records
from cdc_support.waiting import wait_until
from cdc_support.workload import NORMALIZERS
from pytest_cdc.fixtures.sinks import SinkWorkerProcess
from pytest_cdc.report import evidence
from steps.common import assert_tables_equal

TIMEOUT = 120.0
NOTES = "notes"


@given(
    parsers.parse(
        "a PostgreSQL notes table without a primary key (REPLICA IDENTITY FULL) holding "
        "{count:d} distinct notes, captured by Debezium"
    ),
    target_fixture="sink_notes",
)
def notes_captured(pg_conn: Any, pg_connector_factory: Callable, count: int) -> dict:
    """No primary key; the note text tells rows apart (the sink's --key)."""
    create_keyless_table(pg_conn, NOTES, "FULL")
    insert_rows(pg_conn, NOTES, [{"note": f"note {i:03d}", "n": i} for i in range(count)])
    connector: DebeziumConnector = pg_connector_factory([NOTES])
    return {"conn": pg_conn, "topic": connector.topic(NOTES), "count": count}


@given(parsers.parse("a sink worker applies the notes topic to a new {fmt} table with --key {key}"))
def notes_worker(sink_notes: dict, sink_worker_factory: Callable, fmt: str, key: str) -> None:
    """Started on the topic; the snapshot's rows are in when this returns."""
    worker = sink_worker_factory(sink_notes["topic"], format=table_format(fmt), key=(key,))
    worker.wait_applied(sink_notes["count"], timeout=TIMEOUT)
    sink_notes["worker"] = worker


@when(parsers.parse("{changed:d} of the notes are changed and {deleted:d} are deleted"))
def change_notes(sink_notes: dict, changed: int, deleted: int) -> None:
    """Each its own transaction; a delete is followed by a tombstone without a key."""
    conn = sink_notes["conn"]
    for i in range(changed):
        update_one(conn, NOTES, {"note": f"note {i:03d}"}, {"n": 1000 + i})
    for i in range(changed, changed + deleted):
        delete_one(conn, NOTES, {"note": f"note {i:03d}"})


@then(parsers.parse("the {fmt} table equals the notes table"))
def notes_equal(sink_notes: dict, fmt: str) -> None:
    """Keyed by note in the sink; the source is a multiset whose notes are distinct."""
    worker: SinkWorkerProcess = sink_notes["worker"]
    expected = {(r["note"],): r for r in fetch_rows(sink_notes["conn"], NOTES)}
    wait_until(
        lambda: compare_tables(expected, worker.rows(), normalizers=NORMALIZERS),
        done=lambda report: report.ok,
        timeout=TIMEOUT,
        interval=1.0,
        expected=f"the {fmt} table to equal the notes table",
        describe=lambda report: report.summary().splitlines()[0],
        log_lines=lambda: worker.logs(15).splitlines(),
    )
    assert_tables_equal(expected, worker.rows(), f"{fmt} table vs notes table")


@then(
    parsers.parse(
        "the worker skipped {count:d} tombstones without a key and sent nothing to the "
        "dead-letter topic"
    )
)
def keyless_tombstones_skipped(sink_notes: dict, cdc_stack: Any, count: int) -> None:
    """Counted by ``cdc_sink_keyless_tombstones_total``; no dead letter."""
    worker: SinkWorkerProcess = sink_notes["worker"]
    seen = wait_until(
        lambda: worker.metrics(),
        done=lambda m: m.get("cdc_sink_keyless_tombstones_total", 0) >= count,
        timeout=TIMEOUT,
        expected=f"{count} tombstones without a key counted",
        describe=lambda m: f"{m.get('cdc_sink_keyless_tombstones_total')} counted",
    )
    evidence.attach_json(
        "tombstone and dead-letter metrics",
        {k: v for k, v in seen.items() if "tombstones" in k or "dead_letters" in k},
    )
    assert seen["cdc_sink_keyless_tombstones_total"] == count
    dlq = worker.config.dead_letter_topic
    assert count_records(cdc_stack.kafka_bootstrap, dlq) == 0, f"dead letters on {dlq}"


@when(
    parsers.parse(
        "a sink worker is started on the notes topic for a new {fmt} table with --key {key}"
    )
)
def notes_worker_refused(
    sink_notes: dict, sink_worker_factory: Callable, fmt: str, key: str
) -> None:
    """Run in the foreground: it is expected to stop by itself."""
    worker = sink_worker_factory(
        sink_notes["topic"], format=table_format(fmt), key=(key,), start=False
    )
    sink_notes["worker"] = worker
    sink_notes["result"] = worker.run_until_exit(timeout=TIMEOUT)
    evidence.attach_text("worker output", sink_notes["result"].stderr[-4000:])


@then(
    parsers.parse("it exits with status 2 and one line that names --key and the columns {columns}")
)
def exits_naming_key(sink_notes: dict, columns: str) -> None:
    """One ERROR line, no traceback."""
    result = sink_notes["result"]
    errors = [line for line in result.stderr.splitlines() if json_level(line) == "ERROR"]
    assert result.returncode == 2, (result.returncode, result.stderr[-2000:])
    assert len(errors) == 1 and "Traceback" not in result.stderr, result.stderr[-2000:]
    assert "--key" in errors[0] and f"columns: {columns}" in errors[0], errors[0]


@then(parsers.parse("nothing went to the dead-letter topic, and no {fmt} table was made"))
def nothing_written(sink_notes: dict, cdc_stack: Any, fmt: str) -> None:
    """The worker refused before dead-lettering or writing anything."""
    worker: SinkWorkerProcess = sink_notes["worker"]
    dlq = worker.config.dead_letter_topic
    assert count_records(cdc_stack.kafka_bootstrap, dlq) == 0, f"dead letters on {dlq}"
    assert worker.table_columns() == {}, f"a {fmt} table was made: {worker.table_columns()}"
    kinds = [e["kind"] for e in worker.commit_log()]
    evidence.attach_json("commit-log lines", kinds)
    assert "commit" not in kinds, kinds
