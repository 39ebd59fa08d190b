"""Sink columns: what a Debezium field becomes in a Delta or Iceberg table, and how its values
are converted.

A sink table needs typed columns, but Debezium's JSON carries plain JSON values. With the
converter's ``schemas.enable=true`` every record also carries its Kafka Connect schema, and the
field schema says what the value means (``io.debezium.time.ZonedTimestamp`` is an ISO string
of a ``timestamptz``, ``io.debezium.time.Date`` an int of days since the epoch, ...). Without a
schema the column type is inferred from the first non-null JSON value.

A :class:`Column` has a name, the Arrow type of its values, and a ``convert`` function from the
JSON value to the Python value written. ``convert`` raises ``ValueError`` for a value that does
not fit (the worker sends that record to its dead-letter topic): a number beyond the decimal's
precision or scale, ``NaN`` or a non-numeric text for a decimal, a malformed UUID, ...

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
already keeps the table's type (a decimal value is fitted to the table's precision and scale).
:func:`storage_type` says what each table format stores (Delta has no time and no uuid type).
"""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import json
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from cdc_support.sinks.unavailable import (
    UNAVAILABLE_PLACEHOLDER,
    keeping_unavailable,
    placeholder_forms,
)

__all__ = [
    "DEFAULT_DECIMAL",
    "SINK_CONNECTOR_SETTINGS",
    "Column",
    "column_for_arrow_type",
    "column_from_connect",
    "column_from_value",
    "field_schemas",
    "resolve_column",
    "storage_type",
    "stored_column",
]

Convert = Callable[[Any], Any]
_EPOCH = dt.datetime(1970, 1, 1)
_EPOCH_DATE = dt.date(1970, 1, 1)
UTC_MICROS = pa.timestamp("us", tz="UTC")
DEFAULT_DECIMAL = (38, 10)
"""Precision and scale of a decimal column whose source declares none (``numeric``)."""
_MAX_DECLARED_PRECISION = 1000  # PostgreSQL's limit; larger lengths mean "unconstrained"
_DECIMAL_CONTEXT = decimal.Context(prec=200)
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
    if value is None or isinstance(value, bytes):
        return value
    if not isinstance(value, str):
        raise _fail("a base64 string", value)
    try:
        return base64.b64decode(value, validate=True)
    except ValueError as exc:
        raise ValueError(f"expected a base64 string, got {value!r:.80} ({exc})") from None


def _uuid(value: Any) -> Any:
    if value is None or isinstance(value, uuid.UUID):
        return value
    if isinstance(value, str):
        try:
            return uuid.UUID(value)
        except ValueError:
            pass
    raise _fail("a UUID", value)


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


def _time_of_day(unit_per_second: int) -> Convert:
    """ms / µs / ns since midnight -> ``datetime.time`` (µs)."""

    def convert(value: Any) -> Any:
        if value is None or isinstance(value, dt.time):
            return value
        if isinstance(value, str):
            try:
                return dt.time.fromisoformat(value)
            except ValueError:
                raise _fail("a time of day", value) from None
        if isinstance(value, bool) or not isinstance(value, int):
            raise _fail("an integer time of day", value)
        micros = value * 1_000_000 // unit_per_second
        if not 0 <= micros < 86_400_000_000:
            raise ValueError(
                f"{value} is not a time of day: 24:00:00 and later do not fit a time column "
                "(00:00:00 to 23:59:59.999999)"
            )
        seconds, micro = divmod(micros, 1_000_000)
        return dt.time(seconds // 3600, seconds // 60 % 60, seconds % 60, micro)

    return convert


def _decimal_bytes(scale: int) -> Convert:
    """Kafka Connect Decimal: base64 of the big-endian two's-complement unscaled value."""

    def convert(value: Any) -> Any:
        if value is None or isinstance(value, decimal.Decimal):
            return value
        unscaled = int.from_bytes(_bytes(value), "big", signed=True)
        return decimal.Decimal(unscaled).scaleb(-scale, _DECIMAL_CONTEXT)

    return convert


def _variable_scale_decimal(value: Any) -> Any:
    """io.debezium.data.VariableScaleDecimal: ``{"scale": s, "value": base64 unscaled}``."""
    if value is None or isinstance(value, decimal.Decimal):
        return value
    if not isinstance(value, dict) or "scale" not in value or "value" not in value:
        raise _fail('{"scale": ..., "value": ...}', value)
    return _decimal_bytes(_int(value["scale"]))(value["value"])


def _decimal_text(value: Any) -> Any:
    if value is None or isinstance(value, decimal.Decimal):
        return value
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise _fail("a decimal number", value)
    try:
        return decimal.Decimal(str(value))
    except decimal.InvalidOperation:
        raise _fail("a decimal number", value) from None


def _fit_decimal(value: decimal.Decimal, precision: int, scale: int) -> decimal.Decimal:
    """``value`` with exactly ``scale`` decimal places; ValueError if that loses a digit or
    needs more than ``precision`` digits."""
    kind = f"a decimal({precision},{scale}) column"
    if not value.is_finite():
        raise ValueError(f"{value} is not a finite number: {kind} cannot hold it")
    fitted = value.quantize(decimal.Decimal((0, (1,), -scale)), context=_DECIMAL_CONTEXT)
    if fitted != value:
        raise ValueError(f"{value} has more than {scale} decimal places: {kind} would round it")
    if fitted and fitted.adjusted() >= precision - scale:
        raise ValueError(
            f"{value} has more than {precision - scale} digits before the point: "
            f"{kind} cannot hold it"
        )
    return fitted


def _decimal_into(parse: Convert, precision: int, scale: int) -> Convert:
    def convert(value: Any) -> Any:
        parsed = parse(value)
        return None if parsed is None else _fit_decimal(_decimal_text(parsed), precision, scale)

    return convert


def _list_of(element: Convert) -> Convert:
    def convert(value: Any) -> Any:
        if value is None:
            return None
        if not isinstance(value, list):
            raise _fail("an array", value)
        return [element(item) for item in value]

    return convert


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
    "io.debezium.time.Time": (pa.time64("us"), _time_of_day(1_000)),
    "io.debezium.time.MicroTime": (pa.time64("us"), _time_of_day(1_000_000)),
    "io.debezium.time.NanoTime": (pa.time64("us"), _time_of_day(1_000_000_000)),
    "org.apache.kafka.connect.data.Time": (pa.time64("us"), _time_of_day(1_000)),
    "io.debezium.data.Uuid": (pa.uuid(), _uuid),
    "io.debezium.data.Json": (pa.string(), _json_text),
    "io.debezium.data.VariableScaleDecimal": (
        pa.decimal128(*DEFAULT_DECIMAL),
        _variable_scale_decimal,
    ),
}

_PRIMITIVE: dict[str, tuple[pa.DataType, Convert]] = {
    "int8": (pa.int32(), _int),
    "int16": (pa.int32(), _int),
    "int32": (pa.int32(), _int),
    "int64": (pa.int64(), _int),
    "float": (pa.float32(), _float),  # the JsonConverter's names of FLOAT32 and FLOAT64
    "double": (pa.float64(), _float),
    "float32": (pa.float32(), _float),
    "float64": (pa.float64(), _float),
    "boolean": (pa.bool_(), _bool),
    "string": (pa.string(), _str),
    "bytes": (pa.binary(), _bytes),
    "struct": (pa.string(), _json_text),
    "array": (pa.string(), _json_text),
    "map": (pa.string(), _json_text),
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
    return Column(name, pa.decimal128(p, s), _decimal_into(parse, p, s), origin)


def column_from_connect(name: str, schema: Mapping[str, Any]) -> Column:
    """The column for a Kafka Connect field schema (``{"type": ..., "name": ..., ...}``)."""
    logical = schema.get("name")
    kind = schema.get("type")
    params = schema.get("parameters") or {}
    if logical == "org.apache.kafka.connect.data.Decimal":
        scale = _param_int(params, "scale") or 0
        p, s = _decimal_type(_param_int(params, "connect.decimal.precision") or 38, scale)
        return _decimal_column(name, _decimal_bytes(scale), p, s, logical)
    source_type = str(params.get(SOURCE_TYPE, "")).split(" ")[0].upper()
    if kind == "string" and source_type in ("NUMERIC", "DECIMAL"):
        p, s = _decimal_type(_param_int(params, SOURCE_LENGTH), _param_int(params, SOURCE_SCALE))
        return _decimal_column(name, _decimal_text, p, s, f"string of {source_type}")
    if kind == "array" and isinstance(schema.get("items"), Mapping):
        element = column_from_connect(f"{name}[]", schema["items"])
        return Column(
            name,
            pa.list_(element.arrow_type),
            _list_of(element.convert),
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
        return Column(name, pa.bool_(), _bool, "inferred boolean")
    if isinstance(value, int):
        return Column(name, pa.int64(), _int, "inferred integer")
    if isinstance(value, float):
        return Column(name, pa.float64(), _float, "inferred number")
    if isinstance(value, str):
        return Column(name, pa.string(), _str, "inferred string")
    return Column(name, pa.string(), _json_text, "inferred JSON")


def _value_converter(arrow_type: pa.DataType) -> Convert:
    """JSON value -> a value of an existing column's type, where the JSON form is unambiguous
    (ISO strings for timestamps and times, numeric strings for decimals, days or
    ``YYYY-MM-DD`` for dates, µs since midnight for times)."""
    if pa.types.is_timestamp(arrow_type):
        return _zoned_timestamp if arrow_type.tz else _naive_timestamp_text
    if pa.types.is_decimal(arrow_type):
        return _decimal_into(_decimal_text, arrow_type.precision, arrow_type.scale)
    if pa.types.is_date(arrow_type):
        return _date_value
    if pa.types.is_time(arrow_type):
        return _time_of_day(1_000_000)
    if arrow_type == pa.uuid():
        return _uuid
    if pa.types.is_integer(arrow_type):
        return _int
    if pa.types.is_floating(arrow_type):
        return _float
    if pa.types.is_boolean(arrow_type):
        return _bool
    if pa.types.is_binary(arrow_type) or pa.types.is_large_binary(arrow_type):
        return _bytes
    if pa.types.is_list(arrow_type) or pa.types.is_large_list(arrow_type):
        return _list_of(_value_converter(arrow_type.value_type))
    return _json_text


def column_for_arrow_type(name: str, arrow_type: pa.DataType) -> Column:
    """A column of an existing table, for records without a schema: values are converted to
    the column's type (and must fit it)."""
    return Column(name, arrow_type, _value_converter(arrow_type), f"table column {arrow_type}")


# --------------------------------------------------------------------------- per table format


def storage_type(arrow_type: pa.DataType, fmt: str) -> pa.DataType:
    """The type a ``fmt`` table ("delta" or "iceberg") stores a column of ``arrow_type`` as:
    Delta has no time type (int64 µs since midnight) and no uuid type (string)."""
    if pa.types.is_list(arrow_type) or pa.types.is_large_list(arrow_type):
        return pa.list_(storage_type(arrow_type.value_type, fmt))
    if fmt == "delta":
        if pa.types.is_time(arrow_type):
            return pa.int64()
        if arrow_type == pa.uuid():
            return pa.string()
    return arrow_type


def _micros_of_day(value: Any) -> Any:
    if isinstance(value, dt.time):
        return (
            (value.hour * 60 + value.minute) * 60 + value.second
        ) * 1_000_000 + value.microsecond
    return value


def _uuid_text(value: Any) -> Any:
    return str(value) if isinstance(value, uuid.UUID) else value


def _storage_converter(arrow_type: pa.DataType) -> Convert:
    if pa.types.is_list(arrow_type) or pa.types.is_large_list(arrow_type):
        return _list_of(_storage_converter(arrow_type.value_type))
    if pa.types.is_integer(arrow_type):
        return _micros_of_day
    if pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type):
        return _uuid_text
    return lambda value: value


def stored_column(column: Column, fmt: str) -> Column:
    """``column`` as a ``fmt`` table stores it (see :func:`storage_type`)."""
    target = storage_type(column.arrow_type, fmt)
    if target == column.arrow_type:
        return column
    to_storage, convert = _storage_converter(target), column.convert
    return Column(
        column.name,
        target,
        lambda value: to_storage(convert(value)),
        f"{column.origin}, stored as {target} in {fmt}",
    )


# --------------------------------------------------------------------------- the decoder's rule


def _decimal_text_of(value: Any) -> Any:
    return format(value, "f") if isinstance(value, decimal.Decimal) else value


def _into_table(column: Column, table_type: pa.DataType | None) -> Column:
    """A decimal column into the table's column of another type: fitted to the table's
    decimal, or its text for a string column (a table made before the source type was sent)."""
    if table_type is None or not pa.types.is_decimal(column.arrow_type):
        return column
    if pa.types.is_decimal(table_type) and table_type != column.arrow_type:
        p, s = table_type.precision, table_type.scale
        convert = _decimal_into(column.convert, p, s)
        return Column(column.name, table_type, convert, f"{column.origin}, into decimal({p},{s})")
    if pa.types.is_string(table_type) or pa.types.is_large_string(table_type):
        parse = column.convert
        return Column(
            column.name,
            table_type,
            lambda value: _decimal_text_of(parse(value)),
            f"{column.origin}, as the table's string",
        )
    return column


def resolve_column(
    name: str,
    schema: Mapping[str, Any] | None,
    table_type: pa.DataType | None,
    value: Any,
    *,
    placeholder: str = UNAVAILABLE_PLACEHOLDER,
    fmt: str | None = None,
) -> Column | None:
    """The column a value goes to: from the record's schema when it has one (a decimal into the
    table's decimal or string column when the table has the column), else the table's column, else
    inferred from ``value`` (None for a null); as a ``fmt`` table stores it when ``fmt`` is
    given. Debezium's placeholder for a value it could not read becomes
    :data:`~cdc_support.sinks.unavailable.UNAVAILABLE`."""
    if schema is not None:
        column = _into_table(column_from_connect(name, schema), table_type)
    elif table_type is not None:
        column = column_for_arrow_type(name, table_type)
    else:
        inferred = column_from_value(name, value)
        if inferred is None:
            return None
        column = inferred
    if fmt is not None:
        column = stored_column(column, fmt)
    forms = placeholder_forms(schema, placeholder)
    return Column(
        column.name, column.arrow_type, keeping_unavailable(column.convert, forms), column.origin
    )
