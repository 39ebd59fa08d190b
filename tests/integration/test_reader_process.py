"""`cdc-spec reader` as a process on the stack's real PostgreSQL and MariaDB: it delivers,
stops cleanly keeping its slot / position, a SIGKILL mid-stream loses nothing (the
transactions written but not confirmed come again: counted as duplicates), it rides out a
restart of its source, and no reader, slot or publication outlives a test, even a failing one."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import psutil
import psycopg
import pytest

from cdc_support.events import ChangeEvent
from cdc_support.mysql.source import connect
from cdc_support.postgres.source import slot_state
from cdc_support.reader_cli import STREAMING
from cdc_support.waiting import wait_until
from pytest_cdc.fixtures.readers import NativeReaderProcess, ReaderFactory

TABLE = "moves"
MAX_OPS = 30_000
Identity = tuple[Any, ...]


class Workload:
    """Single-row autocommit operations numbered 1..n on ``moves(id, seq, payload)``: mostly
    inserts, every third an update of a live row to ``seq = n``, every seventh a delete."""

    def __init__(self, execute: Callable[[str, tuple[Any, ...]], None]) -> None:
        self.execute = execute
        self.committed: list[Identity] = []
        self.live: list[int] = []
        self.n = 0

    def run(self, count: int, stop: threading.Event | None = None) -> None:
        for _ in range(count):
            if stop is not None and stop.is_set():
                return
            self.n += 1
            n = self.n
            if n % 7 == 0 and self.live:
                key = self.live.pop(0)
                self.execute(f"DELETE FROM {TABLE} WHERE id = %s", (key,))
                self.committed.append(((key,), "d"))
            elif n % 3 == 0 and self.live:
                key = self.live[n % len(self.live)]
                self.execute(f"UPDATE {TABLE} SET seq = %s WHERE id = %s", (n, key))
                self.committed.append(((key,), "u", n))
            else:
                self.execute(
                    f"INSERT INTO {TABLE} (id, seq, payload) VALUES (%s, %s, %s)", (n, n, f"p{n}")
                )
                self.live.append(n)
                self.committed.append(((n,), "c", n))


def _identity(event: ChangeEvent) -> Identity:
    if event.op == "d":
        return (tuple(event.key or ()), "d")
    return (tuple(event.key or ()), event.op, (event.after or {})["seq"])


def _audit(committed: list[Identity], events: list[ChangeEvent]) -> tuple[list, int]:
    """(committed identities never delivered, extra deliveries)."""
    seen = Counter(_identity(e) for e in events)
    lost = [i for i in committed if i not in seen]
    return lost, sum(n - 1 for n in seen.values())


def _delivered(reader: NativeReaderProcess, committed: list[Identity], timeout: float) -> list:
    def missing(events: list[ChangeEvent]) -> list[Identity]:
        return _audit(committed, events)[0]

    return wait_until(
        reader.events,
        done=lambda events: not missing(events),
        timeout=timeout,
        interval=0.2,
        expected=f"all {len(committed)} committed changes in {reader.out_path}",
        describe=lambda events: f"{len(events)} events, {len(missing(events))} changes missing",
        log_lines=lambda: reader.logs(20).splitlines(),
    )


@pytest.fixture(params=["postgres", "mariadb"])
def source(request: pytest.FixtureRequest) -> Iterator[tuple[str, str, Callable[[], Any]]]:
    """(reader source, table name for it, a function opening an autocommit writer)."""
    if request.param == "postgres":
        db = request.getfixturevalue("pg_database")

        def open_pg() -> Any:
            return psycopg.connect(db.dsn, autocommit=True)

        with open_pg() as conn:
            conn.execute(
                f"CREATE TABLE {TABLE} (id BIGINT PRIMARY KEY, seq BIGINT NOT NULL, payload TEXT)"
            )
            conn.execute(f"ALTER TABLE {TABLE} REPLICA IDENTITY FULL")
        yield "postgres", f"public.{TABLE}", open_pg
    else:
        db = request.getfixturevalue("mysql_database")

        def open_maria() -> Any:
            return connect(db.admin)

        with open_maria() as conn, conn.cursor() as cur:
            cur.execute(
                f"CREATE TABLE {TABLE} (id BIGINT PRIMARY KEY, seq BIGINT NOT NULL, "
                "payload VARCHAR(100))"
            )
        yield "mariadb", TABLE, open_maria


@pytest.fixture(params=["fsync", "flush"])
def durability(request: pytest.FixtureRequest) -> str:
    """--durability: fsync'd before confirmed, or only written to the OS (a kill loses none)."""
    return request.param


def _executor(conn: Any) -> Callable[[str, tuple[Any, ...]], None]:
    if isinstance(conn, psycopg.Connection):
        return lambda sql, params: conn.execute(sql, params)  # type: ignore[arg-type]

    def run(sql: str, params: tuple[Any, ...]) -> None:
        with conn.cursor() as cur:
            cur.execute(sql, params)

    return run


def _log_records(reader: NativeReaderProcess) -> list[dict[str, Any]]:
    records = []
    for line in reader.log_path.read_text().splitlines():
        try:
            records.append(json.loads(line))
        except ValueError:
            continue
    return records


def test_the_reader_delivers_stops_cleanly_and_resumes_without_repeats(
    source, durability, native_reader_factory, record_property
) -> None:
    kind, table, open_writer = source
    reader = native_reader_factory(kind, table=table, durability=durability)
    with open_writer() as conn:
        work = Workload(_executor(conn))
        work.run(60)
        _delivered(reader, work.committed, timeout=30)
        reader.stop()
        assert not reader.running()
        stopped = [r for r in _log_records(reader) if r["message"].startswith("stopped")]
        assert stopped and stopped[-1]["events"] == len(work.committed), stopped
        if kind == "postgres":
            with psycopg.connect(reader.slot[0]) as admin:  # type: ignore[index]
                state = slot_state(admin, reader.name)
            assert state is not None and not state["active"], f"slot kept, released: {state}"
        work.run(2000)  # while the reader is down: the slot / position keeps them
        started = time.monotonic()
        reader.start()
        events = _delivered(reader, work.committed, timeout=120)
    seconds = time.monotonic() - started
    lost, duplicated = _audit(work.committed, events)
    assert (lost, duplicated) == ([], 0), "a clean stop neither loses nor repeats"
    assert [_identity(e) for e in events] == work.committed, "in commit order"
    backlog = events[-2000:]
    streaming = (backlog[-1].observed_ts or 0) - (backlog[0].observed_ts or 0)
    rate = (len(backlog) - 1) / max(streaming, 1e-6)
    record_property("catch_up_events_per_s", round(rate))
    print(
        f"\n{kind} {durability}: 2000 events behind, caught up {seconds:.2f}s after start(), "
        f"{rate:.0f} events/s while streaming"
    )


def test_a_reader_killed_mid_stream_loses_nothing_after_its_restart(
    source, durability, native_reader_factory, record_property
) -> None:
    kind, table, open_writer = source
    reader = native_reader_factory(kind, table=table, durability=durability)
    with open_writer() as conn:
        work = Workload(_executor(conn))
        done = threading.Event()
        writer = threading.Thread(target=work.run, args=(MAX_OPS, done), name="workload")
        writer.start()
        try:
            _wait_ops(lambda: len(reader.events()), 300, "events written before the kill")
            reader.kill()
            killed_at = (work.n, len(reader.events()))
            _wait_ops(lambda: work.n, killed_at[0] + 300, "operations while the reader is down")
            reader.start()
            _wait_ops(lambda: work.n, work.n + 300, "operations after the restart")
        finally:
            done.set()
            writer.join(60)
        events = _delivered(reader, work.committed, timeout=120)
    lost, duplicated = _audit(work.committed, events)
    assert lost == []
    assert work.n < MAX_OPS, "the workload ran out before the scenario ended"
    record_property("duplicates_after_kill", duplicated)
    print(
        f"\n{kind} {durability}: killed at op {killed_at[0]} ({killed_at[1]} events in the file); "
        f"{work.n} ops, {len(events)} events, 0 lost, {duplicated} duplicated"
    )


def _wait_ops(probe: Callable[[], int], count: int, what: str) -> int:
    return wait_until(
        probe, done=lambda n: n >= count, timeout=60, expected=f"{count} {what}", interval=0.05
    )


@pytest.mark.fault
def test_the_reader_rides_out_a_restart_of_its_source(
    source, native_reader_factory, cdc_faultable_stack
) -> None:
    kind, table, open_writer = source
    reader = native_reader_factory(kind, table=table, durability="flush")
    pid = reader.pid
    with open_writer() as conn:
        work = Workload(_executor(conn))
        work.run(50)
        _delivered(reader, work.committed, timeout=30)
    cdc_faultable_stack.restart(kind)
    with open_writer() as conn:
        work.execute = _executor(conn)
        work.run(50)
        events = _delivered(reader, work.committed, timeout=90)
    assert (reader.pid, reader.running()) == (pid, True), "the same process read on"
    assert _audit(work.committed, events)[0] == []
    messages = [r["message"] for r in _log_records(reader)]
    print(f"\n{kind}: " + " | ".join(m for m in messages if not m.startswith("progress")))
    if kind == "postgres":  # its connection ends with the server: the reader reconnects
        assert any(m.startswith(f"{STREAMING} again") for m in messages), messages


def test_closing_a_killed_reader_drops_its_slot_and_publication(
    cdc_stack, cdc_scenario_name, pg_conn, request
) -> None:
    pg_conn.execute(f"CREATE TABLE {TABLE} (id BIGINT PRIMARY KEY, seq BIGINT NOT NULL)")
    factory = ReaderFactory(cdc_stack, cdc_scenario_name, request)
    reader = factory("postgres", table=f"public.{TABLE}")
    assert slot_state(pg_conn, reader.name) is not None
    reader.kill()  # as a test failing mid-stream may leave it
    assert factory.close_all() == []
    assert slot_state(pg_conn, reader.name) is None
    publications = pg_conn.execute("SELECT pubname FROM pg_publication").fetchall()
    assert publications == []
    assert reader.pid is None and not reader.running()


INNER_TEST = """
import os

from pytest_cdc.janitor import PgDatabase


def test_fails_while_its_reader_streams(native_reader_factory):
    db = PgDatabase(os.environ["INNER_DB"], os.environ["INNER_DSN"], os.environ["INNER_CDC_DSN"])
    reader = native_reader_factory("postgres", table="public.moves", database=db)
    assert reader.running()
    assert False, "fails on purpose"
"""


def test_a_failing_test_leaves_neither_reader_nor_slot(
    cdc_stack, pg_database, pg_conn, tmp_path
) -> None:
    pg_conn.execute(f"CREATE TABLE {TABLE} (id BIGINT PRIMARY KEY, seq BIGINT NOT NULL)")
    project = tmp_path / "project"
    project.mkdir()
    (project / "pytest.ini").write_text("[pytest]\n")
    (project / "test_inner.py").write_text(INNER_TEST)
    endpoints = tmp_path / "endpoints.json"
    endpoints.write_text(cdc_stack.endpoints.to_json())
    basetemp = tmp_path / "inner"
    env = {
        **os.environ,
        "INNER_DB": pg_database.name,
        "INNER_DSN": pg_database.dsn,
        "INNER_CDC_DSN": pg_database.cdc_dsn,
    }
    options = [f"--cdc-endpoints={endpoints}", f"--basetemp={basetemp}", "-p", "no:cacheprovider"]
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "--cdc-backend=external", *options, "test_inner.py"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 1 and "1 failed" in run.stdout, run.stdout[-3000:] + run.stderr
    assert "fails on purpose" in run.stdout
    slots = pg_conn.execute(
        "SELECT slot_name FROM pg_replication_slots WHERE database = current_database()"
    ).fetchall()
    assert slots == []
    assert pg_conn.execute("SELECT pubname FROM pg_publication").fetchall() == []
    left = [
        p.pid
        for p in psutil.process_iter(["cmdline"])
        if str(basetemp) in " ".join(p.info["cmdline"] or ())
    ]
    assert left == [], "reader processes left running"
