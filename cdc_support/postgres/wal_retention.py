"""WAL that replication slots hold on the server, measured while another database writes.

PostgreSQL keeps every WAL segment from the oldest ``restart_lsn`` of its replication slots:
the WAL a slot holds is ``pg_current_wal_lsn() - restart_lsn``. A logical slot's
``restart_lsn`` moves forward only when both

1. its client confirms it has handled everything up to some position (the slot's
   ``confirmed_flush_lsn``; Debezium confirms the position of the last change it processed,
   once Kafka Connect has stored its offset), and
2. decoding has passed a *snapshot point* before that position: a running-transactions
   record, which the background writer logs every 15 s while the server is busy and every
   CHECKPOINT logs too. A slot takes one new snapshot point at a time: one decoded while the
   previous is not yet confirmed is skipped.

The WAL is one stream for the whole server. A slot on a database nobody writes gets no change
to confirm while other databases write (PostgreSQL 15+ does not even send their empty
transactions), so its ``restart_lsn`` stays put and the WAL it holds grows with everything the
server writes — unless its client confirms something anyway: Debezium's
``heartbeat.action.query`` updating a table of the connector's publication, or (Debezium 3.4+)
``lsn.flush.mode=connector_and_driver``, where the JDBC driver confirms the positions of the
server's keepalive messages.

* :class:`WalWriter` — a thread writing rows into a table of another database, paced to a WAL
  rate, until stopped.
* :func:`read_slots` — one reading per slot (WAL held, confirmed lag, restart_lsn).
* :func:`measure_retention` — readings while idle, while the writer runs, after it stopped,
  and after a CHECKPOINT (a snapshot point now rather than up to 15 s later) until the slots
  whose clients confirm have let go of the writing: a :class:`RetentionRun` with every
  reading and its numbers (:meth:`RetentionRun.summary`); :func:`retention_plot_png` draws
  them.
* :func:`create_heartbeat_table` / :data:`HEARTBEAT_ACTION_QUERY` — what a heartbeat writes.
"""

from __future__ import annotations

import itertools
import math
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import sql

from cdc_support.checks.plots import Panel, time_series_png
from cdc_support.postgres.measure import wal_lsn
from cdc_support.postgres.source import qualified

__all__ = [
    "HEARTBEAT_ACTION_QUERY",
    "HEARTBEAT_TABLE",
    "RetentionRun",
    "SlotReading",
    "WalWriter",
    "check_may_checkpoint",
    "create_heartbeat_table",
    "measure_retention",
    "read_slots",
    "retention_plot_png",
]

MB = 1_000_000
HEARTBEAT_TABLE = "public.debezium_heartbeat"
HEARTBEAT_ACTION_QUERY = f"UPDATE {HEARTBEAT_TABLE} SET beat = now() WHERE id = 1"
"""Debezium runs it as the connector's role every ``heartbeat.interval.ms``: one row updated,
one small transaction in the captured database that the connector then receives."""
FILLER_ROW = 1000
"""Characters of padding per row the writer inserts (about 1.1 kB of WAL per row)."""


def create_heartbeat_table(conn: psycopg.Connection[Any], role: str) -> str:
    """Create :data:`HEARTBEAT_TABLE` (one row) and let ``role`` update it; returns its name.

    To reach the connector the table must be in its ``table.include.list`` (and so in its
    publication): PostgreSQL 15+ does not send a transaction that changed nothing published.
    """
    table = qualified(HEARTBEAT_TABLE)
    conn.execute(
        sql.SQL("CREATE TABLE {} (id int PRIMARY KEY, beat timestamptz NOT NULL)").format(table)
    )
    conn.execute(sql.SQL("INSERT INTO {} VALUES (1, now())").format(table))
    conn.execute(sql.SQL("GRANT UPDATE ON {} TO {}").format(table, sql.Identifier(role)))
    return HEARTBEAT_TABLE


@dataclass(frozen=True)
class SlotReading:
    """One reading of one slot, ``at`` seconds after the measurement began (bytes)."""

    slot: str
    at: float
    wal_position: int
    retained: int
    """pg_current_wal_lsn() - restart_lsn: what the server may not remove for this slot."""
    confirmed_lag: int
    """pg_current_wal_lsn() - confirmed_flush_lsn: how far behind its client has confirmed."""
    restart_lsn: int
    active: bool

    @property
    def confirmed(self) -> int:
        """The slot's confirmed_flush_lsn, in bytes."""
        return self.wal_position - self.confirmed_lag


_READ_SLOTS = """
WITH now AS (SELECT pg_current_wal_lsn() - '0/0'::pg_lsn AS wal)
SELECT slot_name, now.wal::bigint, (now.wal - (restart_lsn - '0/0'::pg_lsn))::bigint,
       (now.wal - (confirmed_flush_lsn - '0/0'::pg_lsn))::bigint,
       (restart_lsn - '0/0'::pg_lsn)::bigint, active
FROM now JOIN pg_replication_slots ON slot_name = ANY(%s) AND restart_lsn IS NOT NULL
"""


def read_slots(conn: psycopg.Connection[Any], slots: Sequence[str], at: float) -> list[SlotReading]:
    """One reading of each of ``slots`` that exists (one query: one WAL position for all)."""
    rows = conn.execute(_READ_SLOTS, (list(slots),)).fetchall()
    return [
        SlotReading(slot, at, int(wal), int(kept), int(lag or 0), int(restart), bool(active))
        for slot, wal, kept, lag, restart, active in rows
    ]


class WalWriter:
    """Inserts ~1 kB rows into ``table`` (created if missing) of ``dsn``'s database, from a
    thread, pacing itself so that the server's WAL advances about ``rate`` bytes per second.

    :meth:`stop` ends it and raises what failed in the thread, if anything.
    """

    def __init__(
        self, dsn: str, rate: float, *, table: str = "wal_filler", batch_rows: int = 200
    ) -> None:
        if rate <= 0:
            raise ValueError(f"the writer's WAL rate must be > 0 bytes/s, not {rate}")
        self.dsn = dsn
        self.rate = rate
        self.table = table
        self.batch_rows = batch_rows
        self.rows = 0
        self.transactions = 0
        self._stop = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name=f"wal-writer-{table}", daemon=True)

    def __repr__(self) -> str:
        return f"WalWriter({self.rate / MB:g} MB/s into {self.table})"

    def start(self) -> None:
        """Create the table and start writing."""
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            conn.execute(
                sql.SQL(
                    "CREATE TABLE IF NOT EXISTS {} (id bigserial PRIMARY KEY, pad text)"
                ).format(qualified(self.table))
            )
        self._thread.start()

    def stop(self) -> None:
        """Stop writing; re-raise the thread's error."""
        self._stop.set()
        if self._thread.is_alive() or self._thread.ident is not None:
            self._thread.join()
        if self._error is not None:
            raise RuntimeError(f"{self!r} failed: {self._error}") from self._error

    def _run(self) -> None:
        insert = sql.SQL(
            "INSERT INTO {} (pad) SELECT repeat('x', {}) FROM generate_series(1, {})"
        ).format(qualified(self.table), sql.Literal(FILLER_ROW), sql.Literal(self.batch_rows))
        try:
            with psycopg.connect(self.dsn, autocommit=True) as conn:
                start, began = wal_lsn(conn), time.monotonic()
                while not self._stop.is_set():
                    conn.execute(insert)
                    self.rows += self.batch_rows
                    self.transactions += 1
                    ahead = (wal_lsn(conn) - start) / self.rate - (time.monotonic() - began)
                    if ahead > 0:
                        self._stop.wait(ahead)
        except BaseException as exc:  # reported by stop()
            self._error = exc


def _slope(points: Sequence[tuple[float, float]]) -> float:
    """Least-squares slope of (time, value) points; 0 with fewer than two distinct times."""
    if len(points) < 2:
        return 0.0
    mean_t = sum(t for t, _ in points) / len(points)
    mean_v = sum(v for _, v in points) / len(points)
    den = sum((t - mean_t) ** 2 for t, _ in points)
    if den == 0:
        return 0.0
    return sum((t - mean_t) * (v - mean_v) for t, v in points) / den


@dataclass
class RetentionRun:
    """Readings of ``slots`` (label -> slot name) around one write window, and its numbers.

    Times are seconds since the first reading (``started`` is that moment as a unix time);
    positions and sizes are bytes of WAL.
    """

    slots: Mapping[str, str]
    rate: float
    started: float = field(default_factory=time.time)
    readings: list[SlotReading] = field(default_factory=list)
    window: tuple[float, float] = (0.0, 0.0)
    """When the writer started and stopped."""
    window_wal: tuple[int, int] = (0, 0)
    """The server's WAL position when the writer started and when it stopped."""
    checkpoint: tuple[float, int] = (0.0, 0)
    """When the CHECKPOINT was asked for, and the WAL position just before it."""
    writer_rows: int = 0
    writer_transactions: int = 0

    def __repr__(self) -> str:
        return f"RetentionRun({', '.join(self.slots)}: {self.wal_written / MB:.0f} MB written)"

    @property
    def wal_written(self) -> int:
        """WAL the server wrote while the writer ran (nearly all of it the writer's)."""
        return self.window_wal[1] - self.window_wal[0]

    @property
    def window_seconds(self) -> float:
        """How long the writer ran."""
        return self.window[1] - self.window[0]

    @property
    def ended(self) -> float:
        """Unix time of the last reading."""
        return self.started + (self.readings[-1].at if self.readings else 0.0)

    def of(self, label: str) -> list[SlotReading]:
        """The readings of one slot, in time order."""
        return [r for r in self.readings if r.slot == self.slots[label]]

    def confirming(self) -> set[str]:
        """Slots whose client confirmed positions while the writer ran."""
        start, stop = self.window
        during: dict[str, list[int]] = {}
        for r in self.readings:
            if start <= r.at <= stop:
                during.setdefault(r.slot, []).append(r.confirmed)
        return {slot for slot, seen in during.items() if max(seen) > min(seen)}

    def final(self, label: str) -> SlotReading:
        """The slot's last reading: after the CHECKPOINT, once the confirming slots settled."""
        readings = self.of(label)
        if not readings:
            raise LookupError(f"no reading of slot {self.slots[label]} ({label}): was it dropped?")
        return readings[-1]

    def share_of_window(self, label: str) -> float:
        """How much of the WAL written while the writer ran the slot still holds at the end
        (the part after its restart_lsn), as a fraction of :attr:`wal_written`. What the
        server wrote after the window (other databases, other tests) does not count."""
        if not self.wal_written:
            return math.inf
        still_held = self.window_wal[1] - max(self.final(label).restart_lsn, self.window_wal[0])
        return max(0, still_held) / self.wal_written

    def slot_numbers(self, label: str) -> dict[str, Any]:
        """What one slot did: held at the end of the window and at the end, max, slope."""
        readings = self.of(label)
        final = self.final(label)
        during = [r for r in readings if self.window[0] <= r.at <= self.window[1]] or [final]
        slope = _slope([(r.at, r.retained) for r in during])
        return {
            "slot": self.slots[label],
            "retained_at_window_end_bytes": during[-1].retained,
            "retained_at_end_bytes": final.retained,
            "retained_at_end_share_of_window_wal": round(self.share_of_window(label), 6),
            "max_retained_bytes": max(r.retained for r in readings),
            "retained_slope_bytes_per_second": round(slope),
            "retained_slope_share_of_wal_rate": round(
                slope * self.window_seconds / self.wal_written, 3
            )
            if self.wal_written
            else None,
            "confirmed_lag_at_end_bytes": final.confirmed_lag,
            "max_confirmed_lag_during_window_bytes": max(r.confirmed_lag for r in during),
            "restart_lsn_moves": sum(
                1 for a, b in itertools.pairwise(readings) if b.restart_lsn != a.restart_lsn
            ),
        }

    def summary(self) -> dict[str, Any]:
        """The numbers as JSON-ready data (what the report attaches)."""
        seconds = self.window_seconds
        return {
            "writer_target_bytes_per_second": round(self.rate),
            "window_seconds": round(seconds, 2),
            "wal_written_bytes": self.wal_written,
            "wal_bytes_per_second": round(self.wal_written / seconds) if seconds else None,
            "writer_rows": self.writer_rows,
            "writer_transactions": self.writer_transactions,
            "checkpoint_at_seconds": round(self.checkpoint[0], 2),
            "confirming_slots": sorted(k for k, v in self.slots.items() if v in self.confirming()),
            "readings_until_seconds": round(self.readings[-1].at, 2) if self.readings else None,
            "slots": {label: self.slot_numbers(label) for label in self.slots},
        }


def check_may_checkpoint(conn: psycopg.Connection[Any]) -> None:
    """PermissionError naming the fix unless the connection's role may run CHECKPOINT."""
    row = conn.execute(
        "SELECT current_user, rolsuper OR pg_has_role(current_user, 'pg_checkpoint', 'MEMBER') "
        "FROM pg_roles WHERE rolname = current_user"
    ).fetchone()
    if row is None or not row[1]:
        user = row[0] if row else "this role"
        raise PermissionError(
            f"{user} may not run CHECKPOINT: measure with a superuser's DSN, or GRANT "
            f"pg_checkpoint TO {user}"
        )


def measure_retention(
    admin_dsn: str,
    writer_dsn: str,
    slots: Mapping[str, str],
    *,
    seconds: float,
    rate: float,
    idle: float = 2.0,
    settle_limit: float = 10.0,
    interval: float = 0.5,
) -> RetentionRun:
    """Read ``slots`` (label -> slot name) every ``interval`` s: ``idle`` s; ``seconds`` s while
    a :class:`WalWriter` writes ``rate`` bytes/s into ``writer_dsn``'s database; then until the
    confirming slots have settled, in two steps of at most ``settle_limit`` s each.

    A slot is *confirming* when its client confirmed positions while the writer ran. After the
    writer stops, readings go on until each such slot has confirmed past the writer's last
    byte: a slot takes one new snapshot point at a time, and one the background writer logged
    just before the stop must be confirmed before a new one counts. Then a CHECKPOINT logs a
    snapshot point at once (instead of up to 15 s later), and readings go on until each such
    slot's restart_lsn has passed the writer's last byte. Slots that confirmed nothing are not
    waited for. The limits only end the readings; judging them is the caller's.
    ``admin_dsn`` must be allowed to CHECKPOINT (a superuser, or a member of pg_checkpoint).
    """
    run = RetentionRun(dict(slots), rate)
    names = list(slots.values())
    began = time.monotonic()

    def now() -> float:
        return time.monotonic() - began

    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        check_may_checkpoint(conn)

        def read_until(done: Callable[[list[SlotReading]], bool], limit: float) -> None:
            until = now() + limit
            while True:
                latest = read_slots(conn, names, now())
                run.readings.extend(latest)
                if done(latest) or now() + interval > until:
                    return
                time.sleep(interval)  # the pace of the readings

        read_until(lambda _: False, idle)
        writer = WalWriter(writer_dsn, rate)
        first = (now(), wal_lsn(conn))
        writer.start()
        try:
            read_until(lambda _: False, seconds)
        finally:
            writer.stop()
        run.window, run.window_wal = (first[0], now()), (first[1], wal_lsn(conn))
        run.writer_rows, run.writer_transactions = writer.rows, writer.transactions
        confirming, stop = run.confirming(), run.window_wal[1]
        read_until(
            lambda latest: all(r.confirmed >= stop for r in latest if r.slot in confirming),
            settle_limit,
        )
        run.checkpoint = (now(), wal_lsn(conn))
        conn.execute("CHECKPOINT")
        read_until(
            lambda latest: all(r.restart_lsn >= stop for r in latest if r.slot in confirming),
            settle_limit,
        )
    return run


def retention_plot_png(run: RetentionRun, *, title: str) -> bytes:
    """Two panels over time: WAL held per slot (with the WAL written since the writer started
    as a dashed line), and WAL not yet confirmed per slot; marks at the writer's start and stop
    and at the CHECKPOINT."""
    start = run.window_wal[0]
    first = next(iter(run.slots))
    since = [r for r in run.of(first) if r.at >= run.window[0]]
    written = ([r.at for r in since], [(r.wal_position - start) / MB for r in since])

    def series(what: str) -> dict[str, tuple[list[float], list[float]]]:
        return {
            label: ([r.at for r in run.of(label)], [getattr(r, what) / MB for r in run.of(label)])
            for label in run.slots
        }

    panels = [
        Panel(
            ylabel="MB",
            series=series("retained"),
            title="WAL the server keeps for each slot (current position - restart_lsn)",
            references={"WAL written since the writer started": written},
        ),
        Panel(
            ylabel="MB",
            series=series("confirmed_lag"),
            title="WAL the connector has not confirmed (current position - confirmed_flush_lsn)",
        ),
    ]
    marks = [
        (run.window[0], "writer starts"),
        (run.window[1], "writer stops"),
        (run.checkpoint[0], "CHECKPOINT"),
    ]
    return time_series_png(panels, title=title, marks=marks, legend_outside=True)
