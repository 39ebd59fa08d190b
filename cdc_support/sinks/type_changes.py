"""A source column whose type grew mid-stream: the sink widens its table column, or keeps it.

After ``ALTER TABLE ... ALTER COLUMN qty TYPE bigint`` (or ``MODIFY qty BIGINT``) Debezium's
records carry the new Kafka Connect type (``int64`` instead of ``int32``), and a numeric's new
precision. The sink compares each column's type as the source now sends it with the table's:

==============================  ===========================  ==================================
source type grew                Iceberg table                Delta table (delta-rs)
==============================  ===========================  ==================================
int32 -> int64                  widened in place (int->long)  kept; values beyond it dead-lettered
float32 -> float64              widened in place              kept; values beyond it dead-lettered
decimal(p,s) -> decimal(p+k,s)  widened in place              kept; values beyond it dead-lettered
decimal scale grew              kept (Iceberg cannot)         kept; values beyond it dead-lettered
==============================  ===========================  ==================================

Iceberg's schema evolution allows exactly these promotions (pyiceberg ``update_schema``).
delta-rs has no type widening (Delta's ``typeWidening`` table feature is written by Spark
only), so a Delta table keeps the column's type: values that fit are written as before, a
value that does not is refused with the reason, and its record goes to the dead-letter
topic. A string stays a string (``varchar(n) -> text`` changes nothing in either table).
"""

from __future__ import annotations

import pyarrow as pa

from cdc_support.sinks.columns import Column
from cdc_support.sinks.unavailable import UNAVAILABLE
from cdc_support.sinks.values import Convert, fit_decimal

__all__ = ["grown", "kept_column", "widening_refusal"]

DELTA_REFUSAL = (
    "delta-rs cannot widen a Delta column (no type widening support); "
    "rewrite the table with the wider type to take such values"
)


def grown(table_type: pa.DataType, source_type: pa.DataType) -> bool:
    """Whether ``source_type`` holds values ``table_type`` cannot, in the same kind of number
    (a wider integer or float, a decimal with more digits or decimal places)."""
    if pa.types.is_integer(table_type) and pa.types.is_integer(source_type):
        return source_type.bit_width > table_type.bit_width
    if pa.types.is_floating(table_type) and pa.types.is_floating(source_type):
        return source_type.bit_width > table_type.bit_width
    if pa.types.is_decimal(table_type) and pa.types.is_decimal(source_type):
        return (
            source_type.precision - source_type.scale > table_type.precision - table_type.scale
            or source_type.scale > table_type.scale
        )
    return False


def widening_refusal(table_type: pa.DataType, source_type: pa.DataType, fmt: str) -> str | None:
    """None when a ``fmt`` table widens ``table_type`` to ``source_type`` in place; else why
    it cannot, naming the fix."""
    if fmt == "iceberg":
        if pa.types.is_decimal(table_type) and source_type.scale != table_type.scale:
            return (
                f"Iceberg cannot change a decimal's scale ({table_type} -> {source_type}); "
                "rewrite the table with the new type to take such values"
            )
        return None
    if fmt == "delta":
        return DELTA_REFUSAL
    return f"a {fmt} table cannot widen {table_type} to {source_type}"


def _fits(table_type: pa.DataType) -> Convert:
    """A check that a value fits ``table_type`` (ValueError saying why not); the value."""
    if pa.types.is_integer(table_type):
        bits = table_type.bit_width
        low, high = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1

        def check_int(value: object) -> object:
            if isinstance(value, int) and not low <= value <= high:
                raise ValueError(f"{value} does not fit {table_type} ({low}..{high})")
            return value

        return check_int
    if pa.types.is_decimal(table_type):
        p, s = table_type.precision, table_type.scale
        return lambda value: value if value is None else fit_decimal(value, p, s)  # type: ignore[arg-type]

    def check(value: object) -> object:
        if value is not None:
            try:
                pa.array([value], type=table_type)
            except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError) as exc:
                raise ValueError(f"{value!r:.80} does not fit {table_type}: {exc}") from None
        return value

    return check


def kept_column(column: Column, table_type: pa.DataType, fmt: str, why: str) -> Column:
    """``column`` written into the table's narrower ``table_type``: each value checked to fit,
    ValueError naming the source's new type and ``why`` the table keeps its own."""
    parse, fit = column.convert, _fits(table_type)

    def convert(value: object) -> object:
        parsed = parse(value)
        return parsed if parsed is None or parsed is UNAVAILABLE else fit(parsed)

    sent = (
        f"{column.arrow_type} ({column.origin})"
        if column.origin != str(column.arrow_type)
        else column.origin
    )
    origin = f"the source now sends {sent}; the {fmt} table keeps {table_type}: {why}"
    return Column(column.name, table_type, convert, origin)
