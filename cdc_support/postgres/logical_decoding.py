"""Native logical decoding in Python: a pgoutput consumer over the streaming replication protocol.

PostgreSQL (``wal_level=logical``) decodes its write-ahead log through a *replication slot*
with an output plugin; ``pgoutput`` is the one built in (the one logical replication and
Debezium use). :class:`LogicalDecodingConsumer` does what a subscriber does, in Python:

* creates a *publication* for its tables (which changes pgoutput sends) and a *slot* (which
  keeps the WAL the consumer has not confirmed yet);
* opens a replication connection (psycopg2 ``LogicalReplicationConnection``; psycopg 3 cannot
  run START_REPLICATION) and runs ``START_REPLICATION SLOT s LOGICAL 0/0 (proto_version '1',
  publication_names 'p')`` — start position 0/0 means "from the slot's confirmed position";
* decodes Begin/Relation/Insert/Update/Delete/Commit (:mod:`.pgoutput`) and hands each
  transaction over at its Commit, then confirms the commit's end LSN to the server
  (``send_feedback(flush_lsn=...)``), so the slot advances and a restarted consumer resumes
  right after the last transaction it handed over: nothing lost, nothing repeated;
* drops its slot (and the publication it made) on :meth:`~LogicalDecodingConsumer.close` —
  a forgotten slot keeps WAL forever.

One consumer per slot: a second START_REPLICATION on an active slot fails ("slot is active
for PID ..."), so :meth:`~LogicalDecodingConsumer.start` first waits until the slot is free.
"""

from __future__ import annotations

import contextlib
import select
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import psycopg
import psycopg2
import psycopg2.extras

from cdc_support.events import ChangeEvent
from cdc_support.postgres.base import CaptureApproach, Declared
from cdc_support.postgres.pgoutput import PgoutputDecoder, Transaction
from cdc_support.postgres.pgoutput_messages import format_lsn
from cdc_support.postgres.privileges import create_publication, drop_publication
from cdc_support.postgres.source import (
    drop_slot,
    primary_key,
    set_replica_identity,
    slot_state,
    split_table,
    wait_slot_released,
)
from cdc_support.waiting import wait_until

__all__ = ["LogicalDecodingApproach", "LogicalDecodingConsumer"]

SESSION_OPTIONS = "-c DateStyle=ISO -c TimeZone=UTC -c extra_float_digits=3"
"""Text output the decoder parses: ISO timestamps in UTC, floats exactly."""


class LogicalDecodingConsumer:
    """Streams pgoutput changes of ``tables`` from slot ``slot`` in a background thread.

    ``dsn`` is the role it streams as: LOGIN REPLICATION is enough (it creates the slot too).
    ``admin_dsn`` (default: ``dsn``), the tables' owner, creates and drops the publication.
    """

    def __init__(
        self,
        dsn: str,
        *,
        slot: str,
        publication: str,
        tables: Sequence[str],
        status_interval: float = 1.0,
        idle_wait: float = 0.1,
        on_transaction: Callable[[Transaction], None] | None = None,
        admin_dsn: str | None = None,
    ) -> None:
        if not tables:
            raise ValueError("a logical decoding consumer needs at least one table")
        if status_interval < 1:
            raise ValueError(f"status_interval must be >= 1 s (psycopg2), got {status_interval}")
        self.dsn = dsn
        self.admin_dsn = admin_dsn or dsn
        self.slot = slot
        self.publication = publication
        self.tables = tuple(".".join(split_table(t)) for t in tables)
        self.status_interval = status_interval
        self.idle_wait = idle_wait
        self.on_transaction = on_transaction
        self.events: list[ChangeEvent] = []
        self.transactions = 0
        self.confirmed_lsn: int | None = None
        self.resumed_from: str | None = None
        self.error: BaseException | None = None
        self.created_slot = False
        self.created_publication = False
        self.closed = False
        self._decoder: PgoutputDecoder | None = None
        self._lock = threading.Lock()  # held while reading; between_polls() holds it too
        self._events_lock = threading.Lock()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    # -- setup and lifecycle
    def setup(self) -> None:
        """Create the publication (as the admin) and the slot (as ``dsn``'s role) unless they
        exist (idempotent)."""
        with psycopg.connect(self.admin_dsn, autocommit=True) as admin:
            keys = {t: primary_key(admin, t) for t in self.tables}
            self._decoder = PgoutputDecoder(
                key_columns=keys, tables=self.tables, connector="logical-decoding"
            )
            if create_publication(admin, self.publication, self.tables):
                self.created_publication = True
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            if slot_state(conn, self.slot) is None:
                conn.execute(
                    "SELECT pg_create_logical_replication_slot(%s, 'pgoutput')", (self.slot,)
                )
                self.created_slot = True

    @property
    def running(self) -> bool:
        """Whether the streaming thread is alive."""
        return self._thread is not None and self._thread.is_alive()

    def start(self, *, timeout: float = 15.0) -> LogicalDecodingConsumer:
        """Start streaming from the slot's confirmed position; returns self."""
        if self.closed:
            raise RuntimeError(f"{self!r} is closed (its slot was dropped)")
        if self.running:
            raise RuntimeError(f"{self!r} is already running")
        self.setup()
        with psycopg.connect(self.dsn, autocommit=True) as admin:
            wait_slot_released(admin, self.slot, timeout)
            state = slot_state(admin, self.slot) or {}
        self.resumed_from = state.get("confirmed_flush_lsn")
        conn = psycopg2.connect(
            self.dsn,
            connection_factory=psycopg2.extras.LogicalReplicationConnection,
            options=SESSION_OPTIONS,
        )
        try:
            cur = conn.cursor()
            cur.start_replication(
                slot_name=self.slot,
                decode=False,
                start_lsn=0,
                options={"proto_version": "1", "publication_names": self.publication},
                status_interval=self.status_interval,
            )
        except BaseException:
            conn.close()
            raise
        self._stopping.clear()
        self.error = None
        self._thread = threading.Thread(
            target=self._run, args=(conn, cur), name=f"pgoutput-{self.slot}", daemon=True
        )
        self._thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Stop streaming: confirm the last handed-over commit, close the connection."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                raise RuntimeError(f"{self!r} did not stop within {timeout}s")
            self._thread = None

    def close(self) -> None:
        """Stop, drop the slot and the publication this consumer created (idempotent)."""
        self.stop()
        if self.closed:
            return
        with psycopg.connect(self.admin_dsn, autocommit=True) as conn:
            drop_slot(conn, self.slot)
            if self.created_publication:
                drop_publication(conn, self.publication)
        self.closed = True

    # -- reading
    def snapshot(self) -> list[ChangeEvent]:
        """A copy of the events handed over so far; raises if the stream failed."""
        if self.error is not None:
            raise RuntimeError(f"{self!r} failed: {self.error!r}") from self.error
        with self._events_lock:
            return list(self.events)

    def wait_for(self, count: int, *, timeout: float) -> list[ChangeEvent]:
        """Poll until at least ``count`` events were handed over."""
        return wait_until(
            self.snapshot,
            done=lambda events: len(events) >= count,
            timeout=timeout,
            interval=0.05,
            expected=f"{count} change events from slot {self.slot}",
            describe=lambda events: f"{len(events)} events, confirmed {self.confirmed_text}",
        )

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        """Hold off reading while the block runs (the slot keeps every change meanwhile)."""
        with self._lock:
            yield

    @property
    def confirmed_text(self) -> str:
        """The last confirmed LSN as text (``none`` before the first commit)."""
        return format_lsn(self.confirmed_lsn) if self.confirmed_lsn is not None else "none"

    # -- the streaming thread
    def _run(self, conn: Any, cur: Any) -> None:
        try:
            while not self._stopping.is_set():
                with self._lock:
                    self._drain(cur)
                select.select([cur], [], [], self.idle_wait)
        except BaseException as exc:
            self.error = exc
        finally:
            with contextlib.suppress(Exception):
                if self.confirmed_lsn is not None:
                    cur.send_feedback(flush_lsn=self.confirmed_lsn, force=True)
            conn.close()

    def _drain(self, cur: Any) -> None:
        assert self._decoder is not None
        while not self._stopping.is_set():
            message = cur.read_message()
            if message is None:
                return
            tx = self._decoder.feed(message.payload, lsn=message.data_start, observed_ts=None)
            if tx is None:
                continue
            self._hand_over(tx)
            cur.send_feedback(flush_lsn=tx.end_lsn)
            self.confirmed_lsn = tx.end_lsn

    def _hand_over(self, tx: Transaction) -> None:
        observed = time.time()
        events = [_observed(e, observed) for e in tx.events]
        tx.events = events
        if self.on_transaction is not None:
            self.on_transaction(tx)
        with self._events_lock:
            self.events.extend(events)
            self.transactions += 1

    def __repr__(self) -> str:
        return f"LogicalDecodingConsumer(slot {self.slot}, publication {self.publication})"


def _observed(event: ChangeEvent, observed_ts: float) -> ChangeEvent:
    return ChangeEvent(
        event.op,
        event.key,
        event.before,
        event.after,
        event.source,
        event.commit_ts,
        observed_ts,
    )


class LogicalDecodingApproach(CaptureApproach):
    """The Python pgoutput consumer as a :class:`CaptureApproach`.

    The first ``start()`` sets the table's REPLICA IDENTITY FULL (so updates and deletes log
    the whole old row: full before-images) and creates the publication and slot; ``close()``
    drops them and restores the previous REPLICA IDENTITY. ``dsn`` is the admin (the table's
    owner); the consumer streams as ``replication_dsn``'s role when one is given.
    """

    name = "logical decoding"
    declared = Declared(
        hard_deletes=True,
        intermediate_updates=True,
        before_image=True,
        restart_without_loss=True,
        schema_change=False,
        how="pgoutput from a replication slot, decoded in Python (psycopg2 streaming)",
    )

    def __init__(
        self,
        dsn: str,
        table: str,
        key: tuple[str, ...],
        *,
        slot: str,
        publication: str,
        replica_identity_full: bool = True,
        replication_dsn: str | None = None,
    ) -> None:
        super().__init__(table, key)
        self.dsn = dsn
        self.replica_identity_full = replica_identity_full
        self.consumer = LogicalDecodingConsumer(
            replication_dsn or dsn,
            slot=slot,
            publication=publication,
            tables=[table],
            admin_dsn=dsn,
        )
        self._previous_identity: str | None = None

    def start(self) -> None:
        if self._previous_identity is None and self.replica_identity_full:
            with psycopg.connect(self.dsn, autocommit=True) as conn:
                self._previous_identity = set_replica_identity(conn, self.table, "FULL")
        self.consumer.start()

    def stop(self) -> None:
        self.consumer.stop()

    def delivered(self) -> list[ChangeEvent]:
        return self.consumer.snapshot()

    def close(self) -> None:
        self.consumer.close()
        if self._previous_identity is not None:
            with psycopg.connect(self.dsn, autocommit=True) as conn:
                set_replica_identity(conn, self.table, self._previous_identity)
            self._previous_identity = None

    def between_polls(self) -> contextlib.AbstractContextManager[None]:
        return self.consumer.paused()

    def describe(self) -> dict[str, Any]:
        c = self.consumer
        return {
            **super().describe(),
            "slot": c.slot,
            "publication": c.publication,
            "resumed from (slot's confirmed_flush_lsn)": c.resumed_from,
            "confirmed LSN": c.confirmed_text,
            "transactions handed over": c.transactions,
        }
