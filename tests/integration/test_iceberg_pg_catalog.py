"""The Iceberg SQL catalog on the stack's real PostgreSQL (the option next to the SQLite file)."""

from __future__ import annotations

import uuid
from pathlib import Path

from cdc_support.iceberg import (
    changes_between,
    create_table,
    generated_schema,
    open_catalog,
    to_arrow,
)
from cdc_support.workload import EcommerceGenerator


def _catalog_uri(cdc_stack, dbname: str) -> str:
    ep = cdc_stack.endpoints
    return (
        f"postgresql+psycopg://{ep.postgres_user}:{ep.postgres_password}"
        f"@{ep.postgres_host}:{ep.postgres_port}/{dbname}"
    )


def test_a_postgresql_catalog_keeps_catalogs_apart_by_name(
    cdc_stack, pg_database, tmp_path: Path
) -> None:
    uri = _catalog_uri(cdc_stack, pg_database.name)
    names = [f"unit_{uuid.uuid4().hex[:10]}" for _ in range(2)]
    catalogs = [open_catalog(tmp_path / n, uri=uri, name=n) for n in names]
    try:
        tables = []
        for count, cat in enumerate(catalogs, start=1):
            assert cat.engine.dialect.name == "postgresql"
            table = create_table(cat, "shop.products", generated_schema("products"))
            table.append(to_arrow(table, EcommerceGenerator(count).products(count)))
            tables.append(table)
        for count, (cat, table) in enumerate(zip(catalogs, tables, strict=True), start=1):
            loaded = cat.load_table("shop.products")
            assert loaded.metadata.table_uuid == table.metadata.table_uuid
            assert changes_between(loaded, None).counts() == {"c": count, "u": 0, "d": 0}
    finally:
        for cat in catalogs:
            for namespace in cat.list_namespaces():  # this catalog's rows only
                for identifier in cat.list_tables(namespace):
                    cat.drop_table(identifier)
                cat.drop_namespace(namespace)
            assert cat.list_namespaces() == []
            cat.engine.dispose()
