"""The ``accounts`` table in PostgreSQL or MariaDB, written one row per transaction."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from cdc_support.schema_changes.cases import KEY, SEEDED, TABLE, Case, Write, create_table
from cdc_support.schema_changes.cases import ordinary_row as _row
from cdc_support.source_table import Rows

__all__ = ["AccountsTable"]

Execute = Callable[[str, tuple[Any, ...]], None]


class AccountsTable:
    """``accounts`` over an autocommit connection: ``execute(statement, args)`` runs one
    statement (``%s`` placeholders), ``fetch()`` reads the table by key."""

    name = TABLE
    key = KEY

    def __init__(self, label: str, execute: Execute, fetch: Callable[[], Rows]) -> None:
        self.label = label
        self._execute = execute
        self._fetch = fetch
        self.quote = (lambda n: f'"{n}"') if label == "PostgreSQL" else (lambda n: f"`{n}`")
        self.change_events = 0
        self.statements: list[str] = []

    @classmethod
    def postgres(cls, conn: Any) -> AccountsTable:
        """The table in the PostgreSQL database of ``conn`` (a psycopg connection)."""
        from cdc_support.postgres.loader import fetch_table

        return cls(
            "PostgreSQL",
            lambda statement, args: conn.execute(statement, args),
            lambda: fetch_table(conn, TABLE, KEY),
        )

    @classmethod
    def mariadb(cls, conn: Any) -> AccountsTable:
        """The table in the MariaDB database of ``conn`` (a PyMySQL connection)."""
        from cdc_support.mysql.loader import fetch_table

        def execute(statement: str, args: tuple[Any, ...]) -> None:
            with conn.cursor() as cur:
                cur.execute(statement, args)

        return cls("MariaDB", execute, lambda: fetch_table(conn, TABLE, KEY))

    def __repr__(self) -> str:
        return f"{self.label} {self.name} table"

    def create(self, rows: int = SEEDED) -> None:
        """Create the table with ``rows`` ordinary rows (before capture starts)."""
        self._execute(create_table(self.label), ())
        for key in range(1, rows + 1):
            self.write(Write("insert", key, _row(key)))

    def write(self, write: Write) -> None:
        """One insert, update or delete in its own transaction."""
        table, where = self.quote(self.name), f"{self.quote('id')} = %s"
        if write.op == "insert":
            names = ", ".join(map(self.quote, write.values))
            marks = ", ".join(["%s"] * len(write.values))
            statement = f"INSERT INTO {table} ({names}) VALUES ({marks})"
            args: tuple[Any, ...] = tuple(write.values.values())
        elif write.op == "update":
            sets = ", ".join(f"{self.quote(c)} = %s" for c in write.values)
            statement = f"UPDATE {table} SET {sets} WHERE {where}"
            args = (*write.values.values(), write.key)
        elif write.op == "delete":
            statement, args = f"DELETE FROM {table} WHERE {where}", (write.key,)
        else:
            raise ValueError(f"unknown write {write.op!r}: insert, update or delete")
        self._execute(statement, args)
        self.change_events += 1

    def change(self, case: Case) -> str:
        """Apply ``case``'s ALTER TABLE; the statement."""
        statement = case.ddl[self.label]
        self._execute(statement, ())
        self.statements.append(statement)
        return statement

    def rows(self) -> Rows:
        """The table now, by key."""
        return self._fetch()
