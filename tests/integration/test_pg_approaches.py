"""The PostgreSQL CDC approaches on the stack's real server: resume, cleanup, blind spots."""

from __future__ import annotations

import psycopg
import pytest

from cdc_support.checks.delivery import committed_ops, delivery_report
from cdc_support.postgres import (
    TimestampPollingApproach,
    TriggerAuditApproach,
)
from cdc_support.postgres.catalog import catalog_diff, catalog_snapshot
from cdc_support.postgres.loader import create_schema, mixed_workload
from cdc_support.postgres.pgoutput import PgoutputDecoder
from cdc_support.postgres.pgoutput_messages import parse_lsn
from cdc_support.postgres.source import slot_state
from cdc_support.waiting import wait_until
from cdc_support.workload import EcommerceGenerator
from pytest_cdc.fixtures.capture import CaptureFactory, LeftoverObjects

pytestmark = pytest.mark.postgres


@pytest.fixture
def conn(pg_conn: psycopg.Connection) -> psycopg.Connection:
    create_schema(pg_conn)
    return pg_conn


def _insert(conn: psycopg.Connection, key: int) -> None:
    row = EcommerceGenerator(key).customer(key=key)
    conn.execute(
        f"INSERT INTO customers ({', '.join(row)}) VALUES ({', '.join(['%s'] * len(row))})",
        list(row.values()),
    )


def test_logical_decoding_resumes_after_the_confirmed_lsn_with_no_loss_or_repeat(
    conn, logical_decoding_factory, pg_database
) -> None:
    first = logical_decoding_factory(["customers"]).start()
    ops = mixed_workload(conn, EcommerceGenerator(3), 40)
    first.wait_for(40, timeout=30)
    first.stop()
    # psycopg2 forwards the flush position to a keepalive's WAL end once every commit is
    # confirmed, so the slot may stand past the last commit, never before it; the walsender
    # records the stop's last feedback a moment after the client closed (later under load)
    assert first.confirmed_lsn is not None
    confirmed = wait_until(
        lambda: slot_state(conn, first.slot)["confirmed_flush_lsn"],  # type: ignore[index]
        done=lambda lsn: parse_lsn(lsn) >= first.confirmed_lsn,
        timeout=10,
        expected=f"the stop to confirm the last commit, {first.confirmed_lsn}",
    )

    more = mixed_workload(conn, EcommerceGenerator(4), 25)
    # a new consumer on the same slot, as a restarted process would be
    second = logical_decoding_factory(["customers"], slot=first.slot).start()
    assert second.resumed_from == confirmed
    events = second.wait_for(25, timeout=30)
    _insert(conn, 10_000)  # a marker: nothing more than the 25 (+ marker) may arrive before it
    events = wait_until(
        second.snapshot,
        done=lambda evs: any(e.key == (10_000,) for e in evs),
        timeout=30,
        expected="the marker",
    )
    assert len(events) == 26
    report = delivery_report(committed_ops(ops + more), first.snapshot() + events[:-1])
    assert report.exactly_once, report.summary()


def test_feedback_advances_the_slot_while_streaming(conn, logical_decoding_factory) -> None:
    consumer = logical_decoding_factory(["customers"], status_interval=1.0).start()
    before = parse_lsn(slot_state(conn, consumer.slot)["confirmed_flush_lsn"])  # type: ignore[index]
    mixed_workload(conn, EcommerceGenerator(5), 10)
    consumer.wait_for(10, timeout=30)
    wait_until(
        lambda: parse_lsn(slot_state(conn, consumer.slot)["confirmed_flush_lsn"]),  # type: ignore[index]
        done=lambda lsn: lsn >= (consumer.confirmed_lsn or 0) > before,
        timeout=10,
        expected="the slot's confirmed_flush_lsn at the consumer's last commit",
    )


def test_closing_drops_the_slot_and_the_publication(conn, logical_decoding_factory) -> None:
    consumer = logical_decoding_factory(["customers"]).start()
    assert slot_state(conn, consumer.slot) is not None
    consumer.close()
    consumer.close()  # idempotent
    assert slot_state(conn, consumer.slot) is None
    assert conn.execute("SELECT count(*) FROM pg_publication").fetchone() == (0,)
    with pytest.raises(RuntimeError, match="closed"):
        consumer.start()


def test_the_decoder_reads_what_the_server_sends_through_the_sql_interface(conn) -> None:
    conn.execute("ALTER TABLE customers REPLICA IDENTITY FULL")
    conn.execute("CREATE PUBLICATION sql_pub FOR TABLE customers")
    conn.execute("SELECT pg_create_logical_replication_slot('sql_slot', 'pgoutput')")
    try:
        ops = mixed_workload(conn, EcommerceGenerator(6), 30)
        rows = conn.execute(
            "SELECT lsn::text, data FROM pg_logical_slot_get_binary_changes('sql_slot', NULL, "
            "NULL, 'proto_version', '1', 'publication_names', 'sql_pub')"
        ).fetchall()
        decoder = PgoutputDecoder(key_columns={"public.customers": ("id",)})
        events = []
        for lsn, data in rows:
            tx = decoder.feed(bytes(data), lsn=parse_lsn(lsn), observed_ts=0.0)
            if tx is not None:
                events += tx.events
        assert delivery_report(committed_ops(ops), events).exactly_once
        updates = [e for e in events if e.op == "u"]
        assert updates and all(e.before is not None for e in updates)
    finally:
        conn.execute("SELECT pg_drop_replication_slot('sql_slot')")
        conn.execute("DROP PUBLICATION sql_pub")


def test_trigger_audit_uninstall_leaves_nothing(conn, pg_database) -> None:
    before = catalog_snapshot(conn)
    audit = TriggerAuditApproach(pg_database.dsn, "customers", ("id",), interval=0.1)
    audit.start()
    assert catalog_diff(before, catalog_snapshot(conn)).schema_changed
    mixed_workload(conn, EcommerceGenerator(7), 10)
    audit.wait_events(lambda evs: len(evs) >= 10, expected="10 events", timeout=30)
    audit.close()
    assert catalog_diff(before, catalog_snapshot(conn)).empty


def test_trigger_audit_reads_a_late_commit_that_took_a_lower_audit_id(
    conn, pg_database, tmp_path
) -> None:
    """The snapshot watermark: an id watermark would skip the long transaction's row."""
    _insert(conn, 1)
    _insert(conn, 2)
    audit = TriggerAuditApproach(
        pg_database.dsn, "customers", ("id",), interval=0.1, checkpoint=tmp_path / "cp.json"
    )
    audit.start()
    try:
        with psycopg.connect(pg_database.dsn) as long:
            long.execute("SET CONSTRAINTS ALL IMMEDIATE")  # its audit row is written now
            long.execute("UPDATE customers SET full_name = 'long' WHERE id = 1")
            conn.execute("UPDATE customers SET full_name = 'short' WHERE id = 2")
            audit.wait_events(lambda evs: len(evs) >= 1, expected="the short update", timeout=30)
            long.commit()
        events = audit.wait_events(lambda evs: len(evs) >= 2, expected="both", timeout=30)
        ids = [e.source["audit_id"] for e in events]
        assert [e.key for e in events] == [(2,), (1,)] and ids[1] < ids[0]
    finally:
        audit.close()


def test_polling_misses_deletes(conn, pg_database) -> None:
    poller = TimestampPollingApproach(pg_database.dsn, "customers", ("id",), interval=0.1)
    poller.start()
    try:
        _insert(conn, 1)
        poller.wait_events(lambda evs: len(evs) >= 1, expected="the insert", timeout=30)
        conn.execute("DELETE FROM customers WHERE id = 1")
        _insert(conn, 2)
        events = poller.wait_events(
            lambda evs: any(e.key == (2,) for e in evs), expected="the marker", timeout=30
        )
        assert [(e.op, e.key) for e in events] == [("c", (1,)), ("c", (2,))]
    finally:
        poller.close()


def test_the_capture_factory_fails_loudly_when_something_is_left(
    cdc_stack, conn, pg_database, cdc_scenario_name, tmp_path
) -> None:
    factory = CaptureFactory(cdc_stack, pg_database, cdc_scenario_name, tmp_path)
    audit = factory("trigger audit")
    audit.start()
    conn.execute("CREATE FUNCTION stray() RETURNS int LANGUAGE sql AS 'SELECT 1'")
    try:
        with pytest.raises(LeftoverObjects, match=r"function stray\(\)"):
            factory.close_all()
    finally:
        conn.execute("DROP FUNCTION stray()")
    factory.close_all()  # now clean
    assert conn.execute("SELECT to_regclass('cdc_audit')").fetchone() == (None,)
