"""A do-it-yourself MySQL/MariaDB CDC consumer: binlog row events -> ChangeEvents.

The reader registers as a replica (like Debezium does) and streams the binary log from a
file/position with `mysql-replication`. With ``binlog_format=ROW``, ``binlog_row_image=FULL``
and ``binlog_row_metadata=FULL`` every row event carries the whole row before and after and
the column names, so no schema queries are needed and a column added mid-stream shows up in
the events written after the ``ALTER TABLE`` only.

Position and resume: row events are buffered per transaction and handed over when the
transaction's commit (``XID`` event) arrives; the position *after* the last handed-over
commit is saved to a :class:`PositionStore` (one fsync'd checkpoint file bound to the server
and tables) at most every ``save_every`` seconds, when the
stream goes idle (a heartbeat), after DDL, and when the reader stops. A restarted reader
resumes from that position, so a clean stop loses and repeats nothing. (A crash repeats the
transactions handed over since the last save — at most ``save_every`` seconds of them:
at-least-once. Events carry their position so a sink can drop such repeats. Saving after
every commit would halve the reader's throughput: a file replace costs more than parsing.)

MariaDB pitfalls handled here (see RUNTIME-NOTES): file/position mode with
``is_mariadb=False`` (with ``True`` the library ignores the file/position and replays from
the start) and a blocking stream with server heartbeats (a non-blocking GTID stream was seen
to loop reconnecting), so :meth:`BinlogReader.stop` takes effect within a heartbeat.
Binlog timestamps have one-second resolution: ``commit_ts`` is the commit's second.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pymysql
from pymysqlreplication import BinLogStreamReader
from pymysqlreplication.event import HeartbeatLogEvent, QueryEvent, RotateEvent, XidEvent
from pymysqlreplication.row_event import DeleteRowsEvent, UpdateRowsEvent, WriteRowsEvent

from cdc_support.checkpoint import CheckpointError, JsonCheckpoint
from cdc_support.events import ChangeEvent
from cdc_support.mysql.source import MySqlAddress, as_utc, binlog_position, connect, primary_key
from cdc_support.waiting import wait_until

_ROW_EVENTS = (WriteRowsEvent, UpdateRowsEvent, DeleteRowsEvent)


@dataclass(frozen=True, order=True)
class BinlogPosition:
    """A place in the binary log: file name and byte offset (the start of the next event)."""

    file: str
    pos: int

    def __str__(self) -> str:
        return f"{self.file}:{self.pos}"


START_OVER = "the reader then starts from the current end of the binlog, skipping what came before"


class PositionStore:
    """The reader's saved position: a :class:`~cdc_support.checkpoint.JsonCheckpoint` bound to
    the server, database and tables it reads (``source``; a :class:`BinlogReader` binds a store
    made without one). An unbound store reads whatever position the file holds."""

    def __init__(self, path: Path, source: str | None = None) -> None:
        self.path = Path(path)
        self.source = source

    def __repr__(self) -> str:
        return f"PositionStore({self.path})"

    def bound_to(self, source: str) -> PositionStore:
        """This store, bound to ``source`` unless it is bound already."""
        return self if self.source else PositionStore(self.path, source)

    def load(self) -> BinlogPosition | None:
        """The saved position, or None when nothing was saved yet."""
        if self.source:
            data = self._checkpoint().load()
        else:
            stored = JsonCheckpoint.read(self.path, start_over=START_OVER)
            data = stored.position if stored is not None else None
        if data is None:
            return None
        try:
            return BinlogPosition(str(data["file"]), int(data["pos"]))
        except (ValueError, KeyError, TypeError) as exc:
            raise CheckpointError(
                f"binlog position file {self.path} holds no binlog position ({exc!r}): delete "
                f"it to start over ({START_OVER})"
            ) from None

    def save(self, position: BinlogPosition) -> None:
        """Write the position (atomically and durably: see :mod:`cdc_support.checkpoint`)."""
        self._checkpoint().save({"file": position.file, "pos": position.pos})

    def _checkpoint(self) -> JsonCheckpoint:
        if not self.source:
            raise ValueError(f"{self!r} is not bound to a source: use bound_to(source)")
        return JsonCheckpoint(self.path, self.source, start_over=START_OVER)


def binlog_source(address: MySqlAddress, schema: str, tables: Sequence[str]) -> str:
    """What a binlog position belongs to: the server and the tables read."""
    names = ",".join(f"{schema}.{t}" for t in sorted(tables))
    return f"binlog of {address.host}:{address.port} for {names}"


@dataclass
class SchemaChange:
    """A DDL statement seen in the binlog, with where and when."""

    query: str
    position: BinlogPosition
    commit_ts: float

    def to_json_dict(self) -> dict[str, Any]:
        """JSON-serialisable form."""
        return {"query": self.query, "position": str(self.position), "commit_ts": self.commit_ts}


@dataclass
class _Transaction:
    events: list[tuple[str, str, int, dict[str, Any] | None, dict[str, Any] | None, int, str]] = (
        field(default_factory=list)
    )


class BinlogReader:
    """Streams row changes of ``schema.tables`` into :attr:`events`, in commit order.

    ``start()`` runs the stream in a background thread, from the saved position or — when
    nothing is saved — from the binlog's current end ("starts from now": rows that existed
    before are not read). ``stop()`` ends it cleanly and keeps the position for a restart.
    Connect as a user with REPLICATION SLAVE and REPLICATION CLIENT (and SELECT), not root.
    """

    def __init__(
        self,
        address: MySqlAddress,
        *,
        schema: str,
        tables: Sequence[str],
        store: PositionStore,
        server_id: int,
        heartbeat: float = 0.2,
        save_every: float = 0.1,
        on_transaction: Callable[[list[ChangeEvent]], None] | None = None,
    ) -> None:
        if not tables:
            raise ValueError("BinlogReader needs at least one table to capture")
        self.address = address.with_database(None)
        self.schema = schema
        self.tables = tuple(tables)
        self.store = store.bound_to(binlog_source(self.address, schema, self.tables))
        self.server_id = server_id
        self.heartbeat = heartbeat
        self.save_every = save_every
        self._unsaved: BinlogPosition | None = None
        self._saved_at = 0.0
        self.on_transaction = on_transaction
        self.events: list[ChangeEvent] = []
        self.schema_changes: list[SchemaChange] = []
        self.error: BaseException | None = None
        self.started_at: BinlogPosition | None = None
        self._keys: dict[str, tuple[str, ...]] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- lifecycle
    def start(self) -> BinlogReader:
        """Begin streaming in a background thread; returns self."""
        if self.running:
            raise RuntimeError("this binlog reader is already running")
        self._stop.clear()
        self.error = None
        with connect(self.address) as conn:
            self._load_keys(conn)
            position = self.store.load()
            if position is None:
                position = BinlogPosition(*binlog_position(conn))
                self.store.save(position)
        self.started_at = position
        self._saved_at = time.monotonic()
        stream = BinLogStreamReader(
            connection_settings={**self.address.connect_kwargs(), "passwd": self.address.password},
            server_id=self.server_id,
            log_file=position.file,
            log_pos=position.pos,
            resume_stream=True,
            blocking=True,
            is_mariadb=False,
            only_schemas=[self.schema],
            only_events=[*_ROW_EVENTS, XidEvent, QueryEvent, RotateEvent, HeartbeatLogEvent],
            slave_heartbeat=self.heartbeat,
            enable_logging=False,
        )
        self._thread = threading.Thread(
            target=self._run, args=(stream,), name=f"binlog-reader-{self.schema}", daemon=True
        )
        self._thread.start()
        return self

    @property
    def running(self) -> bool:
        """Whether the streaming thread is alive."""
        return self._thread is not None and self._thread.is_alive()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop after the event being read (within one heartbeat); the position stays saved."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                raise RuntimeError(
                    f"binlog reader thread did not stop within {timeout}s "
                    f"(heartbeat {self.heartbeat}s); is the server still answering?"
                )
            self._thread = None

    # -- reading
    def snapshot(self) -> list[ChangeEvent]:
        """A copy of the events handed over so far."""
        with self._lock:
            return list(self.events)

    def wait_for(self, count: int, *, timeout: float) -> list[ChangeEvent]:
        """Poll until at least ``count`` events arrived; raise if the stream failed."""

        def probe() -> list[ChangeEvent]:
            if self.error is not None:
                raise RuntimeError(f"binlog reader failed: {self.error!r}") from self.error
            return self.snapshot()

        return wait_until(
            probe,
            done=lambda events: len(events) >= count,
            timeout=timeout,
            interval=0.05,
            expected=f"{count} change events from the binlog of {self.schema}.{self.tables}",
            describe=lambda events: f"{len(events)} events (position {self.store.load()})",
            hint="is the reader running, and does the workload write to the captured tables?",
        )

    # -- the stream thread
    def _run(self, stream: BinLogStreamReader) -> None:
        tx = _Transaction()
        try:
            for event in stream:
                if isinstance(event, _ROW_EVENTS):
                    self._buffer(tx, stream, event)
                elif isinstance(event, XidEvent):
                    self._commit(tx, stream, float(event.timestamp))
                    tx = _Transaction()
                elif isinstance(event, QueryEvent):
                    self._query(stream, event)
                elif isinstance(event, HeartbeatLogEvent):
                    self._save_position()  # idle: nothing is gained by waiting
                if self._stop.is_set():
                    break
        except BaseException as exc:
            self.error = exc
        finally:
            try:
                self._save_position()
            finally:
                stream.close()

    def _buffer(self, tx: _Transaction, stream: BinLogStreamReader, event: Any) -> None:
        if event.table not in self.tables:
            return
        for index, row in enumerate(event.rows):
            if isinstance(event, WriteRowsEvent):
                op, before, after = "c", None, _utc(row["values"])
            elif isinstance(event, UpdateRowsEvent):
                op, before, after = "u", _utc(row["before_values"]), _utc(row["after_values"])
            else:
                op, before, after = "d", _utc(row["values"]), None
            tx.events.append(
                (op, event.table, int(stream.log_pos), before, after, index, stream.log_file)
            )

    def _commit(self, tx: _Transaction, stream: BinLogStreamReader, commit_ts: float) -> None:
        observed = time.time()
        events = []
        for op, table, pos, before, after, row, file in tx.events:
            image = after if after is not None else before
            assert image is not None
            keys = self._keys[table]
            events.append(
                ChangeEvent(
                    op=op,  # type: ignore[arg-type]
                    key=tuple(image[k] for k in keys),
                    before=before,
                    after=after,
                    source={
                        "connector": "binlog-reader",
                        "db": self.schema,
                        "table": table,
                        "file": file,
                        "pos": pos,
                        "row": row,
                        "server_id": self.server_id,
                    },
                    commit_ts=commit_ts,
                    observed_ts=observed,
                )
            )
        if events:
            if self.on_transaction is not None:
                self.on_transaction(events)
            with self._lock:
                self.events.extend(events)
        self._unsaved = BinlogPosition(stream.log_file, int(stream.log_pos))
        if time.monotonic() - self._saved_at >= self.save_every:
            self._save_position()

    def _save_position(self) -> None:
        """Save the position after the last handed-over commit, if not saved yet."""
        if self._unsaved is not None:
            self.store.save(self._unsaved)
            self._unsaved = None
            self._saved_at = time.monotonic()

    def _query(self, stream: BinLogStreamReader, event: QueryEvent) -> None:
        query = event.query if isinstance(event.query, str) else event.query.decode()
        if query.strip().upper() in ("BEGIN", "COMMIT"):
            return
        position = BinlogPosition(stream.log_file, int(stream.log_pos))
        if any(table in query for table in self.tables):
            with connect(self.address) as conn:
                self._load_keys(conn)
            self.schema_changes.append(SchemaChange(query, position, float(event.timestamp)))
        self._unsaved = position  # DDL commits implicitly
        self._save_position()

    def _load_keys(self, conn: pymysql.Connection) -> None:
        for table in self.tables:
            keys = primary_key(conn, self.schema, table)
            if not keys:
                raise ValueError(
                    f"{self.schema}.{table} has no primary key (or {self.address.user} cannot "
                    "see it): a change event needs a key; add one or grant SELECT"
                )
            self._keys[table] = keys

    def __repr__(self) -> str:
        return f"BinlogReader({self.schema}.{','.join(self.tables)} as {self.address.user})"


def _utc(values: dict[str, Any]) -> dict[str, Any]:
    return {column: as_utc(value) for column, value in values.items()}
