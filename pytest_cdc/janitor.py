"""Per-scenario PostgreSQL and MySQL/MariaDB databases (and PostgreSQL replication slots) that
are always cleaned up."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import psycopg
import pytest
from psycopg import sql

from cdc_support.mysql.source import MySqlAddress, connect, parse_dsn
from cdc_support.naming import MAX_IDENTIFIER, scenario_name
from cdc_support.postgres.source import drop_slot
from pytest_cdc.stack import Stack

__all__ = [
    "MAX_IDENTIFIER",
    "MySqlDatabase",
    "PgDatabase",
    "drop_database_slots",
    "mysql_scenario_database",
    "scenario_database",
    "scenario_name",
]


@dataclass(frozen=True)
class PgDatabase:
    """A database created for one scenario: the admin's DSN (it owns what it creates there)
    and ``cdc_dsn``, the replication role's (what CDC clients connect as)."""

    name: str
    dsn: str
    cdc_dsn: str = ""

    @property
    def replication_dsn(self) -> str:
        """The replication role's DSN, or the admin's when the stack has no such role."""
        return self.cdc_dsn or self.dsn

    def __repr__(self) -> str:
        return f"PgDatabase({self.name})"


def _with_dbname(dsn: str, dbname: str) -> str:
    return psycopg.conninfo.make_conninfo(dsn, dbname=dbname)


@contextmanager
def scenario_database(admin_dsn: str, name: str, *, cdc_dsn: str = "") -> Iterator[PgDatabase]:
    """Create database `name`; on exit drop its replication slots and the database itself.

    ``cdc_dsn`` is the replication role's DSN on the server (any database).
    """
    with psycopg.connect(admin_dsn, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield PgDatabase(
            name=name,
            dsn=_with_dbname(admin_dsn, name),
            cdc_dsn=_with_dbname(cdc_dsn, name) if cdc_dsn else "",
        )
    finally:
        with psycopg.connect(admin_dsn, autocommit=True) as admin:
            drop_database_slots(admin, name)
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


def drop_database_slots(admin: psycopg.Connection, database: str, timeout: float = 15.0) -> None:
    """Drop every replication slot of `database`, ending the walsenders still holding them."""
    rows = admin.execute(
        "SELECT slot_name FROM pg_replication_slots WHERE database = %s", (database,)
    ).fetchall()
    for (slot,) in rows:
        drop_slot(admin, slot, timeout=timeout)


@dataclass(frozen=True)
class MySqlDatabase:
    """A database created for one test, with the admin and the CDC account pointed at it."""

    name: str
    flavor: str
    admin: MySqlAddress
    cdc: MySqlAddress

    def __repr__(self) -> str:
        return f"MySqlDatabase({self.name} on {self.flavor})"


@contextmanager
def mysql_scenario_database(stack: Stack, name: str) -> Iterator[MySqlDatabase]:
    """Create database `name` on the stack's MySQL/MariaDB server; drop it on exit."""
    ep = stack.endpoints
    if not ep.mysql_dsn:
        raise pytest.fail.Exception(  # a test that needs MySQL fails in one line
            f"the {stack.info.backend} stack has no MySQL/MariaDB server: with "
            "--cdc-backend=external give --cdc-mysql-dsn=mysql://USER:PASSWORD@HOST:PORT/ (or "
            "mysql_dsn in the --cdc-endpoints file), or start the stack with `cdc-spec up` "
            "without --components; or use --cdc-backend=native",
            pytrace=False,
        )
    admin = parse_dsn(ep.mysql_dsn)
    with connect(admin) as conn, conn.cursor() as cur:
        cur.execute(f"CREATE DATABASE `{name}`")
    try:
        yield MySqlDatabase(
            name=name,
            flavor=ep.mysql_flavor,
            admin=admin.with_database(name),
            cdc=parse_dsn(ep.mysql_cdc_dsn),  # this host's address; Debezium uses ep.mysql_host
        )
    finally:
        with connect(admin) as conn, conn.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
