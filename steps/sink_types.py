"""Steps for features/pipelines/typed_sinks.feature: typed sink columns, unchanged TOAST."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

from pytest_bdd import given, parsers, then, when

from cdc_support.kafka.connector import DebeziumConnector
from cdc_support.kafka.topics import read_json_values
from cdc_support.postgres.tables import fetch_rows, toast_bytes
from cdc_support.sinks.columns import SINK_CONNECTOR_SETTINGS
from cdc_support.sinks.config import table_format
from cdc_support.sinks.dlq import read_dead_letters
from cdc_support.sinks.samples import (
    DOCUMENTS,
    TYPED_COLUMNS,
    TYPED_ROWS,
    TYPED_TABLE,
    CapturedSample,
    alter_column_type,
    batches_of_keys,
    create_documents,
    create_typed_table,
    dead_letter_reasons,
    decimal_key,
    differing_values,
    fetch_typed_rows,
    fits_decimal,
    insert_typed_row,
    native_table_types,
    readable,
    table_form,
    unavailable_counts,
    update_typed_row,
)
from cdc_support.sinks.unavailable import UNAVAILABLE_PLACEHOLDER, placeholder_forms
from pytest_cdc.fixtures.sinks import SinkWorkerProcess
from pytest_cdc.report import evidence

SIZE = 10_000
TIMEOUT = 180.0


def _capture(factory: Callable[..., DebeziumConnector], conn: Any, table: str) -> CapturedSample:
    connector = factory([table], extra=SINK_CONNECTOR_SETTINGS)
    config = {k: v for k, v in connector.config.items() if "password" not in k}
    evidence.attach_json("connector config", config)
    return CapturedSample(conn, table, connector.topic(table))


@given(
    "a PostgreSQL table with a column of each common type, captured by Debezium with value "
    "schemas and numeric source types",
    target_fixture="sink_source",
)
def typed_table(
    pg_conn: Any, pg_connector_factory: Callable[..., DebeziumConnector]
) -> CapturedSample:
    """``typed_sample`` (no rows yet), and a connector with :data:`SINK_CONNECTOR_SETTINGS`."""
    create_typed_table(pg_conn)
    return _capture(pg_connector_factory, pg_conn, TYPED_TABLE)


@given(
    "a documents table with REPLICA IDENTITY DEFAULT, captured by Debezium for a sink",
    target_fixture="sink_source",
)
def documents_table(
    pg_conn: Any, pg_connector_factory: Callable[..., DebeziumConnector]
) -> CapturedSample:
    """``documents (id, title, body text, attachment bytea)``: updates carry the key only."""
    create_documents(pg_conn)
    return _capture(pg_connector_factory, pg_conn, DOCUMENTS)


@given(
    parsers.parse("a sink worker applies that table's topic to a new {fmt} table"),
    target_fixture="sink_worker",
)
def running_worker(
    fmt: str, sink_source: CapturedSample, sink_worker_factory: Callable
) -> SinkWorkerProcess:
    """``cdc-spec sink`` on the table's topic, running."""
    worker = sink_worker_factory(sink_source.topic, format=table_format(fmt))
    evidence.attach_text("sink worker command line", " ".join(worker.command))
    return worker


@given(
    parsers.parse("a sink worker for the documents topic and a new {fmt} table, not started yet"),
    target_fixture="sink_worker",
)
def idle_worker(
    fmt: str, sink_source: CapturedSample, sink_worker_factory: Callable
) -> SinkWorkerProcess:
    """The worker's options are set; it starts in a later step."""
    worker = sink_worker_factory(sink_source.topic, format=table_format(fmt), start=False)
    evidence.attach_text("sink worker command line", " ".join(worker.command))
    return worker


@when("3 rows with edge values are inserted, and the amount and the tags of row 2 are updated")
def typed_rows(sink_source: CapturedSample) -> None:
    """Each its own transaction; the update sets numeric(38,10)'s largest value."""
    for row in TYPED_ROWS:
        insert_typed_row(sink_source.conn, row)
    changes = {"amount": Decimal("9999999999999999999999999999.9999999999"), "tags": ["x", None]}
    update_typed_row(sink_source.conn, 2, changes)
    sink_source.changes += len(TYPED_ROWS) + 1


@when(parsers.parse("rows with the amounts {amounts} are inserted"))
def rows_with_amounts(sink_source: CapturedSample, amounts: str) -> None:
    """One row per amount (other columns null), each its own transaction."""
    sink_source.insert_amounts(amounts)


@when(
    parsers.parse(
        "the source's amount column is widened to {kind}, and rows with the amounts {amounts} "
        "are inserted"
    )
)
def widened_then_rows(sink_source: CapturedSample, kind: str, amounts: str) -> None:
    """ALTER COLUMN ... TYPE: the sink table's column stays decimal(38,10)."""
    alter_column_type(sink_source.conn, "amount", kind)
    sink_source.insert_amounts(amounts)


@when(
    "document 2 is inserted with a 10 kB random body and attachment, and then only its title "
    "is updated"
)
def document_2(sink_source: CapturedSample) -> None:
    """Both change events wait in the topic for the worker."""
    sink_source.insert_document(2, SIZE)
    sink_source.rename_document(2)


@when("the sink worker starts and applies both events of document 2 in one batch")
def start_worker(sink_worker: SinkWorkerProcess, sink_source: CapturedSample) -> None:
    """The commit log shows the insert and the update of key 2 in one commit."""
    sink_worker.start()
    sink_worker.wait_applied(sink_source.changes, timeout=TIMEOUT)
    batches = batches_of_keys(sink_worker.commit_log())
    evidence.attach_json("commits (op, key)", [sorted(b) for b in batches])
    assert any({("c", (2,)), ("u", (2,))} <= b for b in batches), batches


@when("document 1 is inserted with a 10 kB random body and attachment, and applied")
def document_1(sink_source: CapturedSample, sink_worker: SinkWorkerProcess) -> None:
    """Committed to the table before its update comes."""
    sink_source.insert_document(1, SIZE)
    sink_worker.wait_applied(sink_source.changes, timeout=TIMEOUT)


@when("only the title of document 1 is updated")
def update_document_1(sink_source: CapturedSample) -> None:
    """The WAL record holds the key and the title; body and attachment stay in TOAST."""
    sink_source.rename_document(1)


@then(parsers.parse("the {fmt} table holds every source row with exactly its values"))
def exact_values(sink_worker: SinkWorkerProcess, sink_source: CapturedSample, fmt: str) -> None:
    """Each value equal, and of the same Python type, to what the source holds (Delta: a time
    as µs since midnight, a uuid as text)."""
    sink_worker.wait_applied(sink_source.changes, timeout=TIMEOUT)
    source = fetch_typed_rows(sink_source.conn)
    expected = {k: table_form(r, sink_worker.target.format) for k, r in source.items()}
    actual = sink_worker.rows()
    evidence.attach_json(
        "source rows (PostgreSQL, as psycopg reads them)", [readable(r) for r in source.values()]
    )
    evidence.attach_json(
        f"{fmt} table schema", native_table_types(sink_worker.target, sink_worker.config.app_id)
    )
    evidence.attach_json(f"{fmt} rows read back", [readable(r) for _, r in sorted(actual.items())])
    diffs = differing_values(expected, actual, list(TYPED_COLUMNS))
    evidence.attach_json("values that differ", [readable(d) for d in diffs])
    assert not diffs, f"{len(diffs)} values differ from the source: {diffs[:3]}"


@then(parsers.parse("the {fmt} table's columns have these types:"))
def column_types(sink_worker: SinkWorkerProcess, fmt: str, datatable: list[list[str]]) -> None:
    """The format's own type names (Delta's schema, Iceberg's schema)."""
    header, *rows = datatable
    wanted = {r[0]: r[header.index(fmt)] for r in rows}
    types = native_table_types(sink_worker.target, sink_worker.config.app_id)
    evidence.attach_json(f"{fmt} column types", {"expected": wanted, "table": types})
    assert types == wanted, f"{fmt} column types differ: expected {wanted}, table has {types}"


@then(
    parsers.parse(
        "the dead-letter topic holds the records of the rows with the amounts {first} and "
        '{second}, with reasons "{first_reason}" and "{second_reason}"'
    )
)
def dead_letters(
    sink_worker: SinkWorkerProcess,
    cdc_stack: Any,
    first: str,
    second: str,
    first_reason: str,
    second_reason: str,
) -> None:
    """Each record as Debezium wrote it, with ``cdc.dlq.reason`` naming the column."""
    letters = read_dead_letters(
        cdc_stack.kafka_bootstrap, sink_worker.config.dead_letter_topic, count=2, timeout=TIMEOUT
    )
    found = dead_letter_reasons(letters, "amount")
    evidence.attach_json("dead letters: the record's amount -> cdc.dlq.reason", found)
    assert len(letters) == 2 and set(found) == {decimal_key(first), decimal_key(second)}, found
    for amount, reason in ((first, first_reason), (second, second_reason)):
        text = found[decimal_key(amount)]
        assert reason in text and "'amount'" in text, f"reason for {amount}: {text!r}"


@then(
    parsers.parse(
        "the {fmt} table holds exactly the {count:d} rows whose amount fits, with their amounts"
    )
)
def fitting_rows(
    sink_worker: SinkWorkerProcess, sink_source: CapturedSample, fmt: str, count: int
) -> None:
    """The worker went on after each dead letter: every other row is in the table."""
    sink_worker.wait_applied(count, timeout=TIMEOUT)
    source = fetch_typed_rows(sink_source.conn)
    fits = {k[0]: r["amount"] for k, r in source.items() if fits_decimal(r["amount"], 38, 10)}
    held = {k[0]: r["amount"] for k, r in sink_worker.rows().items()}
    evidence.attach_json(
        f"amounts: source rows that fit vs {fmt} table", {"source": fits, "table": held}
    )
    assert len(fits) == count and held == fits, f"expected {fits}, the {fmt} table holds {held}"


@then("both update events carry Debezium's placeholder for the body and the attachment")
def placeholders_sent(sink_source: CapturedSample, cdc_stack: Any) -> None:
    """As the connector wrote them to the topic (the large values are stored out of line)."""
    stored = toast_bytes(sink_source.conn, DOCUMENTS)
    values = read_json_values(
        cdc_stack.kafka_bootstrap,
        sink_source.topic,
        done=lambda vs: sum(v["payload"]["op"] == "u" for v in vs if v) >= 2,
        timeout=TIMEOUT,
        expected="2 update events",
    )
    updates = [v["payload"]["after"] for v in values if v and v["payload"]["op"] == "u"]
    evidence.attach_json("update events' row images", {"TOAST bytes": stored, "after": updates})
    text_form, bytes_form = placeholder_forms({"type": "string"}, UNAVAILABLE_PLACEHOLDER)[:2]
    assert stored >= SIZE, f"the large values were not stored out of line ({stored} bytes)"
    for after in updates:
        assert after["body"] == text_form and after["attachment"] == bytes_form, after


@then(
    parsers.parse(
        "the {fmt} table equals the documents table, with the real 10 kB bodies and attachments"
    )
)
def documents_equal(sink_worker: SinkWorkerProcess, sink_source: CapturedSample, fmt: str) -> None:
    """Every column of every row equal to the source's, never the placeholder."""
    sink_worker.wait_applied(sink_source.changes, timeout=TIMEOUT)
    source = {(r["id"],): r for r in fetch_rows(sink_source.conn, DOCUMENTS)}
    actual = sink_worker.rows()
    evidence.attach_json(f"{fmt} rows read back", [readable(r) for _, r in sorted(actual.items())])
    diffs = differing_values(source, actual, ["id", "title", "body", "attachment"])
    assert not diffs, f"{len(diffs)} values differ: {[readable(d) for d in diffs[:3]]}"


@then(
    parsers.parse(
        "the worker counts {events:d} events that carried the placeholder, in its metrics and "
        "its commit log: {in_batch:d} filled from its batch, {from_table:d} from the table"
    )
)
def unavailable_counted(
    sink_worker: SinkWorkerProcess, events: int, in_batch: int, from_table: int
) -> None:
    """Metric ``cdc_sink_unavailable_events_total``; commit log: ``summary.unavailable`` per
    batch, ``detail.unavailable_rows`` (rows the table had to fill)."""
    counts = {
        "metric": sink_worker.metric("cdc_sink_unavailable_events_total"),
        **unavailable_counts(sink_worker.commit_log()),
    }
    evidence.attach_json("events that carried the placeholder", counts)
    expected = {"metric": events, "events": events, "filled_from_table": from_table}
    assert counts == expected and events - from_table == in_batch, counts
