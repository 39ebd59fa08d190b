"""Debezium's PostgreSQL connector as a :class:`~cdc_support.postgres.base.CaptureApproach`.

The same pgoutput stream as :mod:`.logical_decoding`, read by Debezium inside Kafka Connect
and published to a Kafka topic; the approach reads that topic back (:class:`TopicReader`).
``start()`` registers the connector (the first time: after the admin set REPLICA IDENTITY FULL,
created the publication and granted the connector's role SELECT on the table; then it waits
for its first heartbeat, i.e. until it streams) or resumes a stopped one; ``stop()`` puts it
in Connect's STOPPED state (its task ends, offsets are committed, the slot stays); ``close()``
deletes the connector, drops its slot and publication and takes the grant back.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Any

import psycopg

from cdc_support.events import ChangeEvent
from cdc_support.kafka import connector_checks
from cdc_support.kafka.connect import ConnectClient, ConnectorNotFound
from cdc_support.kafka.connector import postgres_connector_config, topic_for
from cdc_support.kafka.topics import TopicReader
from cdc_support.naming import publication_name
from cdc_support.postgres.base import CaptureApproach, Declared
from cdc_support.postgres.privileges import (
    create_publication,
    drop_publication,
    grant_capture,
    revoke_capture,
)
from cdc_support.postgres.source import drop_slot, set_replica_identity, split_table

__all__ = ["DebeziumApproach", "DebeziumTarget"]


@dataclass(frozen=True)
class DebeziumTarget:
    """Where Connect is, and how the connector (running inside Connect) reaches PostgreSQL.

    ``user`` needs LOGIN and REPLICATION; the approach grants it SELECT on the table.
    """

    connect_url: str
    kafka_bootstrap: str
    host: str
    port: int
    user: str
    password: str = field(repr=False)
    dbname: str


class DebeziumApproach(CaptureApproach):
    """A Debezium PostgreSQL connector named ``name`` (also its slot and topic prefix)."""

    name = "Debezium"
    declared = Declared(
        hard_deletes=True,
        intermediate_updates=True,
        before_image=True,
        restart_without_loss=True,
        schema_change=False,
        how="Debezium's PostgreSQL connector (pgoutput) in Kafka Connect, read back from Kafka",
    )

    def __init__(
        self,
        dsn: str,
        table: str,
        key: tuple[str, ...],
        *,
        target: DebeziumTarget,
        connector: str,
        timeout: float = 60.0,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(table, key)
        self.dsn = dsn
        self.target = target
        self.connector = connector
        self.publication = publication_name(connector)
        self.timeout = timeout
        self.extra = extra or {}
        self.client = ConnectClient(target.connect_url)
        self.config: dict[str, Any] = {}
        self.reader: TopicReader | None = None
        self.created = False
        self._previous_identity: str | None = None
        self._granted: list[str] = []

    @property
    def topic(self) -> str:
        """The table's change topic."""
        schema, name = split_table(self.table)
        return topic_for(self.connector, schema, name)

    def start(self) -> None:
        if self.created:
            self.client.resume(self.connector)
            self.client.wait_running(self.connector, timeout=self.timeout)
            return
        t = self.target
        table = ".".join(split_table(self.table))
        self.config = postgres_connector_config(
            host=t.host,
            port=t.port,
            user=t.user,
            password=t.password,
            dbname=t.dbname,
            topic_prefix=self.connector,
            slot_name=self.connector,
            publication_name=self.publication,
            tables=[table],
            extra=self.extra,
        )
        connector_checks.check_connector(self.client, self.connector, self.config)
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            self._previous_identity = set_replica_identity(conn, self.table, "FULL")
            self.created = True
            create_publication(conn, self.publication, [table])
            self._granted = grant_capture(conn, t.user, [table])
        self.client.create(self.connector, self.config)
        self.client.wait_running(self.connector, timeout=self.timeout)
        self.client.wait_streaming(
            self.connector, self.connector, t.kafka_bootstrap, timeout=self.timeout
        )
        self.reader = TopicReader(t.kafka_bootstrap, [self.topic])

    def stop(self) -> None:
        self.client.stop(self.connector)
        self.client.wait_stopped(self.connector, timeout=self.timeout)

    def delivered(self) -> list[ChangeEvent]:
        if self.reader is None:
            return []
        self.reader.poll_once(timeout=0.2)
        return self.reader.seen.events

    def close(self) -> None:
        if self.created:
            with contextlib.suppress(ConnectorNotFound):
                self.client.delete(self.connector)
            self.client.wait_gone(self.connector, timeout=self.timeout)
            with psycopg.connect(self.dsn, autocommit=True) as conn:
                drop_slot(conn, self.connector)
                drop_publication(conn, self.publication)
                revoke_capture(conn, self.target.user, self._granted)
            self._granted = []
            self.created = False
        if self.reader is not None:
            self.reader.close()
            self.reader = None
        if self._previous_identity is not None:
            with psycopg.connect(self.dsn, autocommit=True) as conn:
                set_replica_identity(conn, self.table, self._previous_identity)
            self._previous_identity = None

    def describe(self) -> dict[str, Any]:
        return {
            **super().describe(),
            "connector": self.connector,
            "topic": self.topic,
            "slot": self.connector,
            "publication": self.publication,
        }
