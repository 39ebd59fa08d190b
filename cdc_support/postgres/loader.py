"""The generated e-commerce tables in PostgreSQL (psycopg 3): schema, COPY, reading, workload.

The rows and the operation mix are :mod:`cdc_support.workload`'s; this module writes them.
Tables are created unqualified: the connection's database/search_path gives isolation.
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import dict_row

from cdc_support.workload import TABLE_COLUMNS, EcommerceGenerator, Operation, run_mix

__all__ = [
    "DDL",
    "DDL_STATEMENTS",
    "PgTableWriter",
    "bulk_load",
    "create_schema",
    "fetch_table",
    "mixed_workload",
]

DDL_STATEMENTS: tuple[str, ...] = (
    """CREATE TABLE IF NOT EXISTS customers (
    id bigint PRIMARY KEY,
    email text NOT NULL UNIQUE,
    full_name text NOT NULL,
    country char(2) NOT NULL,
    created_at timestamptz NOT NULL
)""",
    """CREATE TABLE IF NOT EXISTS products (
    id bigint PRIMARY KEY,
    sku text NOT NULL,
    name text NOT NULL,
    price numeric(10,2) NOT NULL,
    stock int NOT NULL
)""",
    """CREATE TABLE IF NOT EXISTS orders (
    id bigint PRIMARY KEY,
    customer_id bigint NOT NULL,
    status text NOT NULL,
    total numeric(12,2) NOT NULL,
    updated_at timestamptz NOT NULL
)""",
    """CREATE TABLE IF NOT EXISTS order_items (
    order_id bigint NOT NULL,
    line_no int NOT NULL,
    product_id bigint NOT NULL,
    quantity int NOT NULL,
    unit_price numeric(10,2) NOT NULL,
    PRIMARY KEY (order_id, line_no)
)""",
)
DDL: str = ";\n\n".join(DDL_STATEMENTS) + ";\n"


def create_schema(conn: psycopg.Connection[Any], *, replica_identity_full: bool = False) -> None:
    """Create the four tables (if missing) and commit.

    With ``replica_identity_full`` the tables log full old rows, so update/delete events carry
    a complete ``before`` image (otherwise deletes carry only the key columns).
    """
    with conn.cursor() as cur:
        for statement in DDL_STATEMENTS:
            cur.execute(statement)
        if replica_identity_full:
            for table in TABLE_COLUMNS:
                cur.execute(
                    sql.SQL("ALTER TABLE {} REPLICA IDENTITY FULL").format(sql.Identifier(table))
                )
    conn.commit()


def bulk_load(
    conn: psycopg.Connection[Any],
    table: str,
    rows: Iterable[Mapping[str, Any]],
    *,
    commit: bool = True,
) -> int:
    """COPY rows into ``table`` (columns from the first row); returns how many were written."""
    iterator = iter(rows)
    first = next(iterator, None)
    if first is None:
        return 0
    columns = list(first)
    statement = sql.SQL("COPY {} ({}) FROM STDIN").format(
        sql.Identifier(table), sql.SQL(", ").join(map(sql.Identifier, columns))
    )
    count = 0
    with conn.cursor() as cur, cur.copy(statement) as copy:
        for row in itertools.chain([first], iterator):
            copy.write_row([row[c] for c in columns])
            count += 1
    if commit:
        conn.commit()
    return count


def fetch_table(
    conn: psycopg.Connection[Any], table: str, key_cols: Sequence[str]
) -> dict[tuple[Any, ...], dict[str, Any]]:
    """Read the whole table into ``{key tuple: row dict}`` (key from ``key_cols``)."""
    query = sql.SQL("SELECT * FROM {}").format(sql.Identifier(table))
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(query)
        return {tuple(row[c] for c in key_cols): row for row in cur}


class PgTableWriter:
    """The workload's writes as PostgreSQL statements (a
    :class:`~cdc_support.workload.TableWriter`): ``RETURNING *`` gives each row as written, an
    update locks its row first."""

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self.conn = conn

    def keys(self, table: str) -> list[int]:
        """The ids in ``table`` in key order (committing before and after, outside autocommit)."""
        if not self.conn.autocommit:
            self.conn.commit()
        query = sql.SQL("SELECT id FROM {} ORDER BY id").format(sql.Identifier(table))
        keys = [row[0] for row in self.conn.execute(query).fetchall()]
        if not self.conn.autocommit:
            self.conn.commit()
        return keys

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """One real transaction whether or not the connection is in autocommit mode."""
        if self.conn.autocommit:
            with self.conn.transaction():
                yield
            return
        try:
            yield
        except BaseException:
            self.conn.rollback()
            raise
        self.conn.commit()

    def _returning(self, query: sql.Composable, args: Sequence[Any]) -> dict[str, Any] | None:
        with self.conn.cursor(row_factory=dict_row) as cur:
            cur.execute(query, args)
            row = cur.fetchone()
        return dict(row) if row is not None else None

    def insert(self, table: str, row: dict[str, Any]) -> dict[str, Any] | None:
        """INSERT ... RETURNING *."""
        cols = list(row)
        query = sql.SQL("INSERT INTO {} ({}) VALUES ({}) RETURNING *").format(
            sql.Identifier(table),
            sql.SQL(", ").join(map(sql.Identifier, cols)),
            sql.SQL(", ").join(sql.Placeholder() * len(cols)),
        )
        return self._returning(query, [row[c] for c in cols])

    def current(self, table: str, key: int) -> dict[str, Any]:
        """SELECT ... FOR UPDATE: the row, locked until the transaction ends."""
        query = sql.SQL("SELECT * FROM {} WHERE id = %s FOR UPDATE").format(sql.Identifier(table))
        return self._returning(query, [key]) or {}

    def update(
        self, table: str, key: int, current: dict[str, Any], changes: dict[str, Any]
    ) -> dict[str, Any] | None:
        """UPDATE ... RETURNING *."""
        query = sql.SQL("UPDATE {} SET {} WHERE id = %s RETURNING *").format(
            sql.Identifier(table),
            sql.SQL(", ").join(sql.SQL("{} = %s").format(sql.Identifier(c)) for c in changes),
        )
        return self._returning(query, [*changes.values(), key])

    def delete(self, table: str, key: int) -> dict[str, Any] | None:
        """DELETE ... RETURNING *."""
        query = sql.SQL("DELETE FROM {} WHERE id = %s RETURNING *").format(sql.Identifier(table))
        return self._returning(query, [key])


def mixed_workload(
    conn: psycopg.Connection[Any], gen: EcommerceGenerator, n_ops: int, **options: Any
) -> list[Operation]:
    """Run ``n_ops`` inserts/updates/deletes and return the operation log: :func:`run_mix`
    (``options``: its ``table``, ``mix``, ``commit_each``) through :class:`PgTableWriter`.
    Any open transaction on ``conn`` is committed first; ``row`` of an operation is what
    PostgreSQL returned."""
    return run_mix(PgTableWriter(conn), gen, n_ops, **options)
