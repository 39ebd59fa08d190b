"""Sink columns: what a Debezium field becomes in a Delta or Iceberg table, and how its values
are converted.

A sink table needs typed columns, but Debezium's JSON carries plain JSON values. With the JSON
converter's ``schemas.enable=true`` every record also carries its Kafka Connect schema, and the
field schema says what the value means (``io.debezium.time.ZonedTimestamp`` is an ISO string
of a ``timestamptz``, ``io.debezium.time.Date`` an int of days since the epoch, ...). Without a
schema the column type is inferred from the first non-null JSON value.

A :class:`Column` has a name, the Arrow type the sink creates the column with, and a
``convert`` function from the JSON value to the Python value written. ``convert`` raises
``ValueError`` for a value that does not fit (the worker sends that record to its dead-letter
topic). Arrow types are the ones both table formats hold: no 8/16-bit integers (they widen to
32 bits), timestamps in microseconds, no ``time`` type in Delta (times stay integers).

================================================  ===========================  ==================
Connect schema (``type`` / ``name``)              JSON value                   column type
================================================  ===========================  ==================
int8, int16, int32 / int64                        number                       int32 / int64
float32 / float64                                 number                       float32 / float64
boolean / string                                  bool / string                bool / string
bytes                                             base64 string                binary
io.debezium.time.ZonedTimestamp                   ISO string with zone         timestamp[us, UTC]
io.debezium.time.Timestamp / MicroTimestamp /     epoch ms / µs / ns           timestamp[us]
NanoTimestamp, org.apache.kafka.connect.data.
Timestamp
io.debezium.time.Date, ...connect.data.Date       days since epoch             date32
org.apache.kafka.connect.data.Decimal             base64 unscaled bytes        decimal128(p, s)
io.debezium.time.MicroTime, Time, NanoTime        number                       int64 (kept as is)
struct, array, map, io.debezium.data.Json         object / array / string      string (JSON text)
================================================  ===========================  ==================
"""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

__all__ = [
    "Column",
    "column_for_arrow_type",
    "column_from_connect",
    "column_from_value",
    "field_schemas",
]

Convert = Callable[[Any], Any]
_EPOCH = dt.datetime(1970, 1, 1)
_EPOCH_DATE = dt.date(1970, 1, 1)
UTC_MICROS = pa.timestamp("us", tz="UTC")


@dataclass(frozen=True)
class Column:
    """One sink column: name, Arrow type to create it with, JSON value -> written value."""

    name: str
    arrow_type: pa.DataType
    convert: Convert
    origin: str

    def __repr__(self) -> str:
        return f"Column({self.name}: {self.arrow_type} from {self.origin})"


# --------------------------------------------------------------------------- converters


def _fail(kind: str, value: Any) -> ValueError:
    return ValueError(f"expected {kind}, got {type(value).__name__} {value!r:.80}")


def _int(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise _fail("an integer", value)
    return value


def _float(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        # Debezium writes NaN/Infinity of double columns as strings
        if isinstance(value, str) and value in ("NaN", "Infinity", "-Infinity"):
            return float(value)
        raise _fail("a number", value)
    return float(value)


def _bool(value: Any) -> Any:
    if value is None:
        return None
    if not isinstance(value, bool):
        raise _fail("a boolean", value)
    return value


def _str(value: Any) -> Any:
    if value is None:
        return None
    if not isinstance(value, str):
        raise _fail("a string", value)
    return value


def _json_text(value: Any) -> Any:
    if value is None or isinstance(value, str):
        return value
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def _bytes(value: Any) -> Any:
    if value is None:
        return None
    if not isinstance(value, str):
        raise _fail("a base64 string", value)
    try:
        return base64.b64decode(value, validate=True)
    except ValueError as exc:
        raise ValueError(f"expected a base64 string, got {value!r:.80} ({exc})") from None


def _zoned_timestamp(value: Any) -> Any:
    """ISO 8601 with a zone (``2024-01-01T10:00:00.123456Z``) -> aware UTC datetime."""
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        return value
    if not isinstance(value, str):
        raise _fail("an ISO 8601 timestamp string", value)
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        raise _fail("an ISO 8601 timestamp string", value) from None
    if parsed.tzinfo is None:
        raise ValueError(f"expected a timestamp with a zone, got {value!r}")
    return parsed.astimezone(dt.UTC)


def _epoch(unit_per_second: int) -> Convert:
    def convert(value: Any) -> Any:
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            raise _fail("an integer epoch timestamp", value)
        micros = value * 1_000_000 // unit_per_second
        return _EPOCH + dt.timedelta(microseconds=micros)

    return convert


def _epoch_days(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise _fail("an integer of days since 1970-01-01", value)
    return _EPOCH_DATE + dt.timedelta(days=value)


def _decimal_bytes(scale: int) -> Convert:
    """Kafka Connect Decimal: base64 of the big-endian two's-complement unscaled value."""

    def convert(value: Any) -> Any:
        if value is None:
            return None
        raw = _bytes(value)
        unscaled = int.from_bytes(raw, "big", signed=True)
        return decimal.Decimal(unscaled).scaleb(-scale)

    return convert


def _iso_or_str_timestamp(value: Any) -> Any:
    """Schemaless value into an existing timestamp-with-zone column: ISO strings only."""
    return _zoned_timestamp(value)


def _naive_timestamp_text(value: Any) -> Any:
    if value is None or isinstance(value, dt.datetime):
        return value
    if not isinstance(value, str):
        raise _fail("an ISO 8601 timestamp string", value)
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        raise _fail("an ISO 8601 timestamp string", value) from None
    return parsed.astimezone(dt.UTC).replace(tzinfo=None) if parsed.tzinfo else parsed


def _decimal_text(value: Any) -> Any:
    if value is None or isinstance(value, decimal.Decimal):
        return value
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise _fail("a decimal number", value)
    try:
        return decimal.Decimal(str(value))
    except decimal.InvalidOperation:
        raise _fail("a decimal number", value) from None


def _date_value(value: Any) -> Any:
    if value is None or isinstance(value, dt.date):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return _epoch_days(value)
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            pass
    raise _fail("a date (days since epoch or YYYY-MM-DD)", value)


# --------------------------------------------------------------------------- from a schema

_LOGICAL: dict[str, tuple[pa.DataType, Convert]] = {
    "io.debezium.time.ZonedTimestamp": (UTC_MICROS, _zoned_timestamp),
    "io.debezium.time.Timestamp": (pa.timestamp("us"), _epoch(1_000)),
    "io.debezium.time.MicroTimestamp": (pa.timestamp("us"), _epoch(1_000_000)),
    "io.debezium.time.NanoTimestamp": (pa.timestamp("us"), _epoch(1_000_000_000)),
    "org.apache.kafka.connect.data.Timestamp": (pa.timestamp("us"), _epoch(1_000)),
    "io.debezium.time.Date": (pa.date32(), _epoch_days),
    "org.apache.kafka.connect.data.Date": (pa.date32(), _epoch_days),
    "io.debezium.data.Json": (pa.string(), _json_text),
}

_PRIMITIVE: dict[str, tuple[pa.DataType, Convert]] = {
    "int8": (pa.int32(), _int),
    "int16": (pa.int32(), _int),
    "int32": (pa.int32(), _int),
    "int64": (pa.int64(), _int),
    "float32": (pa.float32(), _float),
    "float64": (pa.float64(), _float),
    "boolean": (pa.bool_(), _bool),
    "string": (pa.string(), _str),
    "bytes": (pa.binary(), _bytes),
    "struct": (pa.string(), _json_text),
    "array": (pa.string(), _json_text),
    "map": (pa.string(), _json_text),
}


def column_from_connect(name: str, schema: Mapping[str, Any]) -> Column:
    """The column for a Kafka Connect field schema (``{"type": ..., "name": ..., ...}``)."""
    logical = schema.get("name")
    kind = schema.get("type")
    if logical == "org.apache.kafka.connect.data.Decimal":
        params = schema.get("parameters") or {}
        scale = int(params.get("scale", 0))
        precision = int(params.get("connect.decimal.precision", 38))
        precision = min(max(precision, scale, 1), 38)
        return Column(name, pa.decimal128(precision, scale), _decimal_bytes(scale), logical)
    if isinstance(logical, str) and logical in _LOGICAL:
        arrow_type, convert = _LOGICAL[logical]
        return Column(name, arrow_type, convert, logical)
    if isinstance(kind, str) and kind in _PRIMITIVE:
        arrow_type, convert = _PRIMITIVE[kind]
        return Column(name, arrow_type, convert, f"{kind} {logical}" if logical else kind)
    raise ValueError(
        f"column {name!r}: unsupported Kafka Connect schema type {kind!r} (name {logical!r}); "
        f"supported types are {sorted(_PRIMITIVE)}"
    )


def field_schemas(envelope_schema: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    """Field schemas of the row images in a Debezium envelope's value schema, by column name.

    The envelope schema is a struct whose ``after`` (and ``before``) field is the row struct.
    """
    for image in ("after", "before"):
        for field in envelope_schema.get("fields") or []:
            if isinstance(field, dict) and field.get("field") == image:
                return {
                    f["field"]: f
                    for f in field.get("fields") or []
                    if isinstance(f, dict) and "field" in f
                }
    return {}


# --------------------------------------------------------------------------- without a schema


def column_from_value(name: str, value: Any) -> Column | None:
    """Infer a column from a JSON value (records without a schema); None for a null value."""
    if value is None:
        return None
    if isinstance(value, bool):
        return Column(name, pa.bool_(), _bool, "inferred boolean")
    if isinstance(value, int):
        return Column(name, pa.int64(), _int, "inferred integer")
    if isinstance(value, float):
        return Column(name, pa.float64(), _float, "inferred number")
    if isinstance(value, str):
        return Column(name, pa.string(), _str, "inferred string")
    return Column(name, pa.string(), _json_text, "inferred JSON")


def column_for_arrow_type(name: str, arrow_type: pa.DataType) -> Column:
    """A column of an existing table, for records without a schema: values are converted to
    the column's type where the JSON form is unambiguous (ISO strings for timestamps, numeric
    strings for decimals, days or ``YYYY-MM-DD`` for dates)."""
    if pa.types.is_timestamp(arrow_type):
        convert = _iso_or_str_timestamp if arrow_type.tz else _naive_timestamp_text
    elif pa.types.is_decimal(arrow_type):
        convert = _decimal_text
    elif pa.types.is_date(arrow_type):
        convert = _date_value
    elif pa.types.is_integer(arrow_type):
        convert = _int
    elif pa.types.is_floating(arrow_type):
        convert = _float
    elif pa.types.is_boolean(arrow_type):
        convert = _bool
    elif pa.types.is_binary(arrow_type) or pa.types.is_large_binary(arrow_type):
        convert = _bytes
    else:
        convert = _json_text
    return Column(name, arrow_type, convert, f"table column {arrow_type}")
