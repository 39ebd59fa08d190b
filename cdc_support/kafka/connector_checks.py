"""Checks before a Debezium connector is registered, each failing with one line naming the fix.

Connect itself registers a connector whose tables do not exist (it then captures nothing, and
its status shows an empty table list) and answers some bad configs with HTTP 500 and a Java
stack trace. :func:`check_connector` says what is wrong first:

1. Connect's config validation (the plugin checks every key and Debezium tries the database
   connection): the failing keys and their messages;
2. the config's ``table.include.list`` against the source database, read with the
   connector's own credentials: the tables that do not exist.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import psycopg

from cdc_support.kafka.connect import ConnectClient, ConnectorConfigError
from cdc_support.kafka.connector_config import (
    MARIADB_CONNECTOR,
    MYSQL_CONNECTOR,
    POSTGRES_CONNECTOR,
)
from cdc_support.mysql import source as mysql_source
from cdc_support.postgres.source import missing_tables as pg_missing_tables

__all__ = ["check_connector", "missing_tables"]


def check_connector(client: ConnectClient, name: str, config: dict[str, Any]) -> None:
    """Raise :class:`ConnectorConfigError` if Connect refuses ``config`` or a table is missing."""
    errors = client.validate(name, config)
    if errors:
        problems = "; ".join(f"{key}: {' / '.join(msgs)}" for key, msgs in sorted(errors.items()))
        raise ConnectorConfigError(
            _one_line(f"connector {name}: Connect refuses its config: {problems}")
            + " (fix these keys in the connector's config)"
        )
    missing = missing_tables(config)
    if missing:
        dbname = config.get("database.dbname")
        where = f"database {dbname}" if dbname else "the source database"
        raise ConnectorConfigError(
            f"connector {name}: no such table {', '.join(missing)} in {where}: "
            "create it before the connector starts, or fix the table list"
        )


def missing_tables(config: dict[str, Any]) -> list[str]:
    """The tables of ``table.include.list`` (literal ``schema.table`` names) that do not exist.

    Only the PostgreSQL, MariaDB and MySQL connectors are checked; others return ``[]``.
    """
    tables = [t.strip() for t in str(config.get("table.include.list", "")).split(",")]
    tables = [t for t in tables if t]
    connector = config.get("connector.class")
    if not tables:
        return []
    if connector == POSTGRES_CONNECTOR:
        conninfo = psycopg.conninfo.make_conninfo(
            host=config["database.hostname"],
            port=config.get("database.port", "5432"),
            user=config["database.user"],
            password=config.get("database.password", ""),
            dbname=config["database.dbname"],
            connect_timeout=10,
        )
        with psycopg.connect(conninfo, autocommit=True) as conn:
            return pg_missing_tables(conn, tables)
    if connector in (MARIADB_CONNECTOR, MYSQL_CONNECTOR):
        by_schema: dict[str, list[str]] = defaultdict(list)
        for table in tables:
            schema, _, name = table.rpartition(".")
            by_schema[schema].append(name)
        address = mysql_source.MySqlAddress(
            config["database.hostname"],
            int(config.get("database.port", 3306)),
            config["database.user"],
            config.get("database.password", ""),
        )
        conn = mysql_source.connect(address)
        try:
            return [
                missing
                for schema, names in by_schema.items()
                for missing in mysql_source.missing_tables(conn, schema, names)
            ]
        finally:
            conn.close()
    return []


def _one_line(text: str) -> str:
    return " ".join(text.split())
