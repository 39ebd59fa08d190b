"""What a Delta or an Iceberg table stores a sink column as.

Iceberg has every type a :class:`~cdc_support.sinks.columns.Column` can have. Delta has no time
type (a time of day is stored as int64 µs since midnight) and no uuid type (stored as its
text); a list of those is a list of what its items are stored as.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import pyarrow as pa

from cdc_support.sinks.columns import Column
from cdc_support.sinks.values import Convert, list_of

__all__ = ["storage_type", "stored_column"]


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
        return list_of(_storage_converter(arrow_type.value_type))
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
