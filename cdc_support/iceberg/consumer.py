"""An incremental consumer that remembers the last snapshot it processed.

The position is a snapshot id, kept in a checkpoint file bound to the table's UUID
(:mod:`cdc_support.checkpoint`: replaced atomically and durably). Each poll diffs the
checkpointed snapshot against the table's current one, hands the changelog to the caller and
only then moves the checkpoint: a consumer stopped at any point and started again (a new
process, a new object) resumes after the last snapshot it handed over — nothing lost, nothing
repeated unless it stopped between handling a changelog and saving the checkpoint
(at-least-once for that one range).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pyiceberg.table import Table
from pyiceberg.table.snapshots import Snapshot

from cdc_support.checkpoint import CheckpointError, JsonCheckpoint
from cdc_support.events import ChangeEvent
from cdc_support.iceberg.changelog import Changelog, changes_between, snapshot_events
from cdc_support.iceberg.snapshots import table_name

__all__ = ["Checkpoint", "SnapshotConsumer"]


START_OVER = "the consumer then starts again from its start option"


def table_source(table_uuid: str) -> str:
    """What an Iceberg consumer's checkpoint is bound to: the table's UUID (a dropped and
    re-created table, even of the same name, has another)."""
    return f"Iceberg table with UUID {table_uuid}"


@dataclass(frozen=True)
class Checkpoint:
    """The last snapshot a consumer processed, bound to the table's UUID; kept in a
    :class:`~cdc_support.checkpoint.JsonCheckpoint` (atomic, fsync'd)."""

    table: str
    table_uuid: str
    snapshot_id: int | None
    sequence_number: int | None = None
    timestamp_ms: int | None = None

    @classmethod
    def load(cls, path: str | os.PathLike[str], table_uuid: str | None = None) -> Checkpoint | None:
        """The checkpoint stored at ``path`` (None when there is no file yet); with
        ``table_uuid``, refused (:class:`CheckpointError`) if written for another table."""
        if table_uuid is None:
            stored = JsonCheckpoint.read(path, start_over=START_OVER)
            data = stored.position if stored is not None else None
        else:
            data = JsonCheckpoint(path, table_source(table_uuid), start_over=START_OVER).load()
        if data is None:
            return None
        try:
            return cls(
                table=str(data["table"]),
                table_uuid=str(data["table_uuid"]),
                snapshot_id=data["snapshot_id"],
                sequence_number=data.get("sequence_number"),
                timestamp_ms=data.get("timestamp_ms"),
            )
        except (KeyError, TypeError) as exc:
            raise CheckpointError(
                f"checkpoint {path} is not an Iceberg consumer checkpoint (no {exc}): delete it "
                f"to start over ({START_OVER}), or point the consumer at the right file"
            ) from None

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write atomically and durably (see :mod:`cdc_support.checkpoint`)."""
        JsonCheckpoint(path, table_source(self.table_uuid), start_over=START_OVER).save(
            dataclasses.asdict(self)
        )


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
        uuid = str(table.metadata.table_uuid)
        saved = Checkpoint.load(self.path, uuid)  # refused if written for another table
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
