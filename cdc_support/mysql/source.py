"""MySQL/MariaDB sources (PyMySQL): addresses, connections and the catalog CDC asks about.

The generated tables and the workload written to them are :mod:`cdc_support.mysql.loader`'s;
:class:`~cdc_support.mysql.source_table.MySqlSourceTable` faces one such table for the
scenarios.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

import pymysql


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


class MySqlConnection(pymysql.connections.Connection):
    """A PyMySQL connection whose repr names its database: the report shows step arguments
    by their repr (PyMySQL's is ``<pymysql.connections.Connection object at 0x…>``)."""

    def __repr__(self) -> str:
        return f"MySqlConnection({self.db or '-'} on {self.host}:{self.port})"


def connect(address: MySqlAddress, *, autocommit: bool = True) -> MySqlConnection:
    """A PyMySQL connection (autocommit by default: every statement is its own transaction)."""
    return MySqlConnection(**address.connect_kwargs(), autocommit=autocommit, charset="utf8mb4")


def as_utc(value: Any) -> Any:
    """A naive ``datetime`` read from the UTC server -> aware UTC; anything else unchanged."""
    if isinstance(value, dt.datetime) and value.tzinfo is None:
        return value.replace(tzinfo=dt.UTC)
    return value


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
