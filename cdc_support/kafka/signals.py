"""Debezium's source signal channel: a table the connector watches for commands.

A row inserted into the signal table (``id``, ``type``, ``data``) reaches the connector
through the change stream like any other change, so the command takes effect at that point
of the stream. ``execute-snapshot`` with ``"type": "incremental"`` starts an *incremental
snapshot*: the connector reads the named tables in primary-key chunks while it keeps
streaming, and drops a chunk's read of a row a streamed change touched while the chunk was
open (the stream is newer). To mark those windows, the connector itself inserts open/close
rows into the signal table — so its role needs INSERT there, and on PostgreSQL the table must
be in the connector's publication (:meth:`DebeziumConnector.prepare
<cdc_support.kafka.connector.DebeziumConnector.prepare>` does both).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from typing import Any

import psycopg
from psycopg import sql

__all__ = [
    "SIGNAL_TABLE",
    "create_signal_table",
    "execute_snapshot",
    "signal_config",
]

SIGNAL_TABLE = "public.debezium_signal"
"""Where the PostgreSQL connector looks for signals (``<schema>.<table>``)."""


def signal_config(table: str = SIGNAL_TABLE, *, chunk_size: int = 1024) -> dict[str, Any]:
    """The connector settings that enable the source channel on ``table``."""
    return {
        "signal.enabled.channels": "source",
        "signal.data.collection": table,
        "incremental.snapshot.chunk.size": chunk_size,
    }


def create_signal_table(dsn: str, table: str = SIGNAL_TABLE) -> None:
    """The signal table Debezium documents (id, type, data), as the tables' owner."""
    schema, name = table.split(".", 1)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(
            sql.SQL(
                "CREATE TABLE IF NOT EXISTS {} (id VARCHAR(42) PRIMARY KEY, "
                "type VARCHAR(32) NOT NULL, data VARCHAR(2048) NULL)"
            ).format(sql.Identifier(schema, name))
        )


def execute_snapshot(dsn: str, tables: Sequence[str], table: str = SIGNAL_TABLE) -> str:
    """Ask for an incremental snapshot of ``tables`` (``schema.table``); the signal's id."""
    signal_id = uuid.uuid4().hex
    data = json.dumps({"data-collections": list(tables), "type": "incremental"})
    schema, name = table.split(".", 1)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(
            sql.SQL("INSERT INTO {} (id, type, data) VALUES (%s, 'execute-snapshot', %s)").format(
                sql.Identifier(schema, name)
            ),
            (signal_id, data),
        )
    return signal_id
