"""Tables with identifier fields: schemas for the generated rows, creation, reading by key.

The identifier fields are the key a changelog joins removed and added rows on. Iceberg
records them in the schema but does not enforce them (two rows may share a key).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import pyarrow as pa
from pyiceberg.catalog.sql import SqlCatalog
from pyiceberg.schema import Schema
from pyiceberg.table import Table
from pyiceberg.types import (
    DecimalType,
    IcebergType,
    IntegerType,
    LongType,
    NestedField,
    StringType,
    TimestamptzType,
)

from cdc_support.iceberg.errors import IcebergChangelogError
from cdc_support.iceberg.snapshots import expired_error, table_name

__all__ = [
    "GENERATED_COLUMNS",
    "Key",
    "Row",
    "create_table",
    "generated_schema",
    "iceberg_schema",
    "identifier_columns",
    "read_snapshot",
    "rows_by_key",
    "to_arrow",
]

Key = tuple[Any, ...]
Row = dict[str, Any]

GENERATED_COLUMNS: dict[str, tuple[tuple[str, IcebergType], ...]] = {
    "customers": (
        ("id", LongType()),
        ("email", StringType()),
        ("full_name", StringType()),
        ("country", StringType()),
        ("created_at", TimestamptzType()),
    ),
    "products": (
        ("id", LongType()),
        ("sku", StringType()),
        ("name", StringType()),
        ("price", DecimalType(10, 2)),
        ("stock", IntegerType()),
    ),
    "orders": (
        ("id", LongType()),
        ("customer_id", LongType()),
        ("status", StringType()),
        ("total", DecimalType(12, 2)),
        ("updated_at", TimestamptzType()),
    ),
    "order_items": (
        ("order_id", LongType()),
        ("line_no", IntegerType()),
        ("product_id", LongType()),
        ("quantity", IntegerType()),
        ("unit_price", DecimalType(10, 2)),
    ),
}
"""Iceberg column types of the rows made by :class:`cdc_support.workload.EcommerceGenerator`."""


def iceberg_schema(
    columns: Sequence[tuple[str, IcebergType]], identifier_fields: Sequence[str]
) -> Schema:
    """An Iceberg schema (field ids 1..n) whose identifier fields are required columns."""
    names = [name for name, _ in columns]
    unknown = [f for f in identifier_fields if f not in names]
    if not identifier_fields or unknown:
        raise ValueError(
            f"identifier fields must be a non-empty subset of the columns {names}, "
            f"got {list(identifier_fields)}"
        )
    fields = [
        NestedField(i, name, kind, required=name in identifier_fields)
        for i, (name, kind) in enumerate(columns, start=1)
    ]
    ids = [names.index(f) + 1 for f in identifier_fields]
    return Schema(*fields, identifier_field_ids=ids)


def generated_schema(table: str) -> Schema:
    """The Iceberg schema for a generated table (customers, products, orders, order_items)."""
    from cdc_support.workload import KEY_COLUMNS

    if table not in GENERATED_COLUMNS:
        raise ValueError(
            f"no Iceberg schema for {table!r}; choose one of {list(GENERATED_COLUMNS)}"
        )
    return iceberg_schema(GENERATED_COLUMNS[table], KEY_COLUMNS[table])


def create_table(
    catalog: SqlCatalog,
    identifier: str,
    schema: Schema,
    *,
    properties: Mapping[str, str] | None = None,
) -> Table:
    """Create ``namespace.table`` (and its namespace); the schema must have identifier fields."""
    if not schema.identifier_field_ids:
        raise IcebergChangelogError(
            f"{identifier}: the schema has no identifier fields, so changed rows cannot be "
            "matched by key. Fix: build it with iceberg_schema(columns, identifier_fields)"
        )
    namespace, _, _ = identifier.rpartition(".")
    if not namespace:
        raise ValueError(f"table identifier must be 'namespace.table', got {identifier!r}")
    catalog.create_namespace_if_not_exists(namespace)
    return catalog.create_table(identifier, schema, properties=dict(properties or {}))


def to_arrow(table: Table, rows: Iterable[Mapping[str, Any]]) -> pa.Table:
    """Dict rows -> an Arrow table with the Iceberg table's schema (for append/upsert/...)."""
    schema = table.schema().as_arrow()
    return pa.Table.from_pylist([dict(r) for r in rows], schema=schema)


def identifier_columns(table: Table, key: Sequence[str] | None = None) -> tuple[str, ...]:
    """The key columns: ``key`` when given, else the schema's identifier fields."""
    if key:
        return tuple(key)
    schema = table.schema()
    names = tuple(schema.find_column_name(i) or "" for i in schema.identifier_field_ids)
    if not names:
        raise IcebergChangelogError(
            f"table {table_name(table)} has no identifier fields, so changed rows cannot be "
            "matched by key. Fix: with table.update_schema() as update: "
            "update.set_identifier_fields('id'), or pass key=('id',)"
        )
    return names


def read_snapshot(table: Table, snapshot_id: int | None = None) -> pa.Table:
    """The table's rows as of ``snapshot_id`` (time travel), or of the current snapshot."""
    if snapshot_id is not None and table.metadata.snapshot_by_id(snapshot_id) is None:
        raise expired_error(table, snapshot_id, None)
    return table.scan(snapshot_id=snapshot_id).to_arrow()


def rows_by_key(rows: pa.Table | Iterable[Mapping[str, Any]], key: Sequence[str]) -> dict[Key, Row]:
    """``{key tuple: row dict}`` of an Arrow table or of dict rows."""
    items = rows.to_pylist() if isinstance(rows, pa.Table) else [dict(r) for r in rows]
    return {tuple(r[c] for c in key): r for r in items}
