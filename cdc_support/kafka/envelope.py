"""Parse Debezium change-event records (JSON converter) into :mod:`cdc_support.events`.

Both JSON converter layouts are accepted, for key and value independently:

* ``schemas.enable=false``: the record is the plain payload;
* ``schemas.enable=true``: the record is ``{"schema": {...}, "payload": {...}}``.

The value must be the full Debezium envelope (``before``, ``after``, ``source``, ``op``,
``ts_ms``); records flattened by the ``ExtractNewRecordState`` SMT are rejected. A record with
no value at all is a tombstone (Debezium writes one after each delete unless
``tombstones.on.delete=false``). A value that *is* JSON ``null`` is not: Kafka's JsonConverter
(``fromConnectData``) writes no bytes when a record's value and value schema are both null
(Debezium's tombstone), but the 4 bytes ``null`` (schemas disabled) or
``{"schema": {...}, "payload": null}`` (schemas enabled) for a null value that has a schema;
``{"schema": null, "payload": null}`` it never writes. Whatever wrote such a value, it is no
tombstone, so all three are rejected (MalformedEvent).

A table without a primary key gives records with a null key: without ``key_fields`` their
events get ``key=None`` and their tombstones ``Tombstone(key=None)`` (see ``events``).
Column values are kept exactly as Debezium encoded them (see ``workload`` for the settings
that keep them comparable with rows read from the source).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping, Sequence
from typing import Any, Protocol, cast

from cdc_support.events import OPS, ChangeEvent, MalformedEvent, Op, Tombstone

__all__ = [
    "UNAVAILABLE_VALUE_PLACEHOLDER",
    "KafkaMessageLike",
    "parse_message",
    "parse_record",
    "unavailable_value_forms",
]

UNAVAILABLE_VALUE_PLACEHOLDER = "__debezium_unavailable_value"
"""Debezium's default ``unavailable.value.placeholder``: what an UPDATE carries in ``after``
(and a DELETE in ``before``) for a TOASTed column it did not change, when the table's
REPLICA IDENTITY is not FULL — PostgreSQL does not log the unchanged out-of-line value."""

# confluent_kafka.TIMESTAMP_NOT_AVAILABLE; not imported so this module needs no Kafka client.
_TIMESTAMP_NOT_AVAILABLE = 0


class KafkaMessageLike(Protocol):
    """The part of ``confluent_kafka.Message`` that :func:`parse_message` uses."""

    def key(self) -> bytes | None: ...
    def value(self) -> bytes | None: ...
    def topic(self) -> str | None: ...
    def partition(self) -> int | None: ...
    def offset(self) -> int | None: ...
    def timestamp(self) -> tuple[int, int]: ...


def unavailable_value_forms(placeholder: str = UNAVAILABLE_VALUE_PLACEHOLDER) -> list[Any]:
    """How the placeholder looks in a JSON-converted event, per column type.

    From Debezium's ``UnchangedToastedPlaceholder`` and ``PostgresValueConverter``: text,
    varchar and json columns get the string; bytea (``binary.handling.mode=bytes``, the
    default) gets its UTF-8 bytes, which the JsonConverter writes base64-encoded
    (``"X19kZWJleml1bV91bmF2YWlsYWJsZV92YWx1ZQ=="`` for the default); text[] gets
    ``[placeholder]``, bytea[] ``[base64]``, int[]/bigint[] the list of its byte values,
    hstore (map mode) ``{placeholder: placeholder}``.
    """
    raw = placeholder.encode("utf-8")
    b64 = base64.b64encode(raw).decode("ascii")
    return [placeholder, b64, [placeholder], [b64], list(raw), {placeholder: placeholder}]


def _where(topic: str, partition: int, offset: int) -> str:
    parts = []
    if topic:
        parts.append(f"topic {topic!r}")
    if partition >= 0:
        parts.append(f"partition {partition}")
    if offset >= 0:
        parts.append(f"offset {offset}")
    return " at " + " ".join(parts) if parts else ""


def _snippet(raw: bytes, limit: int = 120) -> str:
    text = raw[:limit].decode("utf-8", errors="replace")
    return text + ("..." if len(raw) > limit else "")


def _load_json(raw: bytes, what: str, where: str) -> Any:
    try:
        text = bytes(raw).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MalformedEvent(f"record {what} is not valid UTF-8 ({exc.reason}){where}") from exc
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise MalformedEvent(
            f"record {what} is not JSON ({exc.msg} at char {exc.pos}){where}: "
            f"{_snippet(raw)!r}; is the Kafka Connect converter "
            "org.apache.kafka.connect.json.JsonConverter?"
        ) from exc


def _is_schema_wrapped(doc: Any) -> bool:
    """True for the ``schemas.enable=true`` layout ``{"schema": ..., "payload": ...}``."""
    return (
        isinstance(doc, dict)
        and set(doc) == {"schema", "payload"}
        and (doc["schema"] is None or (isinstance(doc["schema"], dict) and "type" in doc["schema"]))
    )


def _unwrap(doc: Any) -> tuple[Any, Mapping[str, Any] | None]:
    """Return (payload, schema-or-None) for either converter layout."""
    if _is_schema_wrapped(doc):
        return doc["payload"], doc["schema"]
    return doc, None


def _key_from_record(key_doc: Any, schema: Mapping[str, Any] | None) -> tuple[Any, ...]:
    if isinstance(key_doc, dict):
        names: list[str] = list(key_doc)
        fields = schema.get("fields") if schema else None
        if isinstance(fields, list):
            ordered = [f.get("field") for f in fields if isinstance(f, dict)]
            if set(ordered) == set(key_doc):
                names = cast(list[str], ordered)
        return tuple(key_doc[n] for n in names)
    if isinstance(key_doc, list):
        return tuple(key_doc)
    return (key_doc,)


def _key_from_row(
    row: Mapping[str, Any] | None, key_fields: Sequence[str], where: str
) -> tuple[Any, ...]:
    if row is None:
        raise MalformedEvent(f"no row image to take key fields {list(key_fields)} from{where}")
    missing = [f for f in key_fields if f not in row]
    if missing:
        raise MalformedEvent(
            f"key field(s) {missing} not in the row image (columns: {sorted(row)}){where}"
        )
    return tuple(row[f] for f in key_fields)


def _parse_key(key: bytes | None, where: str) -> tuple[Any, ...] | None:
    """Key tuple from the record key, or None if the record has no (non-null) key."""
    if key is None:
        return None
    doc, schema = _unwrap(_load_json(key, "key", where))
    if doc is None:
        return None
    return _key_from_record(doc, schema)


def _commit_ts(source: Mapping[str, Any]) -> float | None:
    """Source commit time in epoch seconds, using the most precise field present."""
    for field, scale in (("ts_us", 1e6), ("ts_ns", 1e9), ("ts_ms", 1e3)):
        value = source.get(field)
        if isinstance(value, int | float) and not isinstance(value, bool):
            return value / scale
    return None


def parse_record(
    key: bytes | None,
    value: bytes | None,
    *,
    topic: str = "",
    partition: int = -1,
    offset: int = -1,
    timestamp_ms: int | None = None,
    key_fields: Sequence[str] | None = None,
) -> ChangeEvent | Tombstone:
    """Turn one Debezium Kafka record into a ChangeEvent (or a Tombstone when it has no value).

    The key tuple comes from the record key's fields in order; without a record key it is
    picked from ``after`` (or ``before`` for deletes) using ``key_fields``, and without those
    too it is None (a keyless table). ``commit_ts`` is
    ``source.ts_us`` (else ``ts_ns``, else ``ts_ms``) in seconds; ``observed_ts`` is the Kafka
    record timestamp. Raises MalformedEvent naming what was wrong and where.
    """
    where = _where(topic, partition, offset)
    kafka_pos: dict[str, Any] = {"topic": topic, "partition": partition, "offset": offset}
    observed_ts = timestamp_ms / 1000 if timestamp_ms is not None else None
    record_key = _parse_key(key, where)

    if value is None:  # no value at all: a tombstone (keyless table: no key either)
        return Tombstone(key=record_key, source=kafka_pos, observed_ts=observed_ts)
    doc = _load_json(value, "value", where)
    payload, _ = _unwrap(doc)
    if payload is None:
        wrapped = " (the payload of a schema/payload envelope)" if doc is not None else ""
        raise MalformedEvent(
            f"record value is the JSON literal null{wrapped}, not a tombstone "
            f"(a tombstone has no value at all){where}"
        )

    if not isinstance(payload, dict):
        raise MalformedEvent(
            f"record value is a JSON {type(payload).__name__}, expected a Debezium envelope "
            f"object{where}"
        )
    if "op" not in payload:
        raise MalformedEvent(
            f"record value has no 'op' field (fields: {sorted(payload)}){where}; expected the "
            "full Debezium envelope - is the ExtractNewRecordState (unwrap) SMT configured?"
        )
    op = payload["op"]
    if op not in OPS:
        raise MalformedEvent(
            f"unsupported op {op!r}{where}; expected one of c, u, d, r "
            "(t = truncate and m = logical message are not row changes)"
        )
    source = payload.get("source")
    if not isinstance(source, dict):
        raise MalformedEvent(f"op {op!r} event has no 'source' object{where}")
    before = payload.get("before")
    after = payload.get("after")
    for name, image in (("before", before), ("after", after)):
        if image is not None and not isinstance(image, dict):
            raise MalformedEvent(
                f"'{name}' is a JSON {type(image).__name__}, expected an object or null{where}"
            )
    if op == "d" and before is None:
        raise MalformedEvent(f"delete event (op 'd') has no 'before' row image{where}")
    if op != "d" and after is None:
        raise MalformedEvent(f"op {op!r} event has no 'after' row image{where}")

    event_key: tuple[Any, ...] | None = None  # keyless table: the row is its identity
    if record_key is not None:
        event_key = record_key
    elif key_fields:
        event_key = _key_from_row(before if op == "d" else after, key_fields, where)

    position: dict[str, Any] = dict(source)
    position.update(kafka_pos)
    position["envelope_ts_ms"] = payload.get("ts_ms")
    if payload.get("transaction") is not None:
        position["transaction"] = payload["transaction"]

    return ChangeEvent(
        op=cast(Op, op),
        key=event_key,
        before=before,
        after=after,
        source=position,
        commit_ts=_commit_ts(source),
        observed_ts=observed_ts,
    )


def parse_message(
    msg: KafkaMessageLike, *, key_fields: Sequence[str] | None = None
) -> ChangeEvent | Tombstone:
    """Parse a ``confluent_kafka.Message`` (or anything with its API) via :func:`parse_record`.

    A message carrying a Kafka error (``msg.error()`` not None) raises MalformedEvent.
    """
    error = getattr(msg, "error", None)
    err = error() if callable(error) else None
    topic = msg.topic() or ""
    partition = msg.partition()
    offset = msg.offset()
    partition = -1 if partition is None else partition
    offset = -1 if offset is None else offset
    if err is not None:
        raise MalformedEvent(f"Kafka error {err}{_where(topic, partition, offset)}")
    ts_type, ts_ms = msg.timestamp()
    return parse_record(
        msg.key(),
        msg.value(),
        topic=topic,
        partition=partition,
        offset=offset,
        timestamp_ms=None if ts_type == _TIMESTAMP_NOT_AVAILABLE else ts_ms,
        key_fields=key_fields,
    )
