"""Debezium connector configurations, with the settings cdc-spec relies on explained.

The lifecycle of a connector made from one of them is :mod:`cdc_support.kafka.connector`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

POSTGRES_CONNECTOR = "io.debezium.connector.postgresql.PostgresConnector"
HEARTBEAT_INTERVAL_MS = 1000
"""Debezium emits heartbeat records only while streaming (none during the snapshot), so the
first one on :func:`heartbeat_topic` says the connector has finished its snapshot: a change
committed after it is streamed, never folded into the snapshot or lost before it. Heartbeats
also keep a replication slot's position moving on an idle database."""


def postgres_connector_config(
    *,
    host: str,
    port: int,
    user: str,
    password: str,
    dbname: str,
    topic_prefix: str,
    slot_name: str,
    publication_name: str,
    tables: Sequence[str],
    snapshot_mode: str = "initial",
    tombstones_on_delete: bool = True,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Config for Debezium's PostgreSQL connector reading pgoutput from a per-scenario slot.

    - plugin.name=pgoutput: the decoder built into PostgreSQL 10+ (the default, decoderbufs,
      needs an extension).
    - publication.autocreate.mode=disabled: the publication `publication_name` (FOR TABLE
      `tables`) is created beforehand by the tables' owner, so `user` needs only LOGIN,
      REPLICATION (to create its slot and stream) and SELECT on `tables` (for the snapshot);
      creating or altering a publication would need ownership of the tables.
    - decimal.handling.mode=string: NUMERIC arrives as "12.50", not base64 bytes.
    - Each scenario gets its own slot, publication and topic prefix, so scenarios are
      isolated by name on one shared server and broker.
    """
    config: dict[str, Any] = {
        "connector.class": POSTGRES_CONNECTOR,
        "tasks.max": "1",
        "database.hostname": host,
        "database.port": str(port),
        "database.user": user,
        "database.password": password,
        "database.dbname": dbname,
        "topic.prefix": topic_prefix,
        "plugin.name": "pgoutput",
        "slot.name": slot_name,
        "publication.name": publication_name,
        "publication.autocreate.mode": "disabled",
        "table.include.list": ",".join(tables),
        "snapshot.mode": snapshot_mode,
        "decimal.handling.mode": "string",
        "tombstones.on.delete": str(tombstones_on_delete).lower(),
        "slot.drop.on.stop": "false",
        "status.update.interval.ms": "1000",
        "poll.interval.ms": "100",
        "heartbeat.interval.ms": str(HEARTBEAT_INTERVAL_MS),
    }
    config.update({k: str(v) for k, v in (extra or {}).items()})
    return config


def heartbeat_topic(topic_prefix: str) -> str:
    """Where a connector's heartbeats go (Debezium's default topic.heartbeat.prefix)."""
    return f"__debezium-heartbeat.{topic_prefix}"


def topic_for(topic_prefix: str, schema: str, table: str) -> str:
    """Debezium's topic naming: <prefix>.<schema>.<table>."""
    return f"{topic_prefix}.{schema}.{table}"


MARIADB_CONNECTOR = "io.debezium.connector.mariadb.MariaDbConnector"
MYSQL_CONNECTOR = "io.debezium.connector.mysql.MySqlConnector"


def mysql_connector_config(
    *,
    flavor: str,
    host: str,
    port: int,
    user: str,
    password: str,
    database: str,
    tables: Sequence[str],
    topic_prefix: str,
    server_id: int,
    kafka_bootstrap: str,
    snapshot_mode: str = "initial",
    tombstones_on_delete: bool = True,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Config for Debezium's MariaDB (flavor "mariadb") or MySQL (flavor "mysql") connector.

    - The connector registers as a replica with `database.server.id` (unique per client) and
      reads the binlog from the position it stored in Connect's offsets topic.
    - Row events carry no DDL, so the connector records every schema change in a schema
      history topic (`<prefix>.schema-history`, created by Debezium itself) and replays it on
      restart to know each table's columns at any binlog position.
    - snapshot.mode=initial reads the existing rows first (op "r"), then streams.
    - decimal.handling.mode=string: DECIMAL arrives as "12.50", not base64 bytes.
    """
    classes = {"mariadb": MARIADB_CONNECTOR, "mysql": MYSQL_CONNECTOR}
    if flavor not in classes:
        raise ValueError(f"unknown MySQL flavor {flavor!r}; choose one of {sorted(classes)}")
    config: dict[str, Any] = {
        "connector.class": classes[flavor],
        "tasks.max": "1",
        "database.hostname": host,
        "database.port": str(port),
        "database.user": user,
        "database.password": password,
        "database.server.id": str(server_id),
        "database.include.list": database,
        "table.include.list": ",".join(f"{database}.{t}" for t in tables),
        "topic.prefix": topic_prefix,
        "schema.history.internal.kafka.bootstrap.servers": kafka_bootstrap,
        "schema.history.internal.kafka.topic": f"{topic_prefix}.schema-history",
        "include.schema.changes": "true",
        "snapshot.mode": snapshot_mode,
        "decimal.handling.mode": "string",
        "tombstones.on.delete": str(tombstones_on_delete).lower(),
        "database.ssl.mode": "disable",
        "poll.interval.ms": "100",
        "heartbeat.interval.ms": str(HEARTBEAT_INTERVAL_MS),
    }
    config.update({k: str(v) for k, v in (extra or {}).items()})
    return config
