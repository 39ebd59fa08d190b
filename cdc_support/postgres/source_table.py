"""A generated table in a PostgreSQL database, as a
:class:`~cdc_support.source_table.SourceTable`."""

from __future__ import annotations

from typing import Any

import psycopg

from cdc_support.postgres.loader import bulk_load, create_schema, fetch_table, mixed_workload
from cdc_support.source_table import Rows, WriteLog
from cdc_support.workload import KEY_COLUMNS, EcommerceGenerator, Operation

__all__ = ["PostgresTable"]


class PostgresTable(WriteLog):
    """One generated table (``customers`` by default) over an autocommit connection
    (``conn``, for what a scenario does beyond the protocol)."""

    label = "PostgreSQL"
    precise_commit_times = True

    def __init__(self, conn: psycopg.Connection[Any], name: str = "customers") -> None:
        super().__init__()
        self.conn = conn
        self.name = name
        self.key = KEY_COLUMNS[name]

    def create(self) -> None:
        """Create the e-commerce schema (all four tables, if missing)."""
        create_schema(self.conn)

    def seed(self, count: int, seed: int) -> list[dict[str, Any]]:
        """Create the schema and COPY ``count`` generated rows into the table; the rows."""
        self.create()
        rows = getattr(EcommerceGenerator(seed), self.name)(count)
        bulk_load(self.conn, self.name, rows)
        self.seeded = count
        return rows

    def run_workload(self, gen: EcommerceGenerator, count: int) -> list[Operation]:
        """``count`` single-row transactions (:func:`.loader.mixed_workload`)."""
        ops = mixed_workload(self.conn, gen, count, table=self.name)
        self.workload.extend(ops)
        return ops

    def execute(self, statement: str, args: tuple[Any, ...] = ()) -> None:
        """One statement (autocommit: its own transaction)."""
        self.conn.execute(statement, args)  # type: ignore[arg-type]

    def quote(self, identifier: str) -> str:
        """A double-quoted identifier."""
        return '"' + identifier.replace('"', '""') + '"'

    def rows(self) -> Rows:
        """The table now, by key."""
        return fetch_table(self.conn, self.name, self.key)

    def add_column(self, column: str) -> None:
        """ALTER TABLE ... ADD COLUMN ``column`` text."""
        self.execute(f"ALTER TABLE {self.quote(self.name)} ADD COLUMN {self.quote(column)} text")
