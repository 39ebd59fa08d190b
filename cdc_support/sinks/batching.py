"""Micro-batches: Debezium records decoded into typed rows, the latest event per key, offsets.

A sink applies a batch of records in one table commit. Within a batch only the latest event
of each key matters: an insert then two updates of key 7 leave the row of the last update,
an update then a delete leave no row. Every event still counts for lag (its change became
visible with the commit, even when a later event of the batch superseded it).

Tombstones (a record with a null value, which Debezium writes after each delete so Kafka's
log compaction can forget the key) are no changes: they are counted and skipped. Records
below the position the table already recorded (a replay after a crash) are counted and
skipped. Every record, whatever became of it, moves the batch's offset range, so the
offsets committed after the batch cover it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from cdc_support.debezium import KafkaMessageLike, parse_message
from cdc_support.events import ChangeEvent, MalformedEvent, Tombstone
from cdc_support.sinks.columns import (
    Column,
    column_for_arrow_type,
    column_from_connect,
    column_from_value,
    field_schemas,
)

__all__ = [
    "Decoded",
    "MicroBatch",
    "Positions",
    "RowDecoder",
    "TopicPartition",
    "latest_per_key",
    "positions_from_json",
    "positions_to_json",
]

TopicPartition = tuple[str, int]
Positions = dict[TopicPartition, int]
"""Next offset to read per (topic, partition): everything below it has been applied."""


def positions_to_json(positions: Mapping[TopicPartition, int]) -> str:
    """``{("t", 0): 42}`` -> ``'{"t": {"0": 42}}'`` (stable order)."""
    nested: dict[str, dict[str, int]] = {}
    for (topic, partition), offset in sorted(positions.items()):
        nested.setdefault(topic, {})[str(partition)] = int(offset)
    return json.dumps(nested, sort_keys=True, separators=(",", ":"))


def positions_from_json(text: str | None) -> Positions:
    """The inverse of :func:`positions_to_json`; empty for None or ``""``."""
    if not text:
        return {}
    nested = json.loads(text)
    if not isinstance(nested, dict):
        raise ValueError(f"offsets must be a JSON object of topic -> partition -> offset: {text}")
    return {
        (topic, int(partition)): int(offset)
        for topic, partitions in nested.items()
        for partition, offset in partitions.items()
    }


@dataclass(frozen=True)
class Decoded:
    """A change event with its key and its row converted to the sink's column types."""

    event: ChangeEvent
    key: tuple[Any, ...]
    row: dict[str, Any] | None  # None for a delete

    @property
    def is_delete(self) -> bool:
        """True for op ``d``."""
        return self.row is None


def latest_per_key(items: Iterable[Decoded]) -> dict[tuple[Any, ...], Decoded]:
    """The last item of each key, in the order keys were first seen."""
    latest: dict[tuple[Any, ...], Decoded] = {}
    for item in items:
        latest[item.key] = item
    return latest


class RowDecoder:
    """Decodes Debezium records into :class:`Decoded` rows for a table keyed by ``key``.

    Columns are resolved once, on the first record that carries them: from the record's
    Kafka Connect schema when it has one, else from the table's existing column type, else
    inferred from the value (a column whose values are all null so far waits for a value).
    Columns not yet in the table are listed in :attr:`pending` until the sink added them.
    """

    def __init__(
        self,
        key: Sequence[str],
        table_columns: Mapping[str, pa.DataType] | None = None,
    ) -> None:
        if not key:
            raise ValueError("a sink needs at least one key column")
        self.key = tuple(key)
        self.table_columns: dict[str, pa.DataType] = dict(table_columns or {})
        self.columns: dict[str, Column] = {}
        self.order: list[str] = list(self.table_columns)
        self.pending: dict[str, Column] = {}

    def __repr__(self) -> str:
        return f"RowDecoder(key={self.key}, {len(self.columns)} columns)"

    def table_changed(self, table_columns: Mapping[str, pa.DataType]) -> None:
        """The sink created the table or added columns: forget what is no longer pending."""
        self.table_columns = dict(table_columns)
        for name in list(self.pending):
            if name in self.table_columns:
                del self.pending[name]
        for name in self.table_columns:
            if name not in self.order:
                self.order.append(name)

    def decode(self, msg: KafkaMessageLike) -> Decoded | Tombstone:
        """Parse one record; MalformedEvent (bad envelope) or ValueError (bad value) if it
        cannot be applied, naming what and where."""
        record = parse_message(msg, key_fields=self.key)
        if isinstance(record, Tombstone):
            return record
        image = record.before if record.op == "d" else record.after
        assert image is not None  # parse_message guarantees it
        wanted = image if record.op != "d" else [k for k in self.key if k in image]
        unknown = [c for c in wanted if c not in self.columns]
        if unknown:
            self._resolve(unknown, image, msg)
        where = f"{msg.topic()}/{msg.partition()}@{msg.offset()}"
        key = self._key(record, image, where)
        if record.op == "d":
            return Decoded(record, key, None)
        row: dict[str, Any] = {}
        for name, value in image.items():
            column = self.columns.get(name)
            if column is None:  # null so far and not in the table: nothing to write yet
                continue
            try:
                row[name] = column.convert(value)
            except ValueError as exc:
                raise ValueError(f"column {name!r} ({column.origin}) at {where}: {exc}") from None
        return Decoded(record, key, row)

    def _key(self, record: ChangeEvent, image: Mapping[str, Any], where: str) -> tuple[Any, ...]:
        if all(k in image for k in self.key):
            values = [image[k] for k in self.key]
        elif len(record.key) == len(self.key):
            values = list(record.key)
        else:
            raise MalformedEvent(
                f"key columns {list(self.key)} are neither in the row image "
                f"(columns {sorted(image)}) nor the record key {record.key} at {where}"
            )
        key = []
        for name, value in zip(self.key, values, strict=True):
            if value is None:
                raise MalformedEvent(f"key column {name!r} is null at {where}")
            column = self.columns.get(name)
            if column is None:
                key.append(value)
                continue
            try:
                key.append(column.convert(value))
            except ValueError as exc:
                raise ValueError(
                    f"key column {name!r} ({column.origin}) at {where}: {exc}"
                ) from None
        return tuple(key)

    def _resolve(self, names: list[str], image: Mapping[str, Any], msg: KafkaMessageLike) -> None:
        schemas = _message_field_schemas(msg)
        for name in names:
            column: Column | None
            if name in schemas:
                column = column_from_connect(name, schemas[name])
            elif name in self.table_columns:
                column = column_for_arrow_type(name, self.table_columns[name])
            else:
                column = column_from_value(name, image.get(name))
            if column is None:
                continue
            self.columns[name] = column
            if name not in self.table_columns:
                self.pending[name] = column
            if name not in self.order:
                self.order.append(name)


def _message_field_schemas(msg: KafkaMessageLike) -> dict[str, Mapping[str, Any]]:
    """Row field schemas of a record written with ``schemas.enable=true``; {} otherwise."""
    value = msg.value()
    try:
        doc = json.loads(value) if value else None
    except ValueError:
        return {}
    if isinstance(doc, dict) and set(doc) == {"schema", "payload"} and doc["schema"]:
        return field_schemas(doc["schema"])
    return {}


@dataclass
class BatchEvent:
    """One change event of a batch, as the commit log and the lag histogram see it."""

    topic: str
    partition: int
    offset: int
    op: str
    key: tuple[Any, ...]
    commit_ts: float | None


@dataclass
class MicroBatch:
    """Records consumed since the last commit: latest change per key, counts and offsets."""

    number: int
    latest: dict[tuple[Any, ...], Decoded] = field(default_factory=dict)
    events: list[BatchEvent] = field(default_factory=list)
    ranges: dict[TopicPartition, list[int]] = field(default_factory=dict)
    tombstones: int = 0
    dead_letters: int = 0
    skipped: int = 0
    records: int = 0
    started: float = field(default_factory=time.monotonic)
    opened_at: float = field(default_factory=time.time)

    def _note(self, topic: str, partition: int, offset: int) -> None:
        if self.records == 0:
            self.started = time.monotonic()
            self.opened_at = time.time()
        self.records += 1
        span = self.ranges.get((topic, partition))
        if span is None:
            self.ranges[(topic, partition)] = [offset, offset + 1]
        else:
            span[0] = min(span[0], offset)
            span[1] = max(span[1], offset + 1)

    def add_change(self, topic: str, partition: int, offset: int, item: Decoded) -> None:
        """A change event: it replaces any earlier event of its key in this batch."""
        self._note(topic, partition, offset)
        self.latest.pop(item.key, None)  # re-insert: the order follows the latest event
        self.latest[item.key] = item
        self.events.append(
            BatchEvent(topic, partition, offset, item.event.op, item.key, item.event.commit_ts)
        )

    def add_tombstone(self, topic: str, partition: int, offset: int) -> None:
        """A tombstone: no change, but its offset is consumed."""
        self._note(topic, partition, offset)
        self.tombstones += 1

    def add_dead_letter(self, topic: str, partition: int, offset: int) -> None:
        """A record sent to the dead-letter topic: its offset is consumed."""
        self._note(topic, partition, offset)
        self.dead_letters += 1

    def add_skipped(self, topic: str, partition: int, offset: int) -> None:
        """A record the table had applied already (a replay): its offset is consumed."""
        self._note(topic, partition, offset)
        self.skipped += 1

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
        """Seconds since the batch's first record."""
        return time.monotonic() - self.started

    def summary(self) -> dict[str, Any]:
        """Counts for logs and the commit log."""
        return {
            "records": self.records,
            "events": len(self.events),
            "keys": len(self.latest),
            "upserts": sum(1 for d in self.latest.values() if d.row is not None),
            "deletes": sum(1 for d in self.latest.values() if d.row is None),
            "tombstones": self.tombstones,
            "dead_letters": self.dead_letters,
            "skipped_replayed": self.skipped,
        }
