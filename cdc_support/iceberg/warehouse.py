"""A throwaway warehouse: a SQL catalog and a folder of its own, dropped when closed.

A SQLite file in the folder by default; given a catalog database URI (e.g. a PostgreSQL URL,
the pytest plugin's ``--cdc-iceberg-catalog-uri``) a catalog with a name of its own in it, so
that several warehouses share it and keep apart by catalog name. Closing drops the catalog's
tables and namespaces (its rows in a shared database) and disposes of the engine.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path

from pyiceberg.catalog.sql import SqlCatalog

from cdc_support.iceberg.catalog import open_catalog, redact_uri

__all__ = ["IcebergWarehouse", "drop_all", "open_warehouse"]


@dataclass(frozen=True)
class IcebergWarehouse:
    """A SQL catalog and the folder holding its warehouse (and anything else, e.g. checkpoints)."""

    catalog: SqlCatalog
    folder: Path
    uri: str

    def describe(self) -> str:
        """Catalog name, database (password hidden) and warehouse, for a report."""
        return (
            f"SQL catalog {self.catalog.name!r} in {self.catalog.engine.dialect.name} "
            f"({redact_uri(self.uri)}), warehouse {self.folder / 'warehouse'}"
        )

    def close(self) -> None:
        """Drop the catalog's tables and namespaces, then dispose of its engine."""
        try:
            drop_all(self.catalog)
        finally:
            self.catalog.engine.dispose()

    def __repr__(self) -> str:
        return f"SQL catalog {self.catalog.name!r} ({self.catalog.engine.dialect.name})"


def open_warehouse(folder: Path, uri: str | None = None) -> IcebergWarehouse:
    """A catalog with its warehouse in ``folder/warehouse``.

    ``uri`` names a shared catalog database, in which this catalog gets a unique name;
    without it, a SQLite file in the warehouse.
    """
    warehouse = folder / "warehouse"
    name = f"cdc_{uuid.uuid4().hex[:12]}" if uri else "cdc"
    uri = uri or f"sqlite:///{warehouse / 'catalog.db'}"
    return IcebergWarehouse(open_catalog(warehouse, uri=uri, name=name), folder, uri)


def drop_all(catalog: SqlCatalog) -> None:
    """Drop this catalog's tables and namespaces (its rows in a shared catalog database)."""
    for namespace in catalog.list_namespaces():
        for identifier in catalog.list_tables(namespace):
            catalog.drop_table(identifier)
        catalog.drop_namespace(namespace)
