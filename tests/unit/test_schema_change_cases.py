"""The schema-change cases and how a path's events and a sink's table are judged, without
servers (features/pipelines/schema_changes.feature runs them for real)."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pyarrow as pa

from cdc_support.events import ChangeEvent
from cdc_support.schema_changes import CASES
from cdc_support.schema_changes.cases import (
    BIG_KEYS,
    create_table,
    ordinary_row,
    writes_after,
    writes_before,
)
from cdc_support.schema_changes.observed import (
    dead_letter_key,
    describe_field,
    event_shape,
    expected_rows,
    handled_events,
    type_name,
)
from cdc_support.schema_changes.source import AccountsTable


def _event(op: str, row: dict[str, Any]) -> ChangeEvent:
    before, after = (row, None) if op == "d" else (None, row)
    return ChangeEvent(op, (row["id"],), before, after, {}, None, None)  # type: ignore[arg-type]


def _stream(case_name: str, override: dict[int, Any] | None = None) -> list[ChangeEvent]:
    """The events a faithful path delivers for the case: whole rows (``override``: values of
    the changed column after it)."""
    case = CASES[case_name]
    rows = {k: ordinary_row(k) for k in range(1, 11)}
    events = []
    for after, write in [(False, w) for w in writes_before()] + [
        (True, w) for w in writes_after(case)
    ]:
        if after and case.drops:
            for row in rows.values():
                row.pop(case.column, None)
        op = {"insert": "c", "update": "u", "delete": "d"}[write.op]
        row = rows.pop(write.key) if op == "d" else {**rows.get(write.key, {}), **write.values}
        if op != "d":
            rows[write.key] = row
        if write.key in (override or {}):
            row = {**row, case.column: (override or {})[write.key]}
        events.append(_event(op, dict(row)))
    return events


def test_every_case_has_a_statement_per_database_and_values_only_the_new_type_holds() -> None:
    for case in CASES.values():
        assert set(case.ddl) == {"PostgreSQL", "MariaDB"}
        assert case.drops or len(case.big_values) == len(BIG_KEYS)
    assert "numeric(8,2)" in create_table("PostgreSQL") and "DECIMAL(8,2)" in create_table(
        "MariaDB"
    )
    assert CASES["qty becomes bigint"].big_values[0] > 2**31


def test_after_a_drop_no_written_row_carries_the_column() -> None:
    case = CASES["legacy_code is dropped"]
    assert all(case.column not in w.values for w in writes_after(case))
    assert all(case.column in w.values for w in writes_before() if w.op == "insert")


def test_a_faithful_path_passes_and_a_lossy_one_is_named() -> None:
    case = CASES["qty becomes bigint"]
    good = event_shape("path", case, _stream(case.name))
    assert good.ok and (good.before, good.after) == (6, 8), good.problems
    assert good.values == {16: 3_000_000_000, 17: -(2**40)}
    wrapped = event_shape("path", case, _stream(case.name, {16: -1294967296}))
    assert not wrapped.ok and "id 16" in wrapped.problems[0]


def test_decimals_compare_exactly_whatever_form_they_arrive_in() -> None:
    case = CASES["price becomes numeric(12,2)"]
    as_text = event_shape("Debezium", case, _stream(case.name, {16: "1234567890.12"}))
    assert as_text.ok, as_text.problems
    rounded = event_shape("x", case, _stream(case.name, {16: Decimal("1234567890.1")}))
    assert not rounded.ok


def test_a_dropped_column_still_sent_is_a_problem() -> None:
    case = CASES["legacy_code is dropped"]
    assert event_shape("p", case, _stream(case.name)).ok
    stale = event_shape("p", case, _stream(case.name, {18: "L18"}))
    assert not stale.ok and stale.carried_after == [18]


def test_debezium_types_are_read_around_the_change() -> None:
    case = CASES["qty becomes bigint"]
    events = _stream(case.name)
    types = [{"qty": "int32"}] * 6 + [{"qty": "int64"}] * 8
    assert event_shape("Debezium", case, events, types).types == {
        "before": "int32",
        "after": "int64",
    }
    numeric = {
        "type": "string",
        "parameters": {
            "__debezium.source.column.type": "NUMERIC",
            "__debezium.source.column.length": "12",
            "__debezium.source.column.scale": "2",
        },
    }
    assert describe_field(numeric) == "string (NUMERIC(12,2))"


def test_sink_side_helpers() -> None:
    assert (
        type_name(pa.decimal128(8, 2)) == "decimal(8,2)"
        and type_name(pa.large_string()) == "string"
    )
    letter = {"key": json.dumps({"schema": {}, "payload": {"id": 16}})}
    assert dead_letter_key(letter) == (16,) and dead_letter_key({"key": '{"id": 3}'}) == (3,)
    source = {(1,): {"id": 1, "qty": 1}, (2,): {"id": 2, "qty": 2}}
    assert expected_rows(source, ["id"], [(2,)]) == {(1,): {"id": 1}}
    metrics = {
        "cdc_sink_events_applied_total": 22.0,
        'cdc_sink_dead_letters_total{reason="bad_value"}': 2.0,
    }
    assert handled_events(metrics) == 24.0


def test_the_source_table_writes_one_statement_per_row() -> None:
    done: list[tuple[str, tuple[Any, ...]]] = []
    table = AccountsTable("MariaDB", lambda s, a: done.append((s, a)), dict)
    table.create(rows=2)
    table.change(CASES["qty becomes bigint"])
    assert done[0][0].startswith("CREATE TABLE `accounts`") and len(done) == 4
    assert done[1] == (
        "INSERT INTO `accounts` (`id`, `qty`, `note`, `price`, `legacy_code`) "
        "VALUES (%s, %s, %s, %s, %s)",
        (1, 10, "note 1", Decimal("1.25"), "L1"),
    )
    assert done[-1][0] == "ALTER TABLE `accounts` MODIFY qty BIGINT" and table.change_events == 2
