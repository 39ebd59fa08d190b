"""An incremental consumer that remembers the last snapshot it processed.

The position is a snapshot id, kept with the table's UUID in a small JSON checkpoint file that
is replaced atomically (a temp file in the same folder, fsync, rename). Each poll diffs the
checkpointed snapshot against the table's current one, hands the changelog to the caller and
only then moves the checkpoint: a consumer stopped at any point and started again (a new
process, a new object) resumes after the last snapshot it handed over — nothing lost, nothing
repeated unless it stopped between handling a changelog and saving the checkpoint
(at-least-once for that one range).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pyiceberg.table import Table
from pyiceberg.table.snapshots import Snapshot

from cdc_support.events import ChangeEvent
from cdc_support.iceberg.changelog import Changelog, changes_between, snapshot_events
from cdc_support.iceberg.errors import IcebergChangelogError
from cdc_support.iceberg.snapshots import table_name

__all__ = ["Checkpoint", "SnapshotConsumer"]


@dataclass(frozen=True)
class Checkpoint:
    """The last snapshot a consumer processed, bound to the table's UUID."""

    table: str
    table_uuid: str
    snapshot_id: int | None
    sequence_number: int | None = None
    timestamp_ms: int | None = None

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Checkpoint | None:
        """The checkpoint stored at ``path``, or None when there is no file yet."""
        try:
            text = Path(path).read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        try:
            data = json.loads(text)
            return cls(
                table=str(data["table"]),
                table_uuid=str(data["table_uuid"]),
                snapshot_id=data["snapshot_id"],
                sequence_number=data.get("sequence_number"),
                timestamp_ms=data.get("timestamp_ms"),
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise IcebergChangelogError(
                f"checkpoint {path} is not a consumer checkpoint ({exc}). Fix: delete it to "
                "start over, or point the consumer at the right file"
            ) from exc

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write atomically: a temp file in the same folder, fsync, then rename over ``path``."""
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        data = {
            "table": self.table,
            "table_uuid": self.table_uuid,
            "snapshot_id": self.snapshot_id,
            "sequence_number": self.sequence_number,
            "timestamp_ms": self.timestamp_ms,
            "written_at": dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds"),
        }
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(data, handle, indent=2)
                handle.write("\n")
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, target)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
        with contextlib.suppress(OSError):
            dir_fd = os.open(target.parent, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)


class SnapshotConsumer:
    """Reads an Iceberg table's changes incrementally, resuming from a checkpoint file.

    Each :meth:`poll` diffs the checkpointed snapshot against the table's current one, hands
    the changelog to ``handler`` and only then moves the checkpoint: a handler that fails
    leaves the checkpoint where it was, so the next poll delivers the same range again (no
    loss; a sink that is not idempotent may then see a repeat). A reader only ever sees
    whole commits, so the several snapshots of one pyiceberg upsert arrive in one poll.

    Without a checkpoint file, ``start="earliest"`` reads every row as an insert on the first
    poll and ``start="latest"`` checkpoints the current snapshot at once.
    """

    def __init__(
        self,
        table: Table,
        checkpoint: str | os.PathLike[str],
        *,
        start: Literal["earliest", "latest"] = "earliest",
        net_changes: bool = True,
        key: Sequence[str] | None = None,
    ) -> None:
        if start not in ("earliest", "latest"):
            raise ValueError(f"start must be 'earliest' or 'latest', got {start!r}")
        self.table = table
        self.path = Path(checkpoint)
        self.net_changes = net_changes
        self.key = tuple(key) if key else None
        saved = Checkpoint.load(self.path)
        uuid = str(table.metadata.table_uuid)
        if saved is not None and saved.table_uuid != uuid:
            raise IcebergChangelogError(
                f"checkpoint {self.path} belongs to table {saved.table} with UUID "
                f"{saved.table_uuid}, but {table_name(table)} has UUID {uuid} (dropped and "
                "recreated, or another table). Fix: delete the checkpoint to start over"
            )
        if saved is None:
            saved = Checkpoint(table_name(table), uuid, None)
            if start == "latest":
                saved = self._checkpoint_for(table.current_snapshot())
                saved.save(self.path)
        self.checkpoint = saved

    @property
    def position(self) -> int | None:
        """The last snapshot id processed (None: nothing yet)."""
        return self.checkpoint.snapshot_id

    def _checkpoint_for(self, snap: Snapshot | None) -> Checkpoint:
        uuid = str(self.table.metadata.table_uuid)
        if snap is None:
            return Checkpoint(table_name(self.table), uuid, None)
        return Checkpoint(
            table_name(self.table), uuid, snap.snapshot_id, snap.sequence_number, snap.timestamp_ms
        )

    def poll(self, handler: Callable[[Changelog], None] | None = None) -> Changelog:
        """Changes since the checkpoint up to the current snapshot, handed to ``handler``.

        The checkpoint moves only after ``handler`` returned; if it raises, the error
        propagates and the next poll delivers the same range again.
        """
        self.table = self.table.refresh()
        current = self.table.current_snapshot()
        if current is None or current.snapshot_id == self.position:
            return Changelog(table_name(self.table), self.position, self.position, self.net_changes)
        log = changes_between(
            self.table,
            self.position,
            current.snapshot_id,
            net_changes=self.net_changes,
            key=self.key,
        )
        if handler is not None:
            handler(log)
        self._advance(current)
        return log

    def bootstrap(
        self, handler: Callable[[list[ChangeEvent]], None] | None = None
    ) -> list[ChangeEvent]:
        """Read the current snapshot whole (``r`` events), then checkpoint it.

        The way back after :class:`SnapshotExpiredError`: a sink that applies the ``r``
        events as upserts (and drops keys it no longer sees) is consistent again.
        """
        self.table = self.table.refresh()
        current = self.table.current_snapshot()
        events = snapshot_events(self.table, key=self.key) if current is not None else []
        if handler is not None:
            handler(events)
        self._advance(current)
        return events

    def _advance(self, snap: Snapshot | None) -> None:
        checkpoint = self._checkpoint_for(snap)
        checkpoint.save(self.path)
        self.checkpoint = checkpoint

    def __repr__(self) -> str:
        return f"SnapshotConsumer({table_name(self.table)} at {self.position}, {self.path.name})"
