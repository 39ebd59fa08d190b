"""A generated table in a MySQL/MariaDB database, as a
:class:`~cdc_support.source_table.SourceTable`."""

from __future__ import annotations

from typing import Any

import pymysql

from cdc_support.mysql import loader
from cdc_support.source_table import Rows, WriteLog
from cdc_support.workload import KEY_COLUMNS, EcommerceGenerator, Operation

__all__ = ["MySqlSourceTable"]


class MySqlSourceTable(WriteLog):
    """One generated table (``customers`` by default) over an autocommit PyMySQL connection
    (``conn``, for what a scenario does beyond the protocol).

    The binlog records commit times in whole seconds, so ``precise_commit_times`` is False:
    lag is measured from the commit time the workload recorded when COMMIT returned.
    """

    precise_commit_times = False

    def __init__(
        self, conn: pymysql.Connection, name: str = "customers", *, label: str = "MariaDB"
    ) -> None:
        super().__init__()
        self.conn = conn
        self.name = name
        self.key = KEY_COLUMNS[name]
        self.label = label

    def create(self) -> None:
        """Create the table (if missing)."""
        loader.create_table(self.conn, self.name)

    def seed(self, count: int, seed: int) -> list[dict[str, Any]]:
        """Create the table and INSERT ``count`` generated rows (one transaction); the rows."""
        self.create()
        rows = getattr(EcommerceGenerator(seed), self.name)(count)
        loader.insert_rows(self.conn, self.name, rows)
        self.seeded = count
        return rows

    def run_workload(self, gen: EcommerceGenerator, count: int) -> list[Operation]:
        """``count`` single-row transactions (:func:`cdc_support.mysql.loader.mixed_workload`)."""
        ops = loader.mixed_workload(self.conn, gen, count, table=self.name)
        self.workload.extend(ops)
        return ops

    def execute(self, statement: str, args: tuple[Any, ...] = ()) -> None:
        """One statement (autocommit: its own transaction)."""
        with self.conn.cursor() as cur:
            cur.execute(statement, args)

    def quote(self, identifier: str) -> str:
        """A backquoted identifier."""
        return "`" + identifier.replace("`", "``") + "`"

    def rows(self) -> Rows:
        """The table now, by key (timestamps as aware UTC)."""
        return loader.fetch_table(self.conn, self.name, self.key)

    def add_column(self, column: str) -> None:
        """ALTER TABLE ... ADD COLUMN ``column`` VARCHAR(16) NULL (an implicit commit)."""
        self.execute(
            f"ALTER TABLE {self.quote(self.name)} ADD COLUMN {self.quote(column)} VARCHAR(16) NULL"
        )
