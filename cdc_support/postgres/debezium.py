"""Debezium's PostgreSQL connector as a :class:`~cdc_support.postgres.base.CaptureApproach`.

The same pgoutput stream as :mod:`.logical_decoding`, read by Debezium inside Kafka Connect
and published to a Kafka topic; the approach reads that topic back (:class:`TopicReader`).
The connector's lifecycle is :class:`~cdc_support.kafka.connector.DebeziumConnector`:
``start()`` starts it the first time (after setting REPLICA IDENTITY FULL on the table; the
connector creates the publication, grants its role SELECT, registers, waits for the first
heartbeat) or resumes a stopped one; ``stop()`` puts it in Connect's STOPPED state (its task
ends, offsets are committed, the slot stays); ``close()`` deletes the connector, drops its slot
and publication, takes the grant back and restores the table's replica identity.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import psycopg

from cdc_support.events import ChangeEvent
from cdc_support.kafka import connector as kafka_connector  # module: cdc_support.postgres
from cdc_support.kafka.connect import ConnectClient  # imports it back
from cdc_support.kafka.connector_config import topic_for
from cdc_support.kafka.topics import TopicReader
from cdc_support.naming import publication_name
from cdc_support.postgres.base import CaptureApproach, Declared
from cdc_support.postgres.source import set_replica_identity, split_table

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
        self.registered: kafka_connector.DebeziumConnector | None = None
        self.reader: TopicReader | None = None
        self._previous_identity: str | None = None

    @property
    def config(self) -> dict[str, Any]:
        """The connector's config (empty before the first start)."""
        return self.registered.config if self.registered is not None else {}

    @property
    def topic(self) -> str:
        """The table's change topic."""
        schema, name = split_table(self.table)
        return topic_for(self.connector, schema, name)

    def start(self) -> None:
        if self.registered is not None:
            self.registered.resume()
            return
        t = self.target
        self.registered = kafka_connector.DebeziumConnector.postgres(
            self.client,
            self.connector,
            bootstrap=t.kafka_bootstrap,
            admin_dsn=self.dsn,
            timeout=self.timeout,
            host=t.host,
            port=t.port,
            user=t.user,
            password=t.password,
            dbname=t.dbname,
            tables=[".".join(split_table(self.table))],
            extra=self.extra,
        )
        self.registered.start(before=self._full_identity)
        self.reader = TopicReader(t.kafka_bootstrap, [self.topic])

    def _full_identity(self) -> None:
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            self._previous_identity = set_replica_identity(conn, self.table, "FULL")

    def stop(self) -> None:
        if self.registered is not None:
            self.registered.stop()

    def delivered(self) -> list[ChangeEvent]:
        if self.reader is None:
            return []
        self.reader.poll_once(timeout=0.2)
        return self.reader.seen.events

    def close(self) -> None:
        connector, self.registered = self.registered, None
        try:
            if connector is not None:
                connector.close()
        finally:
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
