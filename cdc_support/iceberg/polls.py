"""Incremental consumers of a generated table, one after another on one checkpoint file.

:class:`ConsumerRun` starts a :class:`~cdc_support.iceberg.consumer.SnapshotConsumer` on a
:class:`~cdc_support.iceberg.generated.GeneratedIcebergTable`, can stop it and start a new
one (a fresh table handle from the catalog) on the same checkpoint, and records for every
poll what it delivered and what it should have delivered: the model's changes since the
previous poll.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from cdc_support.events import ChangeEvent
from cdc_support.iceberg.changelog import Changelog
from cdc_support.iceberg.consumer import Checkpoint, SnapshotConsumer
from cdc_support.iceberg.expected import Expected, Key, Row, expected_changes
from cdc_support.iceberg.generated import GeneratedIcebergTable

__all__ = ["ConsumerRun", "Poll"]


@dataclass
class Poll:
    """What one consumer poll delivered, and what it should have delivered."""

    consumer: str
    changelog: Changelog
    expected: Expected

    def __repr__(self) -> str:
        return f"Poll({self.consumer}: {self.changelog!r})"


@dataclass
class ConsumerRun:
    """The consumers of ``source`` on ``checkpoint_path``, and every poll they made."""

    source: GeneratedIcebergTable
    checkpoint_path: Path
    consumer: SnapshotConsumer | None = None
    name: str = "consumer 1"
    started_at: int | None = None
    stopped_at: int | None = None
    restarted_at: int | None = None
    consumed: dict[Key, Row] = field(default_factory=dict)
    polls: list[Poll] = field(default_factory=list)
    delivered: list[ChangeEvent] = field(default_factory=list)

    def __repr__(self) -> str:
        return f"ConsumerRun({self.name} at {self.position}, {len(self.polls)} polls)"

    @property
    def running(self) -> SnapshotConsumer:
        """The running consumer (AssertionError if it was stopped)."""
        assert self.consumer is not None, "no consumer is running"
        return self.consumer

    @property
    def position(self) -> int | None:
        """The running consumer's checkpointed snapshot (None when stopped or new)."""
        return self.consumer.position if self.consumer else None

    def start(self) -> Poll:
        """A consumer with no checkpoint yet reads every row as an insert, then checkpoints."""
        self.consumer = SnapshotConsumer(self.source.table, self.checkpoint_path)
        poll = self.poll()
        self.started_at = self.running.position
        return poll

    def poll(self) -> Poll:
        """Poll; the expected changes are the model's since the last poll."""
        handed: list[Changelog] = []
        log = self.running.poll(handed.append)
        assert handed == [log] or not log.diffs, "the handler did not get the changelog"
        poll = Poll(self.name, log, expected_changes(self.consumed, self.source.rows))
        self.polls.append(poll)
        self.delivered.extend(log.events)
        self.consumed = dict(self.source.rows)
        return poll

    def stop(self) -> None:
        """Drop the consumer object; only its checkpoint file remains."""
        self.stopped_at = self.running.position
        self.consumer = None

    def restart(self, name: str) -> Poll:
        """A fresh table handle from the catalog and a new consumer on the same file; polls."""
        table = self.source.catalog.load_table(self.source.identifier)
        self.consumer = SnapshotConsumer(table, self.checkpoint_path)
        self.name = name
        self.restarted_at = self.consumer.position
        return self.poll()

    def bootstrap(self) -> list[ChangeEvent]:
        """The current snapshot as read events; the checkpoint and the model move to it."""
        events = self.running.bootstrap()
        self.consumed = dict(self.source.rows)
        return events

    def saved(self) -> Checkpoint | None:
        """The checkpoint file as it is on disk."""
        return Checkpoint.load(self.checkpoint_path)
