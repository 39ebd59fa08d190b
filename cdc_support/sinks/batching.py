"""Micro-batches: Debezium records decoded into typed rows, the latest event per key, offsets.

A sink applies a batch of records in one table commit. Within a batch only the latest event
of each key matters: an insert then two updates of key 7 leave the row of the last update,
an update then a delete leave no row. Every event still counts for lag (its change became
visible with the commit, even when a later event of the batch superseded it).

Tombstones (a record with no value, which Debezium writes after each delete so Kafka's
log compaction can forget the key; a table without a primary key gives them no key either)
are no changes: they are counted and skipped. Records below the position the table already
recorded (a replay after a crash) are counted and skipped. Every record, whatever became of
it, moves the batch's offset range, so the offsets committed after the batch cover it.

A record is checked before it enters a batch: a change event needs its key columns, non-null,
in its row image (a row written without its key would break the commit of the whole batch),
and a value that is the JSON literal ``null`` is not a tombstone. The batch keeps every record
in arrival order, so a record the table refuses later can be taken out
(:meth:`MicroBatch.reject`) and a batch split in two (:meth:`MicroBatch.split`) with each
half's offset range exact.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import pyarrow as pa

from cdc_support.events import ChangeEvent, MalformedEvent, Tombstone
from cdc_support.kafka.envelope import KafkaMessageLike, parse_message
from cdc_support.sinks.columns import Column, field_schemas, resolve_column
from cdc_support.sinks.errors import SinkConfigError
from cdc_support.sinks.unavailable import UNAVAILABLE_PLACEHOLDER, fill_unavailable, has_unavailable

__all__ = [
    "BatchItem",
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
    Values are converted to what a ``fmt`` table stores (see ``columns.resolve_column``), and
    Debezium's ``placeholder`` for a value it could not send becomes ``UNAVAILABLE``.
    """

    def __init__(
        self,
        key: Sequence[str],
        table_columns: Mapping[str, pa.DataType] | None = None,
        *,
        placeholder: str = UNAVAILABLE_PLACEHOLDER,
        fmt: str | None = None,
    ) -> None:
        if not key:
            raise ValueError("a sink needs at least one key column")
        self.key = tuple(key)
        self.placeholder = placeholder
        self.fmt = fmt
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
        """Parse and check one record. A tombstone (no value) comes back as a Tombstone, with
        ``key=None`` when it has no key (a keyless table). MalformedEvent (bad envelope, a row
        without its key) or ValueError (bad value) if it cannot be applied, naming what and
        where; SinkConfigError when the record has no key and ``--key`` is not in its row."""
        where = f"{msg.topic()}/{msg.partition()}@{msg.offset()}"
        try:
            record = parse_message(msg, key_fields=self.key)
        except MalformedEvent:
            if msg.value() is None:  # a tombstone whose key the parser would not read
                return Tombstone(key=None, source=_position(msg), observed_ts=None)
            self._check_keyless(msg, where)
            raise
        if isinstance(record, Tombstone):
            if msg.value() is not None:
                raise MalformedEvent(
                    f"record value is the JSON literal null ({_snippet(msg.value())!r}), not a "
                    f"tombstone (a tombstone has no value at all) at {where}"
                )
            return record
        image = record.before if record.op == "d" else record.after
        assert image is not None  # parse_message guarantees it
        key_values = self._key_values(record, image, where)
        wanted = image if record.op != "d" else [k for k in self.key if k in image]
        unknown = [c for c in wanted if c not in self.columns]
        if unknown:
            self._resolve(unknown, image, msg)
        key = self._key(key_values, where)
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

    def _key_values(self, record: ChangeEvent, image: Mapping[str, Any], where: str) -> list[Any]:
        """The raw key values: from the row image (a row to write must hold its key), or for
        a delete from the record key; MalformedEvent when missing or null."""
        missing = [k for k in self.key if k not in image]
        if not missing:
            values = [image[k] for k in self.key]
        elif record.op == "d" and record.key is not None and len(record.key) == len(self.key):
            values = list(record.key)
        elif record.op == "d":
            raise MalformedEvent(
                f"key columns {list(self.key)} are neither in the row image "
                f"(columns {sorted(image)}) nor the record key {record.key} at {where}"
            )
        else:
            raise MalformedEvent(
                f"the row image ('after') has no key column(s) {missing} (columns "
                f"{sorted(image)}) at {where}: a row cannot be written without its key, even "
                "when the record key holds it; is a column filter (column.exclude.list, an "
                "SMT) dropping it?"
            )
        for name, value in zip(self.key, values, strict=True):
            if value is None:
                raise MalformedEvent(f"key column {name!r} is null at {where}")
        return values

    def _key(self, values: Sequence[Any], where: str) -> tuple[Any, ...]:
        key = []
        for name, value in zip(self.key, values, strict=True):
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

    def _check_keyless(self, msg: KafkaMessageLike, where: str) -> None:
        """SinkConfigError when ``msg`` has no key and ``--key`` is not in its row: then no
        record of the topic can be applied, so the worker must not dead-letter them all."""
        if not _null_json(msg.key()):
            return
        columns = _image_columns(msg.value())
        if columns is None or all(k in columns for k in self.key):
            return
        raise SinkConfigError(
            f"records of topic {msg.topic()!r} have no key (a table without a primary key?) "
            f"and the --key column(s) {', '.join(self.key)} are not in their rows (columns: "
            f"{', '.join(sorted(columns))}) at {where}: give --key the column(s) that identify "
            "a row"
        )

    def _resolve(self, names: list[str], image: Mapping[str, Any], msg: KafkaMessageLike) -> None:
        schemas = _message_field_schemas(msg)
        for name in names:
            column = resolve_column(
                name,
                schemas.get(name),
                self.table_columns.get(name),
                image.get(name),
                placeholder=self.placeholder,
                fmt=self.fmt,
            )
            if column is None:
                continue
            self.columns[name] = column
            if name not in self.table_columns:
                self.pending[name] = column
            if name not in self.order:
                self.order.append(name)


def _position(msg: KafkaMessageLike) -> dict[str, Any]:
    return {"topic": msg.topic(), "partition": msg.partition(), "offset": msg.offset()}


def _snippet(raw: bytes | None, limit: int = 40) -> str:
    text = (raw or b"")[:limit].decode("utf-8", errors="replace")
    return text + ("..." if raw and len(raw) > limit else "")


def _json_or_none(raw: bytes | None) -> Any:
    try:
        return json.loads(raw) if raw else None
    except ValueError:
        return None


def _unwrapped(doc: Any) -> Any:
    if isinstance(doc, dict) and set(doc) == {"schema", "payload"}:
        return doc["payload"]
    return doc


def _null_json(raw: bytes | None) -> bool:
    """True for a record key that is absent or JSON null (a keyless table's records)."""
    if raw is None:
        return True
    try:
        return _unwrapped(json.loads(raw)) is None
    except ValueError:
        return False


def _image_columns(value: bytes | None) -> list[str] | None:
    """The columns of a Debezium value's row image (``after``, else ``before``), or None."""
    payload = _unwrapped(_json_or_none(value))
    if not isinstance(payload, dict):
        return None
    image = payload.get("after") or payload.get("before")
    return list(image) if isinstance(image, dict) else None


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
            "keyless_tombstones": self.keyless_tombstones,
            "dead_letters": self.dead_letters,
            "skipped_replayed": self.skipped,
            "unavailable": sum(
                1 for i in self.change_items() if i.decoded and has_unavailable(i.decoded.row)
            ),
        }
