"""Sink values: a Debezium JSON value converted to the Python value a typed column writes.

Each converter takes the JSON value (``None`` stays ``None``) and returns the value written,
or raises ``ValueError`` for a value that does not fit, saying what was expected: a number
beyond a decimal's precision or scale, ``NaN`` or a non-numeric text for a decimal, a
malformed UUID, a time of day of 24:00 or later, ... (the worker sends that record to its
dead-letter topic). Which converter a column uses is decided in
:mod:`~cdc_support.sinks.columns`; :func:`value_converter` is the one for a column a table
already has, for records without a schema.
"""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import json
import uuid
from collections.abc import Callable
from typing import Any

import pyarrow as pa

__all__ = [
    "Convert",
    "as_bool",
    "as_bytes",
    "as_float",
    "as_int",
    "as_str",
    "as_uuid",
    "date_value",
    "decimal_bytes",
    "decimal_into",
    "decimal_text",
    "epoch",
    "epoch_days",
    "fit_decimal",
    "json_text",
    "list_of",
    "naive_timestamp_text",
    "time_of_day",
    "value_converter",
    "variable_scale_decimal",
    "zoned_timestamp",
]

Convert = Callable[[Any], Any]
_EPOCH = dt.datetime(1970, 1, 1)
_EPOCH_DATE = dt.date(1970, 1, 1)
_DECIMAL_CONTEXT = decimal.Context(prec=200)


def _fail(kind: str, value: Any) -> ValueError:
    return ValueError(f"expected {kind}, got {type(value).__name__} {value!r:.80}")


def as_int(value: Any) -> Any:
    """An integer (a JSON number without a fraction; not a boolean)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise _fail("an integer", value)
    return value


def as_float(value: Any) -> Any:
    """A float; Debezium writes NaN and the infinities of double columns as strings."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        if isinstance(value, str) and value in ("NaN", "Infinity", "-Infinity"):
            return float(value)
        raise _fail("a number", value)
    return float(value)


def _as_is(kind: str, accepted: type) -> Convert:
    """Values of type ``accepted``, unchanged; ValueError naming ``kind`` for others."""

    def convert(value: Any) -> Any:
        if value is None or isinstance(value, accepted):
            return value
        raise _fail(kind, value)

    return convert


as_bool = _as_is("a boolean", bool)
"""A JSON boolean."""
as_str = _as_is("a string", str)
"""A JSON string."""


def json_text(value: Any) -> Any:
    """A string as sent; anything else as compact JSON with sorted keys."""
    if value is None or isinstance(value, str):
        return value
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def as_bytes(value: Any) -> Any:
    """Bytes from their base64 text."""
    if value is None or isinstance(value, bytes):
        return value
    if not isinstance(value, str):
        raise _fail("a base64 string", value)
    try:
        return base64.b64decode(value, validate=True)
    except ValueError as exc:
        raise ValueError(f"expected a base64 string, got {value!r:.80} ({exc})") from None


def as_uuid(value: Any) -> Any:
    """A ``uuid.UUID`` from its text."""
    if value is None or isinstance(value, uuid.UUID):
        return value
    if isinstance(value, str):
        try:
            return uuid.UUID(value)
        except ValueError:
            pass
    raise _fail("a UUID", value)


def _iso_datetime(value: Any) -> dt.datetime:
    """An ISO 8601 text as a datetime (aware when the text has a zone)."""
    if not isinstance(value, str):
        raise _fail("an ISO 8601 timestamp string", value)
    try:
        return dt.datetime.fromisoformat(value)
    except ValueError:
        raise _fail("an ISO 8601 timestamp string", value) from None


def zoned_timestamp(value: Any) -> Any:
    """ISO 8601 with a zone (``2024-01-01T10:00:00.123456Z``) -> aware UTC datetime."""
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        return value
    parsed = _iso_datetime(value)
    if parsed.tzinfo is None:
        raise ValueError(f"expected a timestamp with a zone, got {value!r}")
    return parsed.astimezone(dt.UTC)


def epoch(unit_per_second: int) -> Convert:
    """ms / µs / ns since the epoch -> naive datetime (µs)."""

    def convert(value: Any) -> Any:
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            raise _fail("an integer epoch timestamp", value)
        micros = value * 1_000_000 // unit_per_second
        return _EPOCH + dt.timedelta(microseconds=micros)

    return convert


def epoch_days(value: Any) -> Any:
    """Days since 1970-01-01 -> ``datetime.date``."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise _fail("an integer of days since 1970-01-01", value)
    return _EPOCH_DATE + dt.timedelta(days=value)


def time_of_day(unit_per_second: int) -> Convert:
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


def decimal_bytes(scale: int) -> Convert:
    """Kafka Connect Decimal: base64 of the big-endian two's-complement unscaled value."""

    def convert(value: Any) -> Any:
        if value is None or isinstance(value, decimal.Decimal):
            return value
        unscaled = int.from_bytes(as_bytes(value), "big", signed=True)
        return decimal.Decimal(unscaled).scaleb(-scale, _DECIMAL_CONTEXT)

    return convert


def variable_scale_decimal(value: Any) -> Any:
    """io.debezium.data.VariableScaleDecimal: ``{"scale": s, "value": base64 unscaled}``."""
    if value is None or isinstance(value, decimal.Decimal):
        return value
    if not isinstance(value, dict) or "scale" not in value or "value" not in value:
        raise _fail('{"scale": ..., "value": ...}', value)
    return decimal_bytes(as_int(value["scale"]))(value["value"])


def decimal_text(value: Any) -> Any:
    """A ``decimal.Decimal`` from a numeric text (or a JSON number)."""
    if value is None or isinstance(value, decimal.Decimal):
        return value
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise _fail("a decimal number", value)
    try:
        return decimal.Decimal(str(value))
    except decimal.InvalidOperation:
        raise _fail("a decimal number", value) from None


def fit_decimal(value: decimal.Decimal, precision: int, scale: int) -> decimal.Decimal:
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


def decimal_into(parse: Convert, precision: int, scale: int) -> Convert:
    """``parse``, then the decimal fitted to ``decimal(precision, scale)``."""

    def convert(value: Any) -> Any:
        parsed = parse(value)
        return None if parsed is None else fit_decimal(decimal_text(parsed), precision, scale)

    return convert


def list_of(element: Convert) -> Convert:
    """A JSON array, each item converted by ``element``."""

    def convert(value: Any) -> Any:
        if value is None:
            return None
        if not isinstance(value, list):
            raise _fail("an array", value)
        return [element(item) for item in value]

    return convert


def naive_timestamp_text(value: Any) -> Any:
    """ISO 8601 -> naive datetime (one with a zone: its UTC time)."""
    if value is None or isinstance(value, dt.datetime):
        return value
    parsed = _iso_datetime(value)
    return parsed.astimezone(dt.UTC).replace(tzinfo=None) if parsed.tzinfo else parsed


def date_value(value: Any) -> Any:
    """Days since the epoch or ``YYYY-MM-DD`` -> ``datetime.date``."""
    if value is None or isinstance(value, dt.date):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return epoch_days(value)
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            pass
    raise _fail("a date (days since epoch or YYYY-MM-DD)", value)


def value_converter(arrow_type: pa.DataType) -> Convert:
    """JSON value -> a value of an existing column's type, where the JSON form is unambiguous
    (ISO strings for timestamps and times, numeric strings for decimals, days or
    ``YYYY-MM-DD`` for dates, µs since midnight for times)."""
    if pa.types.is_timestamp(arrow_type):
        return zoned_timestamp if arrow_type.tz else naive_timestamp_text
    if pa.types.is_decimal(arrow_type):
        return decimal_into(decimal_text, arrow_type.precision, arrow_type.scale)
    if pa.types.is_date(arrow_type):
        return date_value
    if pa.types.is_time(arrow_type):
        return time_of_day(1_000_000)
    if arrow_type == pa.uuid():
        return as_uuid
    if pa.types.is_integer(arrow_type):
        return as_int
    if pa.types.is_floating(arrow_type):
        return as_float
    if pa.types.is_boolean(arrow_type):
        return as_bool
    if pa.types.is_binary(arrow_type) or pa.types.is_large_binary(arrow_type):
        return as_bytes
    if pa.types.is_list(arrow_type) or pa.types.is_large_list(arrow_type):
        return list_of(value_converter(arrow_type.value_type))
    return json_text
