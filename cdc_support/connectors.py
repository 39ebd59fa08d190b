"""Debezium connector configurations, with the settings cdc-spec relies on explained."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

POSTGRES_CONNECTOR = "io.debezium.connector.postgresql.PostgresConnector"


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
    - publication.autocreate.mode=filtered: Debezium creates a publication for just `tables`.
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
        "publication.autocreate.mode": "filtered",
        "table.include.list": ",".join(tables),
        "snapshot.mode": snapshot_mode,
        "decimal.handling.mode": "string",
        "tombstones.on.delete": str(tombstones_on_delete).lower(),
        "slot.drop.on.stop": "false",
        "status.update.interval.ms": "1000",
        "poll.interval.ms": "100",
    }
    config.update({k: str(v) for k, v in (extra or {}).items()})
    return config


def topic_for(topic_prefix: str, schema: str, table: str) -> str:
    """Debezium's topic naming: <prefix>.<schema>.<table>."""
    return f"{topic_prefix}.{schema}.{table}"
