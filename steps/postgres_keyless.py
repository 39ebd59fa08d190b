"""Steps for features/postgres/keyless_tables.feature: tables without a primary key."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pytest_bdd import given, parsers, then, when

from cdc_support.checks.integrity import compare_multisets
from cdc_support.checks.replay import rebuild_from_events
from cdc_support.events import ChangeEvent, Tombstone
from cdc_support.kafka.connector import DebeziumConnector
from cdc_support.kafka.topics import TopicReader
from cdc_support.naming import connector_name
from cdc_support.postgres.tables import (
    ReplicaIdentityMissing,
    create_keyless_table,
    delete_one,
    fetch_rows,
    insert_rows,
    publication_refusal,
    replication_objects,
    update_one,
)
from pytest_cdc.report import evidence

EVENT_TIMEOUT = 60.0
NOTES = [{"note": "buy milk", "n": 1}, {"note": "buy milk", "n": 1}, {"note": "call Bob", "n": 2}]
"""Three rows, two of them equal: only a multiset tells them apart."""
EQUAL_NOTE = NOTES[0]


@dataclass
class KeylessTable:
    """A table without a primary key in this scenario's database."""

    conn: Any
    name: str
    identity: str

    def rows(self) -> list[dict[str, Any]]:
        """The table's rows, as a list (duplicates kept)."""
        return fetch_rows(self.conn, self.name)

    def __repr__(self) -> str:
        return f"keyless table {self.name} (REPLICA IDENTITY {self.identity})"


@dataclass
class KeylessCapture:
    """The connector on the keyless table and a reader on its topic."""

    connector: DebeziumConnector
    reader: TopicReader

    def kinds(self) -> list[str]:
        """Op of each record read so far, "tombstone" for tombstones."""
        return _kinds(self.reader.seen.records)

    def __repr__(self) -> str:
        return f"KeylessCapture({self.connector.name})"


def _kinds(records: list[ChangeEvent | Tombstone]) -> list[str]:
    return [r.op if isinstance(r, ChangeEvent) else "tombstone" for r in records]


@given(
    parsers.parse(
        "a keyless {table} table with REPLICA IDENTITY {identity} holding 3 notes, "
        "two of them equal"
    ),
    target_fixture="keyless_table",
)
def keyless_table(pg_conn: Any, table: str, identity: str) -> KeylessTable:
    """No primary key; two of the three rows are equal."""
    assert identity in ("FULL", "DEFAULT"), identity
    create_keyless_table(pg_conn, table, identity)
    insert_rows(pg_conn, table, NOTES)
    evidence.attach_html(f"{table} rows", evidence.table_html(f"{table} (no primary key)", NOTES))
    return KeylessTable(pg_conn, table, identity)


@given(parsers.parse("Debezium captures the keyless {table} table"), target_fixture="keyless")
def capture_keyless(
    pg_connector_factory: Callable[..., DebeziumConnector],
    kafka_reader_factory: Callable[..., TopicReader],
    keyless_table: KeylessTable,
    table: str,
) -> KeylessCapture:
    """Register the connector (it snapshots the 3 rows, then streams)."""
    assert table == keyless_table.name
    connector = pg_connector_factory([table])
    evidence.attach_json(
        "connector config", {k: v for k, v in connector.config.items() if "password" not in k}
    )
    return KeylessCapture(connector, kafka_reader_factory([connector.topic(table)]))


@when("I insert a note, change one of the two equal notes, then delete the other one")
def write_notes(keyless_table: KeylessTable) -> None:
    """Three transactions; the update and the delete each touch ONE of two equal rows."""
    conn, table = keyless_table.conn, keyless_table.name
    insert_rows(conn, table, [{"note": "water plants", "n": 3}])
    update_one(conn, table, EQUAL_NOTE, {"n": 10})
    delete_one(conn, table, EQUAL_NOTE)


@then(parsers.parse('the {table} topic holds the events "{ops}", every one with a null key'))
def events_with_null_keys(keyless: KeylessCapture, table: str, ops: str) -> None:
    """Snapshot reads, then c/u/d in commit order; no event has a key."""
    expected = [o.strip() for o in ops.split(",")]
    seen = keyless.reader.read_count(len(expected), timeout=EVENT_TIMEOUT)
    evidence.attach_events(f"{table} records (key null)", seen.records)
    assert [e.op for e in seen.events] == expected, f"records: {_kinds(seen.records)}"
    keyed = [e.to_json_dict() for e in seen.events if e.key is not None]
    assert not keyed, f"events with a key from a keyless table: {keyed}"


@then("the update's and the delete's before-images are whole rows")
def whole_before_images(keyless: KeylessCapture) -> None:
    """REPLICA IDENTITY FULL logs the whole old row: the only way to find a keyless row."""
    events = {e.op: e for e in keyless.reader.seen.events if e.op in ("u", "d")}
    assert set(events) == {"u", "d"}, f"records: {keyless.kinds()}"
    assert events["u"].before == EQUAL_NOTE, f"update before-image: {events['u'].before}"
    assert events["u"].after == {**EQUAL_NOTE, "n": 10}
    assert events["d"].before == EQUAL_NOTE, f"delete before-image: {events['d'].before}"


@then("the delete is followed by a tombstone with a null key")
def null_key_tombstone(keyless: KeylessCapture) -> None:
    """A tombstone with neither key nor value: it lets compaction forget nothing in particular."""
    seen = keyless.reader.read_until(
        lambda s: bool(s.tombstones), timeout=EVENT_TIMEOUT, expected="a tombstone"
    )
    evidence.attach_events("the delete and what follows", seen.records[-2:])
    assert keyless.kinds()[-2:] == ["d", "tombstone"], f"records: {keyless.kinds()}"
    assert seen.tombstones[-1].key is None, f"tombstone key: {seen.tombstones[-1].key}"


@then(
    parsers.parse("the {table} rebuilt from the topic as a multiset of rows equal the source table")
)
def rebuilt_multiset(keyless: KeylessCapture, keyless_table: KeylessTable, table: str) -> None:
    """Replay: c/r add a row, u replaces one row equal to before, d removes one such row."""
    rebuilt = rebuild_from_events(keyless.reader.seen.records)
    assert rebuilt.keyless, "the replay did not treat the events as keyless"
    source = keyless_table.rows()
    report = compare_multisets(source, rebuilt.values())
    evidence.attach_json(f"integrity: {table} (multiset)", report.as_dict())
    evidence.attach_html(f"{table} rebuilt", evidence.table_html("rebuilt", rebuilt.values()))
    if not report.ok:
        evidence.attach_html(f"diff: {table}", report.diff.to_html(title="rows on one side only"))
    assert report.ok, f"integrity failure ({table}, multiset): {report.summary()}"


@when(
    parsers.parse("Debezium is asked to capture the keyless {table} table"),
    target_fixture="refusal",
)
def ask_to_capture(pg_connector_factory: Callable[..., DebeziumConnector], table: str) -> str:
    """The factory checks the table's replica identity before it makes anything."""
    try:
        connector = pg_connector_factory([table])
    except ReplicaIdentityMissing as exc:
        evidence.attach_text("the connector factory's error", str(exc))
        return str(exc)
    raise AssertionError(f"{connector.name} was registered for a table with no replica identity")


@then(parsers.parse('the request is refused with a one-line error naming "{fix}"'))
def refused_naming(refusal: str, fix: str) -> None:
    """One line, with the statement that fixes it."""
    assert "\n" not in refusal, f"not one line: {refusal!r}"
    assert fix in refusal, f"{fix!r} not in {refusal!r}"


@then("no connector, replication slot or publication was made")
def nothing_made(connect_client: Any, keyless_table: KeylessTable, cdc_scenario_name: str) -> None:
    """Refused before Connect or PostgreSQL were asked for anything."""
    name = connector_name("pg", cdc_scenario_name, 0)
    objects = replication_objects(keyless_table.conn)
    evidence.attach_json("replication objects in the database", objects)
    assert name not in connect_client.connectors(), f"connector {name} exists"
    assert objects == {"slots": [], "publications": []}, objects


@then(
    parsers.parse(
        "PostgreSQL itself refuses to update a note once a publication covers the {table} table"
    )
)
def postgres_refuses(keyless_table: KeylessTable, table: str) -> None:
    """What a connector's publication would have done to the application: its UPDATE fails."""
    message = publication_refusal(keyless_table.conn, table, "keyless_demo_pub", NOTES[2])
    evidence.attach_text("PostgreSQL's error for the application's UPDATE", message)
    assert "does not have a replica identity and publishes updates" in message, message
