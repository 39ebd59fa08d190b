"""The native :class:`BinlogReader` as a :class:`~cdc_support.capture.CaptureApproach`.

The reader streams the binlog from its current end (no snapshot) and hands each transaction
over at its commit. ``start()`` makes and starts a reader; after ``stop()`` the next
``start()`` makes a new reader on the same position file, as a restarted process would, so
it resumes where the first one stopped. ``delivered()`` is every reader's events in order.
Making a reader (address, CDC user, server id, position file) is the caller's ``make_reader``
function — in the scenarios, the ``binlog_reader_factory`` fixture.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from cdc_support.capture import Declared
from cdc_support.events import ChangeEvent
from cdc_support.mysql.approach import BinlogApproach, SchemaChanges
from cdc_support.mysql.binlog_reader import BinlogPosition, BinlogReader
from cdc_support.waiting import wait_until
from cdc_support.workload import Operation

__all__ = ["BinlogReaderApproach", "ReaderMaker", "ReaderRestart"]


@dataclass(frozen=True)
class ReaderRestart:
    """A workload written while the reader was stopped and restarted, and every event."""

    workload: list[Operation] = field(repr=False)
    events: list[ChangeEvent] = field(repr=False)

    def __repr__(self) -> str:
        return f"ReaderRestart({len(self.workload)} operations, {len(self.events)} events)"


class ReaderMaker(Protocol):
    """Makes a (not yet started) reader on ``tables``; ``position_file`` resumes a position."""

    def __call__(
        self, tables: Sequence[str], *, position_file: Path | None = None
    ) -> BinlogReader: ...


class BinlogReaderApproach(BinlogApproach):
    """cdc_support's binlog reader (mysql-replication) on one table, in a background thread."""

    name = "the binlog reader"
    declared = Declared(
        hard_deletes=True,
        intermediate_updates=True,
        before_image=True,
        restart_without_loss=True,
        schema_change=True,
        how="mysql-replication streaming the binlog from now, position saved to a file",
    )

    def __init__(self, table: str, key: tuple[str, ...], *, make_reader: ReaderMaker) -> None:
        super().__init__(table, key)
        self.make_reader = make_reader
        self.readers: list[BinlogReader] = []

    @property
    def reader(self) -> BinlogReader:
        """The reader started last."""
        if not self.readers:
            raise RuntimeError(f"{self.name} on {self.table} was not started: call start()")
        return self.readers[-1]

    def start(self) -> None:
        if self.readers and self.reader.running:
            raise RuntimeError(f"{self.name} on {self.table} is already running")
        position_file = self.reader.store.path if self.readers else None
        self.readers.append(self.make_reader([self.table], position_file=position_file).start())

    def stop(self) -> None:
        if self.readers:
            self.reader.stop()

    def position(self) -> BinlogPosition | None:
        """The position saved in the position file (where a new start resumes)."""
        return self.reader.store.load()

    def delivered(self) -> list[ChangeEvent]:
        events: list[ChangeEvent] = []
        for reader in self.readers:
            if reader.error is not None:
                raise RuntimeError(f"binlog reader failed: {reader.error!r}") from reader.error
            events += reader.snapshot()
        return events

    def progress(self, events: list[ChangeEvent]) -> str:
        """Events so far and the binlog position the reader stands at."""
        return f"{len(events)} events, position {self.position()}"

    def schema_changes(self, containing: str, *, timeout: float) -> SchemaChanges:
        """Wait until the reader saw a DDL statement containing ``containing``."""
        changes = wait_until(
            lambda: [
                change
                for reader in self.readers
                for change in reader.schema_changes
                if containing in change.query
            ],
            timeout=timeout,
            interval=0.05,
            expected=f"a schema change with {containing!r} seen by {self.reader!r}",
        )
        return SchemaChanges(
            "schema changes seen by the reader",
            [c.query for c in changes],
            [c.to_json_dict() for c in changes],
        )

    def close(self) -> None:
        """Stop every reader (idempotent); the reader installs nothing on the server."""
        for reader in self.readers:
            reader.stop()

    def describe(self) -> dict[str, Any]:
        if not self.readers:
            return super().describe()
        reader = self.reader
        return {
            **super().describe(),
            "user": reader.address.user,
            "server_id": reader.server_id,
            "schema": reader.schema,
            "tables": list(reader.tables),
            "starts at": str(reader.started_at),
            "position file": str(reader.store.path),
        }
