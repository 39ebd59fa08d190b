"""The generated e-commerce tables on MySQL/MariaDB (PyMySQL): schema, loading, reading, workload.

Same rows as :mod:`cdc_support.workload` (same seeds give the same values), in MySQL types:
``BIGINT`` keys, ``VARCHAR``/``CHAR`` text, ``DECIMAL`` money, ``TIMESTAMP(6)`` times. The
server runs in UTC, so a ``TIMESTAMP`` read back is the UTC wall time; :func:`fetch_table`
returns it as an aware UTC ``datetime`` like PostgreSQL's ``timestamptz``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from typing import Any

import pymysql
from pymysql.cursors import DictCursor

from cdc_support.mysql.source import as_utc
from cdc_support.workload import DEFAULT_MIX, EcommerceGenerator, Operation, run_mix

__all__ = [
    "DDL",
    "MySqlTableWriter",
    "create_table",
    "fetch_row",
    "fetch_table",
    "insert_rows",
    "mixed_workload",
]

DDL: dict[str, str] = {
    "customers": """CREATE TABLE IF NOT EXISTS customers (
    id BIGINT PRIMARY KEY,
    email VARCHAR(255) NOT NULL UNIQUE,
    full_name VARCHAR(255) NOT NULL,
    country CHAR(2) NOT NULL,
    created_at TIMESTAMP(6) NOT NULL
) ENGINE=InnoDB""",
    "products": """CREATE TABLE IF NOT EXISTS products (
    id BIGINT PRIMARY KEY,
    sku VARCHAR(64) NOT NULL,
    name VARCHAR(255) NOT NULL,
    price DECIMAL(10,2) NOT NULL,
    stock INT NOT NULL
) ENGINE=InnoDB""",
    "orders": """CREATE TABLE IF NOT EXISTS orders (
    id BIGINT PRIMARY KEY,
    customer_id BIGINT NOT NULL,
    status VARCHAR(16) NOT NULL,
    total DECIMAL(12,2) NOT NULL,
    updated_at TIMESTAMP(6) NOT NULL
) ENGINE=InnoDB""",
}


def create_table(conn: pymysql.Connection, table: str) -> None:
    """Create one of the generated tables in the connection's database."""
    try:
        statement = DDL[table]
    except KeyError:
        raise ValueError(f"no MySQL DDL for table {table!r}; choose one of {sorted(DDL)}") from None
    with conn.cursor() as cur:
        cur.execute(statement)


def _insert_statement(table: str, columns: Sequence[str]) -> str:
    return (
        f"INSERT INTO `{table}` ({', '.join(f'`{c}`' for c in columns)}) "
        f"VALUES ({', '.join(['%s'] * len(columns))})"
    )


def insert_rows(conn: pymysql.Connection, table: str, rows: Sequence[Mapping[str, Any]]) -> int:
    """INSERT rows (columns from the first row) in one transaction; returns the row count."""
    if not rows:
        return 0
    columns = list(rows[0])
    with conn.cursor() as cur:
        cur.execute("BEGIN")
        cur.executemany(
            _insert_statement(table, columns), [[row[c] for c in columns] for row in rows]
        )
        cur.execute("COMMIT")
    return len(rows)


def _utc_row(row: Mapping[str, Any]) -> dict[str, Any]:
    return {column: as_utc(value) for column, value in row.items()}


def fetch_table(
    conn: pymysql.Connection, table: str, key_cols: Sequence[str]
) -> dict[tuple[Any, ...], dict[str, Any]]:
    """Read the whole table into ``{key tuple: row dict}`` (timestamps as aware UTC)."""
    with conn.cursor(DictCursor) as cur:
        cur.execute(f"SELECT * FROM `{table}`")
        return {tuple(row[c] for c in key_cols): _utc_row(row) for row in cur.fetchall()}


def fetch_row(conn: pymysql.Connection, table: str, key: int) -> dict[str, Any] | None:
    """One row by ``id`` (aware UTC timestamps), or None."""
    with conn.cursor(DictCursor) as cur:
        cur.execute(f"SELECT * FROM `{table}` WHERE id = %s", (key,))
        row = cur.fetchone()
    return _utc_row(row) if row else None


class MySqlTableWriter:
    """The workload's writes as MySQL statements (a :class:`~cdc_support.workload.TableWriter`)
    on an autocommit connection: each statement is its own transaction, and the rows logged
    are the generated ones (an update's: the row read before it, with the changes)."""

    def __init__(self, conn: pymysql.Connection) -> None:
        self.conn = conn

    def _execute(self, statement: str, args: Sequence[Any]) -> None:
        with self.conn.cursor() as cur:
            cur.execute(statement, args)

    def keys(self, table: str) -> list[int]:
        """The ids in ``table`` in key order."""
        with self.conn.cursor() as cur:
            cur.execute(f"SELECT id FROM `{table}` ORDER BY id")
            return [row[0] for row in cur.fetchall()]

    def transaction(self) -> AbstractContextManager[Any]:
        """Nothing to add: autocommit makes each statement its own transaction."""
        return contextlib.nullcontext()

    def insert(self, table: str, row: dict[str, Any]) -> dict[str, Any] | None:
        """INSERT; the generated row."""
        columns = list(row)
        self._execute(_insert_statement(table, columns), [row[c] for c in columns])
        return row

    def current(self, table: str, key: int) -> dict[str, Any]:
        """The row of ``key`` (aware UTC timestamps), empty if none."""
        return fetch_row(self.conn, table, key) or {}

    def update(
        self, table: str, key: int, current: dict[str, Any], changes: dict[str, Any]
    ) -> dict[str, Any] | None:
        """UPDATE; ``current`` with the changes."""
        self._execute(
            f"UPDATE `{table}` SET {', '.join(f'`{c}` = %s' for c in changes)} WHERE id = %s",
            [*changes.values(), key],
        )
        return {**current, **{c: as_utc(v) for c, v in changes.items()}}

    def delete(self, table: str, key: int) -> dict[str, Any] | None:
        """DELETE; the row read just before."""
        current = self.current(table, key)
        self._execute(f"DELETE FROM `{table}` WHERE id = %s", (key,))
        return current


def mixed_workload(
    conn: pymysql.Connection,
    gen: EcommerceGenerator,
    n_ops: int,
    *,
    table: str = "customers",
    mix: Sequence[float] = DEFAULT_MIX,
) -> list[Operation]:
    """Run ``n_ops`` single-statement transactions (insert/update/delete) on ``table``.

    :func:`cdc_support.workload.run_mix` through :class:`MySqlTableWriter`: the same choice of
    operations for a seed as on PostgreSQL, each committed on its own, ``committed_at`` taken
    right after the commit returned.
    """
    return run_mix(MySqlTableWriter(conn), gen, n_ops, table=table, mix=mix)
