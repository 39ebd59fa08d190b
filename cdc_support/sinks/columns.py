"""Sink columns: what a Debezium field becomes in a Delta or Iceberg table, and how its values
are converted.

A sink table needs typed columns, but Debezium's JSON carries plain JSON values. With the
converter's ``schemas.enable=true`` every record also carries its Kafka Connect schema, and the
field schema says what the value means (``io.debezium.time.ZonedTimestamp`` is an ISO string
of a ``timestamptz``, ``io.debezium.time.Date`` an int of days since the epoch, ...). Without a
schema the column type is inferred from the first non-null JSON value.

A :class:`Column` has a name, the Arrow type of its values, and a ``convert`` function from the
JSON value to the Python value written (:mod:`~cdc_support.sinks.values`). ``convert`` raises
``ValueError`` for a value that does not fit (the worker sends that record to its dead-letter
topic): a number beyond the decimal's precision or scale, ``NaN`` or a non-numeric text for a
decimal, a malformed UUID, ...

==========================================  ====================  ==========================
Connect schema (``type`` / ``name``)        JSON value            column type
==========================================  ====================  ==========================
int8, int16, int32 / int64                  number                int32 / int64
float / double (``decimal.handling.         number                float32 / float64
mode=double``)
boolean / string                            bool / string         bool / string
bytes (bytea)                               base64 string         binary
...connect.data.Decimal (mode ``precise``)  base64 unscaled       decimal128(p, s)
io.debezium.data.VariableScaleDecimal       {scale, value}        decimal128(38, 10)
string + ``__debezium.source.column.type``  "12.50"               decimal128(length, scale),
NUMERIC/DECIMAL (mode ``string``)                                 decimal128(38, 10) when
                                                                  unconstrained
io.debezium.time.ZonedTimestamp             ISO string, zone      timestamp[us, UTC]
io.debezium.time.Timestamp / Micro- /       epoch ms / µs / ns    timestamp[us]
NanoTimestamp, ...connect.data.Timestamp
io.debezium.time.Date, ...connect.data.Date days since epoch      date32
io.debezium.time.Time / MicroTime /         ms / µs / ns of day   time64[us] (Delta: int64
NanoTime, ...connect.data.Time                                    µs since midnight)
io.debezium.data.Uuid                       string                uuid (Delta: string)
io.debezium.data.Json                       JSON text             string, the text as sent
array (``items`` schema)                    list                  list<items' type>
struct, map                                 object                string (compact JSON,
                                                                  sorted keys)
==========================================  ====================  ==========================

The decimal column of ``decimal.handling.mode=string`` needs the connector to add the source
type to the schema: ``datatype.propagate.source.type`` (see :data:`SINK_CONNECTOR_SETTINGS`).
Arrow's decimal holds 38 digits: an unconstrained ``numeric`` becomes ``decimal(38,10)``, and a
value needing more digits or decimal places is refused, never rounded. A column the table has
already keeps the table's type (a decimal value is fitted to the table's precision and scale:
:mod:`~cdc_support.sinks.resolve`). :func:`~cdc_support.sinks.format_types.storage_type` says
what each table format stores (Delta has no time and no uuid type).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from cdc_support.sinks.values import (
    Convert,
    as_bool,
    as_bytes,
    as_float,
    as_int,
    as_str,
    as_uuid,
    decimal_bytes,
    decimal_into,
    decimal_text,
    epoch,
    epoch_days,
    json_text,
    list_of,
    time_of_day,
    value_converter,
    variable_scale_decimal,
    zoned_timestamp,
)

__all__ = [
    "DEFAULT_DECIMAL",
    "SINK_CONNECTOR_SETTINGS",
    "Column",
    "column_for_arrow_type",
    "column_from_connect",
    "column_from_value",
    "field_schemas",
]

UTC_MICROS = pa.timestamp("us", tz="UTC")
DEFAULT_DECIMAL = (38, 10)
"""Precision and scale of a decimal column whose source declares none (``numeric``)."""
_MAX_DECLARED_PRECISION = 1000  # PostgreSQL's limit; larger lengths mean "unconstrained"
SOURCE_TYPE = "__debezium.source.column.type"
SOURCE_LENGTH = "__debezium.source.column.length"
SOURCE_SCALE = "__debezium.source.column.scale"

SINK_CONNECTOR_SETTINGS: dict[str, str] = {
    "value.converter": "org.apache.kafka.connect.json.JsonConverter",
    "value.converter.schemas.enable": "true",
    "datatype.propagate.source.type": r".+\.numeric,.+\.decimal",
}
"""Debezium connector overrides for a topic a sink reads: values carry their Kafka Connect
schema (typed columns), and numeric/decimal fields, which ``decimal.handling.mode=string``
sends as text, carry the source type with its precision and scale (exact decimal columns)."""


@dataclass(frozen=True)
class Column:
    """One sink column: name, Arrow type of its values, JSON value -> written value."""

    name: str
    arrow_type: pa.DataType
    convert: Convert
    origin: str

    def __repr__(self) -> str:
        return f"Column({self.name}: {self.arrow_type} from {self.origin})"


# --------------------------------------------------------------------------- from a schema

_LOGICAL: dict[str, tuple[pa.DataType, Convert]] = {
    "io.debezium.time.ZonedTimestamp": (UTC_MICROS, zoned_timestamp),
    "io.debezium.time.Timestamp": (pa.timestamp("us"), epoch(1_000)),
    "io.debezium.time.MicroTimestamp": (pa.timestamp("us"), epoch(1_000_000)),
    "io.debezium.time.NanoTimestamp": (pa.timestamp("us"), epoch(1_000_000_000)),
    "org.apache.kafka.connect.data.Timestamp": (pa.timestamp("us"), epoch(1_000)),
    "io.debezium.time.Date": (pa.date32(), epoch_days),
    "org.apache.kafka.connect.data.Date": (pa.date32(), epoch_days),
    "io.debezium.time.Time": (pa.time64("us"), time_of_day(1_000)),
    "io.debezium.time.MicroTime": (pa.time64("us"), time_of_day(1_000_000)),
    "io.debezium.time.NanoTime": (pa.time64("us"), time_of_day(1_000_000_000)),
    "org.apache.kafka.connect.data.Time": (pa.time64("us"), time_of_day(1_000)),
    "io.debezium.data.Uuid": (pa.uuid(), as_uuid),
    "io.debezium.data.Json": (pa.string(), json_text),
    "io.debezium.data.VariableScaleDecimal": (
        pa.decimal128(*DEFAULT_DECIMAL),
        variable_scale_decimal,
    ),
}

_PRIMITIVE: dict[str, tuple[pa.DataType, Convert]] = {
    "int8": (pa.int32(), as_int),
    "int16": (pa.int32(), as_int),
    "int32": (pa.int32(), as_int),
    "int64": (pa.int64(), as_int),
    "float": (pa.float32(), as_float),  # the JsonConverter's names of FLOAT32 and FLOAT64
    "double": (pa.float64(), as_float),
    "float32": (pa.float32(), as_float),
    "float64": (pa.float64(), as_float),
    "boolean": (pa.bool_(), as_bool),
    "string": (pa.string(), as_str),
    "bytes": (pa.binary(), as_bytes),
    "struct": (pa.string(), json_text),
    "array": (pa.string(), json_text),
    "map": (pa.string(), json_text),
}


def _param_int(params: Mapping[str, Any], name: str) -> int | None:
    try:
        return int(params[name])
    except (KeyError, TypeError, ValueError):
        return None


def _decimal_type(precision: int | None, scale: int | None) -> tuple[int, int]:
    """Arrow's decimal128 for a source precision and scale (None: not declared)."""
    if precision is None or precision <= 0 or precision > _MAX_DECLARED_PRECISION:
        return DEFAULT_DECIMAL
    scale = max(scale or 0, 0)
    return min(precision, 38), min(scale, 38)


def _decimal_column(name: str, parse: Convert, p: int, s: int, origin: str) -> Column:
    return Column(name, pa.decimal128(p, s), decimal_into(parse, p, s), origin)


def column_from_connect(name: str, schema: Mapping[str, Any]) -> Column:
    """The column for a Kafka Connect field schema (``{"type": ..., "name": ..., ...}``)."""
    logical = schema.get("name")
    kind = schema.get("type")
    params = schema.get("parameters") or {}
    if logical == "org.apache.kafka.connect.data.Decimal":
        scale = _param_int(params, "scale") or 0
        p, s = _decimal_type(_param_int(params, "connect.decimal.precision") or 38, scale)
        return _decimal_column(name, decimal_bytes(scale), p, s, logical)
    source_type = str(params.get(SOURCE_TYPE, "")).split(" ")[0].upper()
    if kind == "string" and source_type in ("NUMERIC", "DECIMAL"):
        p, s = _decimal_type(_param_int(params, SOURCE_LENGTH), _param_int(params, SOURCE_SCALE))
        return _decimal_column(name, decimal_text, p, s, f"string of {source_type}")
    if kind == "array" and isinstance(schema.get("items"), Mapping):
        element = column_from_connect(f"{name}[]", schema["items"])
        return Column(
            name,
            pa.list_(element.arrow_type),
            list_of(element.convert),
            f"array of {element.origin}",
        )
    if isinstance(logical, str) and logical in _LOGICAL:
        arrow_type, convert = _LOGICAL[logical]
        if pa.types.is_decimal(arrow_type):
            return _decimal_column(name, convert, *DEFAULT_DECIMAL, logical)
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
        return Column(name, pa.bool_(), as_bool, "inferred boolean")
    if isinstance(value, int):
        return Column(name, pa.int64(), as_int, "inferred integer")
    if isinstance(value, float):
        return Column(name, pa.float64(), as_float, "inferred number")
    if isinstance(value, str):
        return Column(name, pa.string(), as_str, "inferred string")
    return Column(name, pa.string(), json_text, "inferred JSON")


def column_for_arrow_type(name: str, arrow_type: pa.DataType) -> Column:
    """A column of an existing table, for records without a schema: values are converted to
    the column's type (and must fit it)."""
    return Column(name, arrow_type, value_converter(arrow_type), f"table column {arrow_type}")
