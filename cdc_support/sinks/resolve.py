"""The column a record's value goes to: the rule :class:`~cdc_support.sinks.decoding.RowDecoder`
applies once per column.

From the record's Kafka Connect schema when it has one (a decimal fitted into the table's own
decimal, or written as text into the table's string column); else the table's existing column;
else inferred from the first non-null value. The column is then as the table format stores it
(:mod:`~cdc_support.sinks.format_types`), and Debezium's placeholder for a value it could not
read passes through as :data:`~cdc_support.sinks.unavailable.UNAVAILABLE`
(:mod:`~cdc_support.sinks.unavailable`).
"""

from __future__ import annotations

import decimal
from collections.abc import Mapping
from typing import Any

import pyarrow as pa

from cdc_support.sinks.columns import (
    Column,
    column_for_arrow_type,
    column_from_connect,
    column_from_value,
)
from cdc_support.sinks.format_types import stored_column
from cdc_support.sinks.unavailable import (
    UNAVAILABLE_PLACEHOLDER,
    keeping_unavailable,
    placeholder_forms,
)
from cdc_support.sinks.values import decimal_into

__all__ = ["resolve_column"]


def _decimal_text_of(value: Any) -> Any:
    return format(value, "f") if isinstance(value, decimal.Decimal) else value


def _into_table(column: Column, table_type: pa.DataType | None) -> Column:
    """A decimal column into the table's column of another type: fitted to the table's
    decimal, or its text for a string column (a table made before the source type was sent)."""
    if table_type is None or not pa.types.is_decimal(column.arrow_type):
        return column
    if pa.types.is_decimal(table_type) and table_type != column.arrow_type:
        p, s = table_type.precision, table_type.scale
        convert = decimal_into(column.convert, p, s)
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
