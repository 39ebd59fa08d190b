"""cdc_support.postgres.wal_retention on the stack's real PostgreSQL: the writer's pace, the
readings of slots nobody consumes, one that is advanced, and the heartbeat table's grant."""

from __future__ import annotations

from collections.abc import Callable

import psycopg
import pytest

from cdc_support.postgres.measure import wal_lsn
from cdc_support.postgres.wal_retention import (
    HEARTBEAT_ACTION_QUERY,
    MB,
    RetentionRun,
    SlotReading,
    WalWriter,
    check_may_checkpoint,
    create_heartbeat_table,
    measure_retention,
    read_slots,
    retention_plot_png,
)
from cdc_support.waiting import wait_until
from pytest_cdc.janitor import PgDatabase, scenario_name

pytestmark = pytest.mark.postgres


def _logical_slot(conn: psycopg.Connection, label: str) -> str:
    slot = scenario_name(label)
    conn.execute("SELECT pg_create_logical_replication_slot(%s, 'pgoutput')", (slot,))
    return slot  # dropped with the test's database (pytest_cdc.janitor)


def test_the_writer_paces_the_server_wal_to_its_rate(
    pg_database_factory: Callable[[str], PgDatabase], pg_conn: psycopg.Connection
) -> None:
    writer_db = pg_database_factory("writer")
    writer = WalWriter(writer_db.dsn, 2 * MB)
    before = wal_lsn(pg_conn)
    writer.start()
    try:
        wait_until(
            lambda: wal_lsn(pg_conn) - before,
            done=lambda written: written >= 6 * MB,
            timeout=10,
            expected="6 MB of WAL written at 2 MB/s",
            describe=lambda written: f"{written / MB:.1f} MB",
        )
        rows = writer.rows
    finally:
        writer.stop()
    written = wal_lsn(pg_conn) - before
    assert rows > 0 and writer.transactions > 0
    # paced: no more than the target plus one batch (~0.25 MB) once it is stopped at 6 MB
    assert written < 7 * MB, f"the writer overshot its pace: {written / MB:.1f} MB"


def test_the_writer_reports_what_failed_in_its_thread(pg_database: PgDatabase) -> None:
    writer = WalWriter(pg_database.dsn, 1 * MB, table="wal_filler")
    writer.start()
    with psycopg.connect(pg_database.dsn, autocommit=True) as conn:
        conn.execute("DROP TABLE wal_filler")
        wait_until(
            lambda: writer._thread.is_alive(),
            done=lambda alive: not alive,
            timeout=10,
            expected="the writer's thread ended by the dropped table",
        )
    with pytest.raises(RuntimeError, match="wal_filler"):
        writer.stop()
    with pytest.raises(ValueError, match="bytes/s"):
        WalWriter(pg_database.dsn, 0)


def test_slots_nobody_consumes_hold_all_the_wal_written_until_one_is_advanced(
    pg_database_factory: Callable[[str], PgDatabase], pg_conn: psycopg.Connection, cdc_stack
) -> None:
    slots = {"left": _logical_slot(pg_conn, "left alone"), "moved": _logical_slot(pg_conn, "moved")}
    writer_db = pg_database_factory("writer")
    run = measure_retention(
        cdc_stack.postgres_dsn,
        writer_db.dsn,
        slots,
        seconds=3,
        rate=2 * MB,
        idle=0.5,
    )
    assert 4 * MB <= run.wal_written <= 8 * MB, run.summary()
    for label in slots:
        assert run.final(label).retained >= run.wal_written, run.summary()
        assert run.share_of_window(label) >= 1.0
    numbers = run.summary()
    assert numbers["confirming_slots"] == []  # nothing confirmed: nothing to wait for after
    assert numbers["readings_until_seconds"] - run.window[1] < 3, numbers
    assert set(numbers["slots"]) == {"left", "moved"}
    left = numbers["slots"]["left"]
    assert left["restart_lsn_moves"] == 0
    # a slot nobody consumes grows as fast as the server writes
    assert 0.8 <= left["retained_slope_share_of_wal_rate"] <= 1.2, left
    assert retention_plot_png(run, title="test").startswith(b"\x89PNG")

    # advancing a slot frees the WAL it held up to the last point decoding can restart from:
    # a running-transactions record (a CHECKPOINT writes one) with no older transaction open.
    # Other tests' transactions on the same server can hold that point back for a moment.
    def advanced() -> dict[str, SlotReading]:
        pg_conn.execute("CHECKPOINT")
        pg_conn.execute(
            "SELECT pg_replication_slot_advance(%s, pg_current_wal_lsn())", (slots["moved"],)
        )
        return {r.slot: r for r in read_slots(pg_conn, list(slots.values()), at=0.0)}

    readings = wait_until(
        advanced,
        done=lambda readings: readings[slots["moved"]].retained < MB,
        timeout=30,
        interval=1.0,
        expected="the advanced slot to hold less than 1 MB of WAL",
    )
    assert readings[slots["left"]].retained >= run.wal_written, readings


def test_the_connectors_role_may_run_the_heartbeat_query_and_nothing_more(
    pg_database: PgDatabase, pg_conn: psycopg.Connection, cdc_stack
) -> None:
    role, _ = cdc_stack.endpoints.postgres_cdc_login
    table = create_heartbeat_table(pg_conn, role)
    pg_conn.execute(f"GRANT SELECT ON {table} TO {role}")  # as the capture grant does
    with psycopg.connect(pg_database.replication_dsn, autocommit=True) as conn:
        before = conn.execute(f"SELECT beat FROM {table}").fetchone()
        conn.execute(HEARTBEAT_ACTION_QUERY)
        after = conn.execute(f"SELECT beat FROM {table}").fetchone()
        assert after is not None and before is not None and after[0] > before[0]
        if role != "postgres":
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(f"INSERT INTO {table} VALUES (2, now())")


def test_only_a_role_that_may_checkpoint_can_measure(
    pg_database: PgDatabase, pg_conn: psycopg.Connection, cdc_stack
) -> None:
    check_may_checkpoint(pg_conn)  # the admin may
    role, _ = cdc_stack.endpoints.postgres_cdc_login
    if role == cdc_stack.endpoints.postgres_user:
        pytest.skip("this stack has no separate replication role to try")
    with pytest.raises(PermissionError, match=f"GRANT pg_checkpoint TO {role}"):
        measure_retention(
            pg_database.replication_dsn, pg_database.dsn, {}, seconds=1, rate=MB, idle=0
        )


def test_the_numbers_of_a_run_follow_its_readings() -> None:
    run = RetentionRun({"a": "slot_a"}, rate=MB, window=(1.0, 3.0), window_wal=(100, 100 + 2 * MB))
    run.readings = [
        SlotReading("slot_a", t, 0, kept, kept // 2, restart, True)
        for t, kept, restart in (
            (0.0, 10, 1),
            (1.0, 10, 1),
            (2.0, MB, 1),
            (3.0, 2 * MB, 1),
            (4.0, 5, 100 + 2 * MB - 5),  # 5 bytes of the window still behind restart_lsn
        )
    ]
    numbers = run.summary()["slots"]["a"]
    assert numbers["retained_at_window_end_bytes"] == 2 * MB
    assert numbers["retained_at_end_bytes"] == 5
    assert numbers["max_retained_bytes"] == 2 * MB
    assert numbers["restart_lsn_moves"] == 1
    assert numbers["retained_slope_bytes_per_second"] == pytest.approx(MB, rel=0.01)
    assert run.share_of_window("a") == pytest.approx(5 / (2 * MB))
    run.readings.append(SlotReading("slot_a", 5.0, 0, 3 * MB, 0, 100 + 3 * MB, True))
    assert run.share_of_window("a") == 0  # what was written after the window does not count
