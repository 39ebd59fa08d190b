"""Micro-batches: the latest event per key, counts, and the offset range of every partition.

A sink applies a batch of records in one table commit. Within a batch only the latest event
of each key matters: an insert then two updates of key 7 leave the row of the last update,
an update then a delete leave no row. Every event still counts for lag (its change became
visible with the commit, even when a later event of the batch superseded it).

Tombstones are no changes: they are counted and skipped. Records below the position the table
already recorded (a replay after a crash) are counted and skipped. Every record, whatever became
of it, moves the batch's offset range, so the offsets committed after the batch cover it.

The batch keeps every record in arrival order, so a record the table refuses later can be taken
out (:meth:`MicroBatch.reject`) and a batch split in two (:meth:`MicroBatch.split`) with each
half's offset range exact.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from cdc_support.kafka.envelope import KafkaMessageLike
from cdc_support.sinks.decoding import Decoded
from cdc_support.sinks.positions import Positions, TopicPartition
from cdc_support.sinks.unavailable import fill_unavailable, has_unavailable

__all__ = ["BatchEvent", "BatchItem", "MicroBatch", "latest_per_key"]


def latest_per_key(items: Iterable[Decoded]) -> dict[tuple[Any, ...], Decoded]:
    """The last item of each key, in the order keys were first seen."""
    latest: dict[tuple[Any, ...], Decoded] = {}
    for item in items:
        latest[item.key] = item
    return latest


@dataclass
class BatchEvent:
    """One change event of a batch, as the commit log and the lag histogram see it."""

    topic: str
    partition: int
    offset: int
    op: str
    key: tuple[Any, ...]
    commit_ts: float | None


CHANGE, TOMBSTONE, DEAD_LETTER, SKIPPED = "change", "tombstone", "dead_letter", "skipped"


@dataclass
class BatchItem:
    """One record of a batch, in arrival order: what became of it, and for a change event
    the decoded row and the record itself (dead-lettered if the table refuses it)."""

    topic: str
    partition: int
    offset: int
    kind: str
    decoded: Decoded | None = None
    msg: KafkaMessageLike | None = None
    keyless: bool = False


@dataclass
class MicroBatch:
    """Records consumed since the last commit: latest change per key, counts and offsets."""

    number: int
    items: list[BatchItem] = field(default_factory=list)
    latest: dict[tuple[Any, ...], Decoded] = field(default_factory=dict)
    events: list[BatchEvent] = field(default_factory=list)
    ranges: dict[TopicPartition, list[int]] = field(default_factory=dict)
    tombstones: int = 0
    keyless_tombstones: int = 0
    dead_letters: int = 0
    skipped: int = 0
    records: int = 0
    part: str = ""
    """Which part of a batch split to isolate refused records ("" = the whole batch; "a",
    "b", "ab", ... = first half, second half, second half of the first half ...)."""
    started: float = field(default_factory=time.monotonic)
    opened_at: float = field(default_factory=time.time)

    def _note(self, item: BatchItem) -> None:
        if self.records == 0:
            self.started = time.monotonic()
            self.opened_at = time.time()
        self.items.append(item)
        self.records += 1
        span = self.ranges.get((item.topic, item.partition))
        if span is None:
            self.ranges[(item.topic, item.partition)] = [item.offset, item.offset + 1]
        else:
            span[0] = min(span[0], item.offset)
            span[1] = max(span[1], item.offset + 1)

    def add_change(
        self,
        topic: str,
        partition: int,
        offset: int,
        item: Decoded,
        msg: KafkaMessageLike | None = None,
    ) -> None:
        """A change event: it replaces any earlier event of its key in this batch."""
        self._note(BatchItem(topic, partition, offset, CHANGE, item, msg))
        self._latest(item)
        self.events.append(
            BatchEvent(topic, partition, offset, item.event.op, item.key, item.event.commit_ts)
        )

    def _latest(self, item: Decoded) -> None:
        previous = self.latest.pop(item.key, None)  # re-insert: the order follows the latest
        if previous is not None and previous.row is not None and has_unavailable(item.row):
            assert item.row is not None  # an unchanged TOAST value: the earlier event has it
            item = replace(item, row=fill_unavailable(item.row, previous.row))
        self.latest[item.key] = item

    def add_tombstone(
        self, topic: str, partition: int, offset: int, *, keyless: bool = False
    ) -> None:
        """A tombstone (``keyless``: it has no key either): no change, but its offset is
        consumed."""
        self._note(BatchItem(topic, partition, offset, TOMBSTONE, keyless=keyless))
        self.tombstones += 1
        self.keyless_tombstones += keyless

    def add_dead_letter(self, topic: str, partition: int, offset: int) -> None:
        """A record sent to the dead-letter topic: its offset is consumed."""
        self._note(BatchItem(topic, partition, offset, DEAD_LETTER))
        self.dead_letters += 1

    def add_skipped(self, topic: str, partition: int, offset: int) -> None:
        """A record the table had applied already (a replay): its offset is consumed."""
        self._note(BatchItem(topic, partition, offset, SKIPPED))
        self.skipped += 1

    def change_items(self) -> list[BatchItem]:
        """The change events of the batch, in arrival order."""
        return [item for item in self.items if item.kind == CHANGE]

    def reject(self, item: BatchItem) -> None:
        """Take a change event out (it went to the dead-letter topic): the latest event of
        its key is again the one before it, if any; its offset stays consumed."""
        assert item.kind == CHANGE and item in self.items, item
        item.kind = DEAD_LETTER
        self.dead_letters += 1
        self.latest.clear()
        where = (item.topic, item.partition, item.offset)
        self.events = [e for e in self.events if (e.topic, e.partition, e.offset) != where]
        for other in self.change_items():
            assert other.decoded is not None
            self._latest(other.decoded)

    def split(self) -> tuple[MicroBatch, MicroBatch]:
        """Two batches with the first and the second half of the change events (and the
        other records among them), in arrival order: committed one after the other, each
        records exactly the offsets it holds."""
        changes = [i for i, item in enumerate(self.items) if item.kind == CHANGE]
        if len(changes) < 2:
            raise ValueError(f"batch {self.number} holds {len(changes)} change events: no halves")
        cut = changes[len(changes) // 2]
        return self._part(self.items[:cut], "a"), self._part(self.items[cut:], "b")

    def _part(self, items: Sequence[BatchItem], suffix: str) -> MicroBatch:
        part = MicroBatch(self.number, part=self.part + suffix)
        for item in items:
            if item.kind == CHANGE:
                assert item.decoded is not None
                part.add_change(item.topic, item.partition, item.offset, item.decoded, item.msg)
            elif item.kind == TOMBSTONE:
                part.add_tombstone(item.topic, item.partition, item.offset, keyless=item.keyless)
            elif item.kind == DEAD_LETTER:
                part.add_dead_letter(item.topic, item.partition, item.offset)
            else:
                part.add_skipped(item.topic, item.partition, item.offset)
        part.started, part.opened_at = self.started, self.opened_at
        return part

    @property
    def has_changes(self) -> bool:
        """True when the batch holds at least one change event to write."""
        return bool(self.latest)

    def upserts(self) -> list[dict[str, Any]]:
        """Rows to insert or update: the latest event of each key that is not a delete."""
        return [d.row for d in self.latest.values() if d.row is not None]

    def deletes(self) -> list[tuple[Any, ...]]:
        """Keys whose latest event is a delete."""
        return [d.key for d in self.latest.values() if d.row is None]

    def next_positions(self) -> Positions:
        """Next offset per partition after this batch."""
        return {tp: span[1] for tp, span in self.ranges.items()}

    def age(self) -> float:
        """Seconds since the batch's oldest record reached Kafka (or since its first record
        was taken, for records without a timestamp)."""
        return time.monotonic() - self.started

    def written_at(self, wall: float) -> None:
        """A record of the batch reached Kafka at ``wall`` (unix seconds): the batch has been
        waiting since then, even when the worker was still committing the batch before.
        Without it a record that arrived during a commit would wait that commit, then a whole
        batch time, then its own commit."""
        waited = max(0.0, time.time() - wall)
        self.started = min(self.started, time.monotonic() - waited)

    def summary(self) -> dict[str, Any]:
        """Counts for logs and the commit log."""
        return {
            "records": self.records,
            "events": len(self.events),
            "keys": len(self.latest),
            "upserts": sum(1 for d in self.latest.values() if d.row is not None),
            "deletes": sum(1 for d in self.latest.values() if d.row is None),
            "tombstones": self.tombstones,
            "keyless_tombstones": self.keyless_tombstones,
            "dead_letters": self.dead_letters,
            "skipped_replayed": self.skipped,
            "unavailable": sum(
                1 for i in self.change_items() if i.decoded and has_unavailable(i.decoded.row)
            ),
        }
