"""Decoding a Debezium record into a typed row for a sink table keyed by ``--key`` columns.

A record is checked before it enters a batch: a change event needs its key columns, non-null,
in its row image (a row written without its key would break the commit of the whole batch),
and a value that is the JSON literal ``null`` is not a tombstone. Tombstones (a record with no
value, which Debezium writes after each delete so Kafka's log compaction can forget the key; a
table without a primary key gives them no key either) come back as a
:class:`~cdc_support.events.Tombstone`. Each column is resolved once
(:func:`~cdc_support.sinks.resolve.resolve_column`) and every value converted to its type.

A column is resolved again when a record's schema of it changed (an ``ALTER TABLE`` at the
source): a type that grew is either to be widened by the table (listed in :attr:`pending`,
values converted as the source now sends them) or kept by it, each value then checked to fit
the table's type (:mod:`~cdc_support.sinks.type_changes`). A dropped column is simply no
longer in the rows: the table keeps it, and rows written since read null in it.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from cdc_support.events import ChangeEvent, MalformedEvent, Tombstone
from cdc_support.kafka.envelope import KafkaMessageLike, parse_message
from cdc_support.sinks.columns import Column
from cdc_support.sinks.errors import SinkConfigError
from cdc_support.sinks.record_schemas import RecordSchemas
from cdc_support.sinks.resolve import resolve_column
from cdc_support.sinks.type_changes import grown, kept_column, widening_refusal
from cdc_support.sinks.unavailable import UNAVAILABLE_PLACEHOLDER

__all__ = ["Decoded", "RowDecoder"]

log = logging.getLogger("cdc_support.sinks")


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


class RowDecoder:
    """Decodes Debezium records into :class:`Decoded` rows for a table keyed by ``key``.

    Columns are resolved once, on the first record that carries them: from the record's
    Kafka Connect schema when it has one, else from the table's existing column type, else
    inferred from the value (a column whose values are all null so far waits for a value).
    Columns not yet in the table, and columns whose source type grew into one the table can
    widen to, are listed in :attr:`pending` until the sink changed the table; :attr:`kept`
    says why the table keeps a column's type although the source's grew.
    Values are converted to what a ``fmt`` table stores (see ``resolve.resolve_column``), and
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
        self.kept: dict[str, str] = {}
        self.resolved_from: dict[str, Mapping[str, Any] | None] = {}
        self._schemas = RecordSchemas()
        self._fields: dict[str, Mapping[str, Any]] | None = None

    def __repr__(self) -> str:
        return f"RowDecoder(key={self.key}, {len(self.columns)} columns)"

    def table_changed(self, table_columns: Mapping[str, pa.DataType]) -> None:
        """The sink created the table, added or widened columns: forget what it did (a
        widening it did not make is not asked for again)."""
        before = self.table_columns
        self.table_columns = dict(table_columns)
        for name in list(self.pending):
            if name not in self.table_columns:
                continue
            if before.get(name) == self.table_columns[name]:  # a widening it did not make
                self.keep(name, "the table did not widen it")
            else:
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
        fields = self._schemas.of(msg.value())
        unknown = [c for c in wanted if c not in self.columns]
        if fields is not self._fields:  # another schema: a column of it may have changed
            self._fields = fields
            unknown += [
                c
                for c in wanted
                if c in self.columns and self.resolved_from.get(c) != fields.get(c)
            ]
        if unknown:
            self._resolve(unknown, image, fields)
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

    def keep(self, name: str, why: str) -> None:
        """The table keeps ``name``'s type: from now on each value is checked to fit it."""
        table_type, source = self.table_columns[name], self.columns[name]
        self.pending.pop(name, None)
        self.kept[name] = why
        self.columns[name] = kept_column(source, table_type, self.fmt or "sink", why)
        log.warning(
            "column %s: the source now sends %s, the table keeps %s (%s); a value that does not "
            "fit goes to the dead-letter topic",
            name,
            source.arrow_type,
            table_type,
            why,
        )

    def _resolve(
        self, names: list[str], image: Mapping[str, Any], schemas: Mapping[str, Mapping[str, Any]]
    ) -> None:
        for name in names:
            schema, table_type = schemas.get(name), self.table_columns.get(name)
            resolve = {"placeholder": self.placeholder, "fmt": self.fmt}
            column = resolve_column(name, schema, table_type, image.get(name), **resolve)
            if column is None:
                continue
            self.resolved_from[name] = schema
            source = None
            if schema is not None and table_type is not None and self.fmt is not None:
                source = resolve_column(name, schema, None, image.get(name), **resolve)
            if source is not None and grown(table_type, source.arrow_type):
                why = widening_refusal(table_type, source.arrow_type, self.fmt or "")
                self.columns[name] = source
                if why is None:
                    self.pending[name] = source  # the sink widens the table's column
                else:
                    self.keep(name, why)
            else:
                self.columns[name] = column
                if name in self.table_columns:
                    self.pending.pop(name, None)  # a widening asked for is no longer wanted
                else:
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
