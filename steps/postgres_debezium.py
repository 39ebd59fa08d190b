"""Steps for features/postgres/debezium.feature: Debezium's PostgreSQL connector → Kafka."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pytest_bdd import given, parsers, then, when

from cdc_support.checks.lag import lag_samples
from cdc_support.checks.replay import check_commit_order, rebuild_from_events
from cdc_support.events import ChangeEvent, Tombstone
from cdc_support.kafka.connector import DebeziumConnector
from cdc_support.kafka.topics import TopicReader
from cdc_support.postgres.single_row import SingleRowStory, insert_marker, write_single_row_story
from cdc_support.postgres.source import set_replica_identity
from cdc_support.postgres.source_table import PostgresTable
from cdc_support.source_table import tally
from cdc_support.workload import EcommerceGenerator
from pytest_cdc.report import evidence
from steps.common import assert_lag_under, assert_tables_equal

EVENT_TIMEOUT = 60.0


@dataclass
class Capture:
    """A running connector and a reader on the captured table's topic."""

    connector: DebeziumConnector
    reader: TopicReader
    source: PostgresTable

    def events_for(self, key: tuple[Any, ...]) -> list[ChangeEvent | Tombstone]:
        """Records (events and tombstones) of one key, in topic order."""
        return [r for r in self.reader.seen.records if r.key == key]

    def __repr__(self) -> str:
        return f"Capture({self.connector.name})"


def _capture(
    factory: Callable[..., DebeziumConnector],
    reader_factory: Callable[..., TopicReader],
    source_table: PostgresTable,
    **options: Any,
) -> Capture:
    connector = factory([source_table.name], **options)
    evidence.attach_json(
        "connector config", {k: v for k, v in connector.config.items() if "password" not in k}
    )
    evidence.attach_text("connector status", str(connector.status()))
    reader = reader_factory([connector.topic(source_table.name)])
    return Capture(connector, reader, source_table)


@given(parsers.parse("a Debezium connector captures the {table} table"), target_fixture="capture")
@when(parsers.parse("a Debezium connector captures the {table} table"), target_fixture="capture")
def connector_captures(
    pg_connector_factory: Callable[..., DebeziumConnector],
    kafka_reader_factory: Callable[..., TopicReader],
    source_table: PostgresTable,
    table: str,
) -> Capture:
    """Register the connector (snapshot.mode=initial) and wait until it is RUNNING."""
    assert table == source_table.name
    return _capture(pg_connector_factory, kafka_reader_factory, source_table)


@given(
    parsers.parse(
        "a Debezium connector captures the {table} table with tombstones.on.delete={setting}"
    ),
    target_fixture="capture",
)
def connector_with_tombstones(
    pg_connector_factory: Callable[..., DebeziumConnector],
    kafka_reader_factory: Callable[..., TopicReader],
    source_table: PostgresTable,
    table: str,
    setting: str,
) -> Capture:
    """Register the connector with tombstones.on.delete set as the example says."""
    assert setting in ("true", "false"), f"tombstones.on.delete must be true|false, not {setting}"
    return _capture(
        pg_connector_factory,
        kafka_reader_factory,
        source_table,
        tombstones_on_delete=setting == "true",
    )


@given(parsers.parse("the {table} table has REPLICA IDENTITY {identity}"))
def replica_identity(source_table: PostgresTable, table: str, identity: str) -> None:
    """FULL logs whole old rows; DEFAULT logs only the primary key of changed rows."""
    assert identity in ("FULL", "DEFAULT"), identity
    set_replica_identity(source_table.conn, table, identity)


@when("I insert customer 1, update its name, then delete it", target_fixture="story")
def insert_update_delete(source_table: PostgresTable) -> SingleRowStory:
    """Three transactions on one row."""
    return write_single_row_story(source_table.conn, update=True)


@when("I insert customer 1, then delete it", target_fixture="story")
def insert_delete(source_table: PostgresTable) -> SingleRowStory:
    """Two transactions on one row."""
    return write_single_row_story(source_table.conn, update=False)


def _story_records(capture: Capture, story: SingleRowStory) -> list[ChangeEvent | Tombstone]:
    capture.reader.read_until(
        lambda seen: sum(1 for e in seen.events if e.key == story.key) >= len(story.ops),
        timeout=EVENT_TIMEOUT,
        expected=f"{len(story.ops)} events for key {story.key}",
    )
    records = capture.events_for(story.key)
    evidence.attach_events(f"records for key {story.key}", records)
    return records


def _event(capture: Capture, story: SingleRowStory, op: str) -> ChangeEvent:
    events = [r for r in _story_records(capture, story) if isinstance(r, ChangeEvent)]
    matching = [e for e in events if e.op == op]
    assert matching, f"no {op!r} event for key {story.key}; ops seen: {[e.op for e in events]}"
    return matching[0]


@then(parsers.parse('the {table} topic holds {count:d} events with op "{op}"'))
def topic_holds_events(capture: Capture, table: str, count: int, op: str) -> None:
    """Read until `count` events arrived, then check they all carry `op`."""
    seen = capture.reader.read_count(count, timeout=EVENT_TIMEOUT)
    evidence.attach_events(f"first {table} events", seen.events)
    ops = {e.op for e in seen.events}
    assert len(seen.events) == count, f"expected {count} events, got {len(seen.events)}"
    assert ops == {op}, f"expected only op {op!r}, saw {sorted(ops)}"


@then("every snapshot event's after-image equals its source row")
def snapshot_equals_source(capture: Capture, source_table: PostgresTable) -> None:
    """The snapshot, replayed, is the table."""
    rebuilt = rebuild_from_events(capture.reader.seen.events)
    assert_tables_equal(source_table.rows(), rebuilt, "snapshot vs source")


@then(parsers.parse('the {table} topic holds the events "{ops}" for customer 1 in that order'))
def events_in_order(capture: Capture, story: SingleRowStory, table: str, ops: str) -> None:
    """Per key, events arrive in commit order (source LSNs never go backwards)."""
    records = [r for r in _story_records(capture, story) if isinstance(r, ChangeEvent)]
    expected = [o.strip() for o in ops.split(",")]
    assert [e.op for e in records] == expected
    problems = check_commit_order(records)
    assert not problems, "events out of commit order: " + "; ".join(problems)


@then("the update event has the old name before and the new name after")
def update_before_after(capture: Capture, story: SingleRowStory) -> None:
    """The update event carries both images."""
    event = _event(capture, story, "u")
    assert story.updated is not None
    assert event.before is not None, "update event has no before-image"
    assert event.before["full_name"] == story.inserted["full_name"]
    assert event.after is not None and event.after["full_name"] == story.updated["full_name"]


@then("the delete event has the row before and no after")
def delete_before_no_after(capture: Capture, story: SingleRowStory) -> None:
    """A delete carries the removed row as before, and after=null."""
    event = _event(capture, story, "d")
    assert event.after is None
    assert event.before is not None and event.before["id"] == 1
    last_state = story.updated or story.inserted
    assert event.before["full_name"] == last_state["full_name"]


def _check_before(event: ChangeEvent, expectation: str, story: SingleRowStory, what: str) -> None:
    before = event.before
    previous = story.inserted if event.op == "u" else (story.updated or story.inserted)
    if expectation == "absent":
        assert before is None, f"{what}: expected no before-image, got {before}"
    elif expectation == "the key, other columns empty":
        # Debezium fills NOT NULL columns it was not given with their type's empty value.
        assert before is not None, f"{what}: expected a key-only before-image, got none"
        filled = {
            k: v
            for k, v in before.items()
            if k != "id" and v not in (None, "", 0, "1970-01-01T00:00:00Z")
        }
        assert before.get("id") == 1 and not filled, (
            f"{what}: expected only the key, got old values in {sorted(filled)}: {before}"
        )
    elif expectation == "the full old row":
        assert before is not None, f"{what}: expected the full old row, got none"
        assert before["full_name"] == previous["full_name"]
        assert before["email"] == previous["email"]
    else:
        raise AssertionError(f"unknown expectation {expectation!r} in the Examples table")


@then(parsers.parse("the update event's before-image is {expectation}"))
def update_before_image(capture: Capture, story: SingleRowStory, expectation: str) -> None:
    """What the update's `before` holds depends on REPLICA IDENTITY."""
    event = _event(capture, story, "u")
    evidence.attach_json("update event", event.to_json_dict())
    _check_before(event, expectation, story, "update")


@then(parsers.parse("the delete event's before-image is {expectation}"))
def delete_before_image(capture: Capture, story: SingleRowStory, expectation: str) -> None:
    """What the delete's `before` holds depends on REPLICA IDENTITY."""
    event = _event(capture, story, "d")
    evidence.attach_json("delete event", event.to_json_dict())
    _check_before(event, expectation, story, "delete")


@then("the delete event is followed by a tombstone for key 1")
def delete_then_tombstone(capture: Capture, story: SingleRowStory) -> None:
    """Debezium emits a null-value record after the delete so log compaction drops the key."""
    capture.reader.read_until(
        lambda seen: any(t.key == story.key for t in seen.tombstones),
        timeout=EVENT_TIMEOUT,
        expected=f"a tombstone for key {story.key}",
    )
    records = capture.events_for(story.key)
    evidence.attach_events("records for key 1", records)
    kinds = [r.op if isinstance(r, ChangeEvent) else "tombstone" for r in records]
    assert kinds[-2:] == ["d", "tombstone"], f"records for key 1: {kinds}"


@then("the delete event is the last record, with no tombstone")
def delete_is_last(capture: Capture, story: SingleRowStory) -> None:
    """With tombstones.on.delete=false nothing follows the delete.

    To prove the absence, a marker row is written after the delete and read back: everything
    committed before the marker has been delivered by then (one partition, commit order).
    """
    capture.reader.read_count(len(story.ops), timeout=EVENT_TIMEOUT)
    insert_marker(capture.source.conn, 999)
    capture.reader.read_until(
        lambda seen: any(e.key == (999,) for e in seen.events),
        timeout=EVENT_TIMEOUT,
        expected="the marker row (key 999) written after the delete",
    )
    records = capture.events_for(story.key)
    evidence.attach_events("records for key 1", records)
    kinds = [r.op if isinstance(r, ChangeEvent) else "tombstone" for r in records]
    assert kinds == list(story.ops), f"records for key 1: {kinds}"


@given(parsers.parse("the snapshot of {count:d} {table} has arrived"))
def snapshot_arrived(capture: Capture, count: int, table: str) -> None:
    """Wait for the snapshot before writing, so the workload's events follow it."""
    seen = capture.reader.read_count(count, timeout=EVENT_TIMEOUT)
    assert {e.op for e in seen.events} == {"r"}


@when(
    parsers.parse(
        "a mixed workload of {count:d} operations runs against {table} with seed {seed:d}"
    )
)
def run_workload(source_table: PostgresTable, count: int, table: str, seed: int) -> None:
    """Inserts, updates and deletes, each its own transaction (its own commit time)."""
    assert table == source_table.name, f"the scenario's table is {source_table.name}, not {table}"
    ops = source_table.run_workload(EcommerceGenerator(seed + 1), count)
    evidence.attach_json("workload", {"operations": count, "by kind": tally(ops)})


@then(parsers.parse("the table rebuilt from the {table} topic equals the source table"))
def rebuilt_equals_source(capture: Capture, source_table: PostgresTable, table: str) -> None:
    """Replay every event (snapshot + stream) by key and compare with the table."""
    expected_events = source_table.change_events
    capture.reader.read_count(expected_events, timeout=EVENT_TIMEOUT * 2)
    events = capture.reader.seen.events
    evidence.attach_events("sample streamed events", [e for e in events if e.op != "r"])
    rebuilt = rebuild_from_events(events)
    assert_tables_equal(source_table.rows(), rebuilt, f"{table} rebuilt from the topic")


@then(parsers.parse("the p95 lag of the workload's events is under {limit:g} seconds"))
def p95_lag_under(capture: Capture, limit: float) -> None:
    """Lag per streamed event: source commit time → Kafka record time."""
    streamed = [e for e in capture.reader.seen.events if e.op != "r"]
    assert_lag_under(lag_samples(streamed), limit, "workload events")
