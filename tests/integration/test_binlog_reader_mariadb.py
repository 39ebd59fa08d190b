"""The Python binlog reader and the MySQL/MariaDB fixtures against the stack's real server.

Each test gets its own database (`mysql_database`); readers connect as the stack's
least-privilege CDC user (`binlog_reader_factory`) and are stopped after the test.
"""

from __future__ import annotations

import datetime as dt
import inspect
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pymysql
import pytest

from cdc_support.checks.delivery import OP_CODES, committed_ops, delivery_report
from cdc_support.checks.lag import lag_against_commits
from cdc_support.mysql.binlog_reader import BinlogPosition, PositionStore
from cdc_support.mysql.loader import create_table, fetch_table, insert_rows, mixed_workload
from cdc_support.mysql.source import binlog_position, connect, primary_key
from cdc_support.waiting import wait_until
from cdc_support.workload import TABLE_COLUMNS, EcommerceGenerator, Operation
from pytest_cdc.janitor import MySqlDatabase, mysql_scenario_database, scenario_name

pytestmark = pytest.mark.mysql

WAIT = 20.0
CUSTOMER_COLUMNS = set(TABLE_COLUMNS["customers"])


def _databases(admin: pymysql.Connection) -> set[str]:
    with admin.cursor() as cur:
        cur.execute("SHOW DATABASES")
        return {row[0] for row in cur.fetchall()}


def _dump_threads(admin: pymysql.Connection) -> dict[int, str]:
    """Binlog Dump threads on the server: connection id -> user."""
    with admin.cursor() as cur:
        cur.execute(
            "SELECT ID, USER FROM information_schema.PROCESSLIST WHERE COMMAND = 'Binlog Dump'"
        )
        return {int(row[0]): row[1] for row in cur.fetchall()}


@contextmanager
def _other_database(db: MySqlDatabase) -> Iterator[pymysql.Connection]:
    """A second throwaway database on the same server (dropped on exit), as a connection."""
    name = scenario_name("second database")
    with connect(db.admin.with_database(None)) as admin, admin.cursor() as cur:
        cur.execute(f"CREATE DATABASE `{name}`")
    try:
        with connect(db.admin.with_database(name)) as conn:
            yield conn
    finally:
        with connect(db.admin.with_database(None)) as admin, admin.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS `{name}`")


def _replay(log: list[Operation]) -> dict[tuple, dict]:
    """The table a workload log describes: apply its rows in order."""
    state: dict[tuple, dict] = {}
    for op in log:
        if op.op == "delete":
            del state[op.key]
        else:
            assert op.row is not None
            state[op.key] = dict(op.row)
    return state


# ------------------------------------------------------------------ what the reader delivers


def test_reader_starts_from_now(mysql_conn, binlog_reader_factory) -> None:
    gen = EcommerceGenerator(3)
    create_table(mysql_conn, "customers")
    before = gen.customers(3)
    insert_rows(mysql_conn, "customers", before)
    end_before_start = BinlogPosition(*binlog_position(mysql_conn))

    reader = binlog_reader_factory(["customers"]).start()
    assert reader.started_at is not None and reader.started_at >= end_before_start
    after = gen.customers(2)
    for row in after:
        insert_rows(mysql_conn, "customers", [row])

    events = reader.wait_for(2, timeout=WAIT)
    # the stream is in commit order: earlier rows, had they been read, would come first
    assert [e.key for e in events] == [(r["id"],) for r in after]
    assert [e.op for e in events] == ["c", "c"]
    assert all(
        BinlogPosition(e.source["file"], e.source["pos"]) > reader.started_at for e in events
    )


def test_a_running_reader_saves_its_position_once_the_stream_is_idle(
    mysql_conn, binlog_reader_factory
) -> None:
    """Saves are batched (every save_every seconds), but an idle stream's heartbeat saves
    what was handed over, so a crash then repeats nothing."""
    create_table(mysql_conn, "customers")
    reader = binlog_reader_factory(["customers"])
    reader.save_every = 3600.0  # only heartbeats (and stop) may save
    reader.start()
    started = reader.store.load()
    insert_rows(mysql_conn, "customers", EcommerceGenerator(4).customers(1))
    event = reader.wait_for(1, timeout=WAIT)[0]
    after_commit = BinlogPosition(*binlog_position(mysql_conn))
    saved = wait_until(
        reader.store.load,
        done=lambda position: position is not None and position >= after_commit,
        timeout=WAIT,
        expected=f"the position after the commit ({after_commit}) saved while running",
    )
    assert reader.running and started is not None and saved > started
    assert saved > BinlogPosition(event.source["file"], event.source["pos"])


def test_insert_update_delete_carry_full_images_in_utc(
    mysql_database, mysql_conn, binlog_reader_factory
) -> None:
    gen = EcommerceGenerator(5)
    create_table(mysql_conn, "customers")
    reader = binlog_reader_factory(["customers"]).start()

    row = gen.customer()
    insert_rows(mysql_conn, "customers", [row])
    with mysql_conn.cursor() as cur:
        cur.execute(
            "UPDATE customers SET full_name = %s WHERE id = %s", ("Ada Lovelace", row["id"])
        )
        cur.execute("DELETE FROM customers WHERE id = %s", (row["id"],))

    c, u, d = reader.wait_for(3, timeout=WAIT)
    key = (row["id"],)
    assert [(e.op, e.key) for e in (c, u, d)] == [("c", key), ("u", key), ("d", key)]
    assert c.before is None and c.after == row
    # FULL row image: every column before and after, not just the key and the changed one
    assert u.before == row
    assert u.after == {**row, "full_name": "Ada Lovelace"}
    assert d.before == u.after and d.after is None
    for image in (c.after, u.before, u.after, d.before):
        assert set(image) == CUSTOMER_COLUMNS
        created = image["created_at"]
        assert isinstance(created, dt.datetime)
        assert created.utcoffset() == dt.timedelta(0), created
    assert c.after["created_at"] == row["created_at"]  # microseconds survive
    for event in (c, u, d):
        assert event.source["db"] == mysql_database.name
        assert event.source["table"] == "customers"
        assert event.observed_ts is not None and event.commit_ts is not None
        assert event.commit_ts == int(event.commit_ts)  # binlog times are whole seconds
        assert -1.0 <= event.observed_ts - event.commit_ts < WAIT


def test_stop_and_resume_loses_and_repeats_nothing(
    mysql_conn, binlog_reader_factory, tmp_path: Path
) -> None:
    gen = EcommerceGenerator(17)
    create_table(mysql_conn, "customers")
    position_file = tmp_path / "resume.json"
    log: list[Operation] = []

    first = binlog_reader_factory(["customers"], position_file=position_file).start()
    log += mixed_workload(mysql_conn, gen, 40)
    batch = gen.customers(5)  # one transaction, one multi-row event
    insert_rows(mysql_conn, "customers", batch)
    log += [Operation("insert", "customers", (r["id"],), r) for r in batch]
    first.wait_for(len(log), timeout=WAIT)
    first.stop()
    assert not first.running
    saved = PositionStore(position_file).load()
    assert saved is not None and saved > first.started_at

    log += mixed_workload(mysql_conn, gen, 30)  # written while nobody reads
    second = binlog_reader_factory(["customers"], position_file=position_file).start()
    assert second.started_at == saved
    log += mixed_workload(mysql_conn, gen, 20)
    second.wait_for(len(log) - len(first.events), timeout=WAIT)

    # stop right after a large commit: its rows span several row events, so the reader is
    # most likely stopped inside the transaction; it hands over all of it or none of it
    big = gen.customers(600)
    insert_rows(mysql_conn, "customers", big)
    second.stop()
    log += [Operation("insert", "customers", (r["id"],), r) for r in big]
    big_keys = {(r["id"],) for r in big}
    assert sum(1 for e in second.snapshot() if e.key in big_keys) in (0, len(big))
    log += mixed_workload(mysql_conn, gen, 20)
    third = binlog_reader_factory(["customers"], position_file=position_file).start()
    third.wait_for(len(log) - len(first.events) - len(second.events), timeout=WAIT)

    delivered = first.snapshot() + second.snapshot() + third.snapshot()
    report = delivery_report(committed_ops(log), delivered)
    assert report.exactly_once, report.summary()
    assert report.delivered == report.expected == len(log)
    batch_keys = {(r["id"],) for r in batch}
    batch_events = [e for e in delivered if e.op == "c" and e.key in batch_keys]
    assert len({(e.source["file"], e.source["pos"]) for e in batch_events}) == 1
    assert sorted(e.source["row"] for e in batch_events) == [0, 1, 2, 3, 4]
    # replaying the log gives the table; the events come in commit order, one per commit
    assert _replay(log) == fetch_table(mysql_conn, "customers", ["id"])
    lags = lag_against_commits(delivered, [(OP_CODES[o.op], o.key, o.committed_at) for o in log])
    assert len(lags) == sum(1 for o in log if o.committed_at is not None)
    assert all(-1.0 < lag < WAIT for lag in lags), lags


def test_table_without_primary_key_is_refused(
    mysql_database, mysql_conn, binlog_reader_factory
) -> None:
    with mysql_conn.cursor() as cur:
        cur.execute("CREATE TABLE notes (id BIGINT, body VARCHAR(50))")
    assert primary_key(mysql_conn, mysql_database.name, "notes") == ()
    reader = binlog_reader_factory(["notes"])
    with pytest.raises(ValueError) as info:
        reader.start()
    message = str(info.value)
    assert f"{mysql_database.name}.notes" in message
    assert "no primary key" in message and "add one" in message
    assert not reader.running
    assert reader.store.load() is None  # nothing saved for a reader that never ran


# ------------------------------------------------------------------ who connects, what remains


def test_reader_streams_as_the_cdc_user_and_leaves_no_dump_thread(
    mysql_database, mysql_conn, binlog_reader_factory
) -> None:
    create_table(mysql_conn, "customers")
    cdc_user = mysql_database.cdc.user
    assert cdc_user != mysql_database.admin.user
    earlier = set(_dump_threads(mysql_conn))

    reader = binlog_reader_factory(["customers"]).start()
    assert reader.address.user == cdc_user
    threads = wait_until(
        lambda: {i: u for i, u in _dump_threads(mysql_conn).items() if i not in earlier},
        timeout=WAIT,
        interval=0.05,
        expected="a Binlog Dump thread for the new reader in information_schema.PROCESSLIST",
    )
    assert list(threads.values()) == [cdc_user]

    reader.stop()
    assert not reader.running
    wait_until(
        lambda: set(threads) & set(_dump_threads(mysql_conn)),
        done=lambda left: not left,
        timeout=WAIT,
        interval=0.05,
        expected=f"the reader's Binlog Dump thread {sorted(threads)} gone after stop()",
    )


def test_cdc_user_can_read_the_binlog_but_not_write(mysql_database, mysql_conn) -> None:
    create_table(mysql_conn, "customers")
    cdc = mysql_database.cdc
    with connect(cdc) as conn, conn.cursor() as cur:
        cur.execute("SHOW GRANTS")
        own = [row[0] for row in cur.fetchall()]
        file, pos = binlog_position(conn)  # REPLICATION CLIENT
        assert file and pos > 0
        for statement in (
            f"INSERT INTO `{mysql_database.name}`.customers VALUES (1, 'a@b', 'A', 'NL', NOW())",
            f"DELETE FROM `{mysql_database.name}`.customers",
            f"CREATE TABLE `{mysql_database.name}`.intruder (id INT PRIMARY KEY)",
        ):
            with pytest.raises(pymysql.err.OperationalError) as info:
                cur.execute(statement)
            assert info.value.args[0] == 1142, info.value  # command denied
    with mysql_conn.cursor() as cur:
        cur.execute("SELECT Host FROM mysql.user WHERE User = %s", (cdc.user,))
        hosts = [row[0] for row in cur.fetchall()]
        assert hosts
        grants = list(own)
        for host in hosts:
            cur.execute("SHOW GRANTS FOR %s@%s", (cdc.user, host))
            grants += [row[0] for row in cur.fetchall()]
    text = " ".join(grants).upper()
    assert "REPLICATION SLAVE" in text
    for forbidden in ("INSERT", "UPDATE", "DELETE", "ALL PRIVILEGES"):
        assert forbidden not in text, grants


# ------------------------------------------------------------------ workload and fixtures


def test_mixed_workload_with_a_seed_is_deterministic(mysql_database, mysql_conn) -> None:
    create_table(mysql_conn, "customers")
    first = mixed_workload(mysql_conn, EcommerceGenerator(8), 80)
    with _other_database(mysql_database) as other:
        create_table(other, "customers")
        second = mixed_workload(other, EcommerceGenerator(8), 80)
        table = fetch_table(mysql_conn, "customers", ["id"])
        assert fetch_table(other, "customers", ["id"]) == table
    assert [(o.op, o.key, o.row) for o in first] == [(o.op, o.key, o.row) for o in second]
    assert {o.op for o in first} == {"insert", "update", "delete"}
    assert _replay(first) == table
    with _other_database(mysql_database) as third:
        create_table(third, "customers")
        mixed_workload(third, EcommerceGenerator(9), 80)
        assert fetch_table(third, "customers", ["id"]) != table


@pytest.mark.parametrize("outcome", ["passes", "fails"])
def test_mysql_database_fixture_drops_its_database(cdc_stack, outcome: str) -> None:
    make = inspect.unwrap(mysql_scenario_database)  # the fixture's generator, driven by hand
    name = scenario_name(f"fixture drop {outcome}")
    steps = make(cdc_stack, name)
    database = next(steps)
    assert database.name == name
    with connect(database.admin) as conn:
        assert name in _databases(conn)
        create_table(conn, "customers")
        insert_rows(conn, "customers", EcommerceGenerator(1).customers(2))
    if outcome == "passes":
        with pytest.raises(StopIteration):
            next(steps)
    else:
        with pytest.raises(RuntimeError, match="the test failed"):
            steps.throw(RuntimeError("the test failed"))
    with connect(database.admin.with_database(None)) as admin:
        assert name not in _databases(admin)
