"""Steps for features/mysql/binlog.feature: what each approach delivered, checked."""

from __future__ import annotations

from typing import Any

from pytest_bdd import parsers, then

from cdc_support.checks.delivery import OP_CODES, committed_ops, delivery_report
from cdc_support.checks.lag import lag_against_commits
from cdc_support.checks.replay import check_commit_order, rebuild_from_events
from cdc_support.events import ChangeEvent
from cdc_support.mysql.approach import EVENT_TIMEOUT, BinlogApproach
from cdc_support.mysql.binlog_capture import ReaderRestart
from cdc_support.mysql.privileges import binlog_clients, grants_for
from cdc_support.mysql.source_table import MySqlSourceTable
from cdc_support.workload import Operation
from pytest_cdc.janitor import MySqlDatabase
from pytest_cdc.report import evidence
from steps.common import assert_lag_under, assert_tables_equal


@then(
    parsers.parse("{approach} delivers {count:d} snapshot events before the new customer's insert")
)
def snapshot_events_before_marker(
    capture: BinlogApproach, marker_key: tuple[int], approach: str, count: int
) -> None:
    """Wait for the marker's insert; count the snapshot reads delivered before it."""
    events = capture.wait_events(
        lambda evs: any(e.key == marker_key and e.op == "c" for e in evs),
        expected=f"the insert of customer {marker_key[0]}",
        timeout=EVENT_TIMEOUT,
    )
    index = next(i for i, e in enumerate(events) if e.key == marker_key and e.op == "c")
    before = events[:index]
    evidence.attach_events(f"{approach}: events up to the new customer", events[: index + 1])
    assert [e.op for e in before] == ["r"] * count, (
        f"{approach}: expected {count} snapshot reads before the new insert, "
        f"got ops {[e.op for e in before]}"
    )


@then("every snapshot event equals its row in the MariaDB table")
def snapshot_events_equal_rows(capture: BinlogApproach, mysql_table: MySqlSourceTable) -> None:
    """Each "r" event's after-image is the row as the table holds it."""
    snapshot = [e for e in capture.delivered() if e.op == "r"]
    source = mysql_table.rows()
    expected = {e.key: source[e.key] for e in snapshot if e.key in source}
    assert_tables_equal(expected, rebuild_from_events(snapshot), "snapshot events vs source rows")


def _story_events(capture: BinlogApproach, key: tuple[Any, ...], count: int) -> list[ChangeEvent]:
    events = capture.wait_events(
        lambda evs: sum(1 for e in evs if e.key == key) >= count,
        expected=f"{count} events for key {key}",
        timeout=EVENT_TIMEOUT,
    )
    return [e for e in events if e.key == key]


@then(parsers.parse('{approach} delivers "{ops}" for customer 1 in commit order'))
def story_in_order(capture: BinlogApproach, story: dict[str, Any], approach: str, ops: str) -> None:
    """Per key, events arrive in commit order (binlog positions never go backwards)."""
    expected = [o.strip() for o in ops.split(",")]
    events = _story_events(capture, story["key"], len(expected))
    evidence.attach_events(f"{approach}: events for customer 1", events)
    assert [e.op for e in events] == expected
    problems = check_commit_order(events)
    assert not problems, "events out of commit order: " + "; ".join(problems)


def _story_event(capture: BinlogApproach, story: dict[str, Any], op: str) -> ChangeEvent:
    events = _story_events(capture, story["key"], 3)
    matching = [e for e in events if e.op == op]
    assert matching, f"no {op!r} event for customer 1; ops seen: {[e.op for e in events]}"
    return matching[0]


@then("the update carries the old name before and the new name after")
def update_images(capture: BinlogApproach, story: dict[str, Any]) -> None:
    """binlog_row_image=FULL: the update's before-image is the whole old row."""
    event = _story_event(capture, story, "u")
    assert event.before is not None, "update event has no before-image"
    assert event.before["full_name"] == story["inserted"]["full_name"]
    assert event.after is not None and event.after["full_name"] == story["new_name"]


@then("the delete carries the whole removed row before and nothing after")
def delete_images(capture: BinlogApproach, story: dict[str, Any]) -> None:
    """The delete's before-image has every column of the removed row."""
    event = _story_event(capture, story, "d")
    assert event.after is None
    assert event.before is not None
    row = story["inserted"]
    assert event.before["full_name"] == story["new_name"]
    assert (event.before["email"], event.before["country"]) == (row["email"], row["country"])


@then("every binlog client of the server is the least-privilege CDC user, not root")
def binlog_clients_not_root(
    mysql_table: MySqlSourceTable, mysql_database: MySqlDatabase, capture: BinlogApproach
) -> None:
    """The server's process list shows who streams the binlog (a "Binlog Dump" thread)."""
    cdc_user = mysql_database.cdc.user
    dumps = binlog_clients(mysql_table.conn)
    grants = grants_for(mysql_table.conn, cdc_user)
    evidence.attach_json("binlog clients (PROCESSLIST)", {"clients": dumps, "cdc grants": grants})
    assert dumps, "no client is streaming the binlog"
    assert {d["user"] for d in dumps} == {cdc_user}, f"binlog clients: {dumps}"
    assert not any("ALL PRIVILEGES" in g or "INSERT" in g for g in grants), grants


@then(parsers.parse("{approach} delivers {count:d} inserts"))
def delivers_inserts(capture: BinlogApproach, approach: str, count: int) -> None:
    """Wait for the inserts; nothing but inserts arrives."""
    events = capture.wait_count(count, timeout=EVENT_TIMEOUT)
    evidence.attach_events(f"{approach}: inserts", events)
    assert [e.op for e in events] == ["c"] * count


@then(
    parsers.parse(
        "the {before:d} inserts before the ALTER TABLE have no {column} and the {after:d} "
        "after it have one"
    )
)
def column_appears_after_alter(
    capture: BinlogApproach, before: int, column: str, after: int
) -> None:
    """Row events describe the table as it was when they were written."""
    events = capture.wait_count(before + after, timeout=EVENT_TIMEOUT)
    early, late = events[:before], events[before : before + after]
    assert all(column not in (e.after or {}) for e in early), (
        f"{column} in events written before the ALTER: {[e.after for e in early]}"
    )
    assert all((e.after or {}).get(column) for e in late), (
        f"{column} missing in events written after the ALTER: {[e.after for e in late]}"
    )


@then(parsers.parse("{approach} recorded the ALTER TABLE statement in its {record}"))
def recorded_alter(capture: BinlogApproach, approach: str, record: str) -> None:
    """Debezium: the schema history topic; the reader: its list of schema changes."""
    changes = capture.schema_changes("ADD COLUMN", timeout=EVENT_TIMEOUT)
    evidence.attach_json(changes.source, changes.records)
    assert any("ALTER TABLE" in s.upper() for s in changes.statements), changes.statements


@then("the binlog reader delivered every committed change exactly once, in commit order")
def reader_exactly_once(reader_restart: ReaderRestart) -> None:
    """Per key: the committed ops, each once; no binlog position delivered twice."""
    report = delivery_report(committed_ops(reader_restart.workload), reader_restart.events)
    evidence.attach_json("delivery accounting", report.as_dict())
    assert report.exactly_once, report.summary()
    problems = check_commit_order(reader_restart.events)
    assert not problems, "; ".join(problems)


@then("the table rebuilt from both readers' events equals the MariaDB table")
def reader_rebuild_equals(mysql_table: MySqlSourceTable, reader_restart: ReaderRestart) -> None:
    """Replaying both readers' events by key gives the table."""
    rebuilt = rebuild_from_events(reader_restart.events)
    assert_tables_equal(mysql_table.rows(), rebuilt, "rebuilt after restart")


def _workload_events(capture: BinlogApproach, workload: list[Operation]) -> list[ChangeEvent]:
    events = capture.wait_count(len(workload), timeout=EVENT_TIMEOUT * 2)
    return [e for e in events if e.op != "r"]


@then(parsers.parse("the table rebuilt from {approach}'s events equals the MariaDB table"))
def rebuilt_equals_table(
    capture: BinlogApproach,
    mysql_table: MySqlSourceTable,
    mysql_workload: list[Operation],
    approach: str,
) -> None:
    """Replay every event by key; compare count, checksum and per-key diff."""
    events = _workload_events(capture, mysql_workload)
    evidence.attach_events(f"{approach}: sample events", events)
    report = delivery_report(committed_ops(mysql_workload), events)
    evidence.attach_json(f"{approach}: delivery accounting", report.as_dict())
    assert_tables_equal(mysql_table.rows(), rebuild_from_events(events), f"rebuilt via {approach}")
    assert report.exactly_once, report.summary()


@then(parsers.parse("the p95 lag from commit to {approach}'s delivery is under {limit:g} seconds"))
def p95_lag(
    capture: BinlogApproach, mysql_workload: list[Operation], approach: str, limit: float
) -> None:
    """Lag per event: client commit time → Kafka record time (Debezium) or the moment the
    reader handed the transaction over. Binlog timestamps are whole seconds, so the commit
    time is the one the workload recorded when COMMIT returned."""
    events = _workload_events(capture, mysql_workload)
    commits = [(OP_CODES[o.op], o.key, o.committed_at) for o in mysql_workload]
    samples = lag_against_commits(events, commits)
    delivered_to = "Kafka" if approach == "Debezium" else "the reader"
    assert_lag_under(samples, limit, f"{approach} on MariaDB", f"commit → {delivered_to}")
