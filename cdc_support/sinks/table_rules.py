"""Rules a table keeps by itself, which a sink worker cannot see in the records it applies.

A table another team owns may refuse rows the topic carries: a Delta table with a CHECK
constraint, an Iceberg table with a required column. A worker finds out only when a commit
fails; :func:`refuse_nulls` sets such a rule, to show what the worker does then.
"""

from __future__ import annotations

from cdc_support.sinks.config import SinkTarget

__all__ = ["refuse_nulls"]


def refuse_nulls(target: SinkTarget, column: str) -> str:
    """Make the (existing) table refuse rows whose ``column`` is null; what was done."""
    if target.format == "delta":
        from deltalake import DeltaTable

        assert target.table_uri is not None
        table = DeltaTable(target.table_uri, storage_options=dict(target.storage_options) or None)
        name = f"{column}_given"
        table.alter.add_constraint({name: f"{column} IS NOT NULL"})
        return f"Delta CHECK constraint {name}: {column} IS NOT NULL"
    from cdc_support.iceberg.catalog import open_catalog

    assert target.warehouse is not None and target.table is not None
    catalog = open_catalog(target.warehouse, uri=target.catalog_uri, name=target.catalog_name)
    try:
        table = catalog.load_table(target.table)
        with table.update_schema(allow_incompatible_changes=True) as update:
            update.update_column(column, required=True)
    finally:
        catalog.engine.dispose()
    return f"Iceberg column {column} made required"
