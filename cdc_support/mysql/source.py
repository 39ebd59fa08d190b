"""The generated e-commerce tables on MySQL/MariaDB (PyMySQL): schema, loading, reading, workload.

Same rows as :mod:`cdc_support.workload` (same seeds give the same values), in MySQL types:
``BIGINT`` keys, ``VARCHAR``/``CHAR`` text, ``DECIMAL`` money, ``TIMESTAMP(6)`` times. The
server runs in UTC, so a ``TIMESTAMP`` read back is the UTC wall time; :func:`fetch_table`
returns it as an aware UTC ``datetime`` like PostgreSQL's ``timestamptz``. :class:`MySqlTable`
faces one such table for the scenarios (rows, inserts, statements, workload).
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlsplit

import pymysql
from pymysql.cursors import DictCursor

from cdc_support.workload import (
    KEY_COLUMNS,
    WORKLOAD_TABLES,
    EcommerceGenerator,
    Operation,
    choose_op,
    normalised_mix,
)

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


@dataclass(frozen=True)
class MySqlAddress:
    """Where and as whom to connect; ``connect_kwargs()`` feeds PyMySQL."""

    host: str
    port: int
    user: str
    password: str = ""
    database: str | None = None

    def connect_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``pymysql.connect``."""
        kwargs: dict[str, Any] = {
            "host": self.host,
            "port": self.port,
            "user": self.user,
            "password": self.password,
        }
        if self.database:
            kwargs["database"] = self.database
        return kwargs

    def with_database(self, database: str | None) -> MySqlAddress:
        """The same server and user, another default database."""
        return MySqlAddress(self.host, self.port, self.user, self.password, database)

    def __repr__(self) -> str:
        return f"{self.user}@{self.host}:{self.port}/{self.database or ''}"


def parse_dsn(dsn: str) -> MySqlAddress:
    """``mysql://user[:password]@host[:port][/database]`` -> :class:`MySqlAddress`."""
    expected = "expected mysql://user[:password]@host[:port][/database]"
    shown = _without_password(dsn)
    try:
        parts = urlsplit(dsn)
        port = parts.port  # ValueError for a port that is not a number 0..65535
    except ValueError as exc:
        raise ValueError(f"not a MySQL URI: {shown!r} ({exc}); {expected}") from None
    if parts.scheme not in ("mysql", "mariadb") or not parts.hostname:
        raise ValueError(f"not a MySQL URI: {shown!r}; {expected}")
    return MySqlAddress(
        host=parts.hostname,
        port=port or 3306,
        user=unquote(parts.username or "root"),
        password=unquote(parts.password or ""),
        database=parts.path.lstrip("/") or None,
    )


def _without_password(dsn: str) -> str:
    """The URI with its password (between ``user:`` and ``@``) shown as ``***``."""
    scheme, sep, rest = dsn.partition("://")
    userinfo, at, host = rest.rpartition("@")
    if not sep or not at or ":" not in userinfo:
        return dsn
    return f"{scheme}://{userinfo.split(':', 1)[0]}:***@{host}"


def connect(address: MySqlAddress, *, autocommit: bool = True) -> pymysql.Connection:
    """A PyMySQL connection (autocommit by default: every statement is its own transaction)."""
    return pymysql.connect(**address.connect_kwargs(), autocommit=autocommit, charset="utf8mb4")


def create_table(conn: pymysql.Connection, table: str) -> None:
    """Create one of the generated tables in the connection's database."""
    try:
        statement = DDL[table]
    except KeyError:
        raise ValueError(f"no MySQL DDL for table {table!r}; choose one of {sorted(DDL)}") from None
    with conn.cursor() as cur:
        cur.execute(statement)


def insert_rows(conn: pymysql.Connection, table: str, rows: Sequence[Mapping[str, Any]]) -> int:
    """INSERT rows (columns from the first row) in one transaction; returns the row count."""
    if not rows:
        return 0
    columns = list(rows[0])
    statement = (
        f"INSERT INTO `{table}` ({', '.join(f'`{c}`' for c in columns)}) "
        f"VALUES ({', '.join(['%s'] * len(columns))})"
    )
    with conn.cursor() as cur:
        cur.execute("BEGIN")
        cur.executemany(statement, [[row[c] for c in columns] for row in rows])
        cur.execute("COMMIT")
    return len(rows)


def as_utc(value: Any) -> Any:
    """A naive ``datetime`` read from the UTC server -> aware UTC; anything else unchanged."""
    if isinstance(value, dt.datetime) and value.tzinfo is None:
        return value.replace(tzinfo=dt.UTC)
    return value


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


def binlog_position(conn: pymysql.Connection) -> tuple[str, int]:
    """The server's current binlog file and position (needs REPLICATION CLIENT)."""
    with conn.cursor() as cur:
        cur.execute("SHOW MASTER STATUS")
        row = cur.fetchone()
    if not row:
        raise RuntimeError("the server has no binary log: start it with --log-bin")
    return str(row[0]), int(row[1])


def missing_tables(conn: pymysql.Connection, schema: str, tables: Sequence[str]) -> list[str]:
    """The ``tables`` that do not exist in database ``schema`` (as ``schema.table``)."""
    with conn.cursor() as cur:
        cur.execute(
            "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s",
            (schema,),
        )
        present = {row[0] for row in cur.fetchall()}
    return [f"{schema}.{t}" for t in tables if t not in present]


def primary_key(conn: pymysql.Connection, schema: str, table: str) -> tuple[str, ...]:
    """The primary-key columns of ``schema.table`` in key order."""
    with conn.cursor() as cur:
        cur.execute(
            "SELECT COLUMN_NAME FROM information_schema.KEY_COLUMN_USAGE "
            "WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s AND CONSTRAINT_NAME = 'PRIMARY' "
            "ORDER BY ORDINAL_POSITION",
            (schema, table),
        )
        return tuple(row[0] for row in cur.fetchall())


def mixed_workload(
    conn: pymysql.Connection,
    gen: EcommerceGenerator,
    n_ops: int,
    *,
    table: str = "customers",
    mix: Sequence[float] = (0.5, 0.35, 0.15),
) -> list[Operation]:
    """Run ``n_ops`` single-statement transactions (insert/update/delete) on ``table``.

    The MySQL twin of :func:`cdc_support.workload.mixed_workload`: same choice of operations
    for a seed, each committed on its own, ``committed_at`` taken right after the commit
    returned. ``row`` is the row after an insert/update and the removed row for a delete.
    """
    if table not in WORKLOAD_TABLES:
        raise ValueError(f"mixed_workload supports tables {WORKLOAD_TABLES}, not {table!r}")
    p_insert, p_update, _ = normalised_mix(mix)
    with conn.cursor() as cur:
        cur.execute(f"SELECT id FROM `{table}` ORDER BY id")
        keys: list[int] = [row[0] for row in cur.fetchall()]
        customer_ids: list[int] = []
        if table == "orders":
            cur.execute("SELECT id FROM customers ORDER BY id")
            customer_ids = [row[0] for row in cur.fetchall()]
    gen.reserve_keys_above(table, max(keys) if keys else None)
    log: list[Operation] = []
    with conn.cursor() as cur:
        for _ in range(n_ops):
            kind = choose_op(gen, p_insert, p_update, has_rows=bool(keys))
            if kind == "insert":
                row: dict[str, Any] | None = gen.new_row(table, customer_ids)
                assert row is not None
                columns = list(row)
                cur.execute(
                    f"INSERT INTO `{table}` ({', '.join(f'`{c}`' for c in columns)}) "
                    f"VALUES ({', '.join(['%s'] * len(columns))})",
                    [row[c] for c in columns],
                )
                keys.append(row["id"])
                key = row["id"]
            else:
                index = gen.random.randrange(len(keys))
                key = keys[index]
                current = fetch_row(conn, table, key) or {}
                if kind == "update":
                    changes = gen.changes(table, current)
                    cur.execute(
                        f"UPDATE `{table}` SET {', '.join(f'`{c}` = %s' for c in changes)} "
                        "WHERE id = %s",
                        [*changes.values(), key],
                    )
                    row = {**current, **{c: as_utc(v) for c, v in changes.items()}}
                else:
                    cur.execute(f"DELETE FROM `{table}` WHERE id = %s", (key,))
                    keys[index] = keys[-1]
                    keys.pop()
                    row = current
            log.append(
                Operation(op=kind, table=table, key=(key,), row=row, committed_at=time.time())
            )
    return log


def rows_as_utc(rows: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Rows with naive datetimes marked as UTC (for generated rows shown next to read ones)."""
    return [_utc_row(row) for row in rows]


@dataclass
class MySqlTable:
    """One generated table in a MySQL/MariaDB database, written through an admin connection."""

    conn: pymysql.Connection = field(repr=False)
    name: str
    key: tuple[str, ...]
    schema: str

    @classmethod
    def create(cls, conn: pymysql.Connection, name: str, schema: str) -> MySqlTable:
        """Create the generated table ``name`` (customers, products, orders) and face it."""
        create_table(conn, name)
        return cls(conn, name, KEY_COLUMNS[name], schema)

    def rows(self) -> dict[tuple[Any, ...], dict[str, Any]]:
        """The table's current contents by key (timestamps as aware UTC)."""
        return fetch_table(self.conn, self.name, self.key)

    def insert(self, rows: Sequence[Mapping[str, Any]], *, each: bool = True) -> None:
        """Insert rows: one transaction per row, or (``each=False``) all in one."""
        if not each:
            insert_rows(self.conn, self.name, rows)
            return
        for row in rows:
            insert_rows(self.conn, self.name, [row])

    def execute(self, statement: str, args: tuple[Any, ...] = ()) -> None:
        """Run one statement (autocommit)."""
        with self.conn.cursor() as cur:
            cur.execute(statement, args)

    def add_column(self, column: str, sql_type: str = "VARCHAR(16) NULL") -> None:
        """ALTER TABLE ... ADD COLUMN (an implicit commit in MySQL/MariaDB)."""
        self.execute(f"ALTER TABLE `{self.name}` ADD COLUMN `{column}` {sql_type}")

    def workload(self, gen: EcommerceGenerator, count: int) -> list[Operation]:
        """Run ``count`` single-statement inserts/updates/deletes (:func:`mixed_workload`)."""
        return mixed_workload(self.conn, gen, count, table=self.name)

    def __repr__(self) -> str:
        return f"MySqlTable({self.schema}.{self.name})"
