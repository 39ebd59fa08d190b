"""Debezium's MariaDB/MySQL connector as a :class:`~cdc_support.capture.CaptureApproach`.

The connector runs inside Kafka Connect, snapshots the table's rows (op ``r``), then streams
the binlog and publishes one record per row change; the approach reads the table's topic back
(:class:`TopicReader`). Registering the connector (config, checks, waiting until it streams)
is the caller's ``register`` function — in the scenarios, the ``mysql_connector_factory``
fixture, which also deletes it after the test. ``start()`` registers it the first time and
resumes it after ``stop()`` (Connect's STOPPED state: offsets committed, task ended).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from cdc_support.capture import Declared
from cdc_support.events import ChangeEvent
from cdc_support.kafka.connector import DebeziumConnector
from cdc_support.kafka.topics import TopicReader, read_json_values
from cdc_support.mysql.approach import BinlogApproach, SchemaChanges

__all__ = ["DebeziumBinlogApproach"]

HISTORY_TOPIC = "schema.history.internal.kafka.topic"


class DebeziumBinlogApproach(BinlogApproach):
    """Debezium's MariaDB connector on one table, read back from its Kafka topic."""

    name = "Debezium"
    declared = Declared(
        hard_deletes=True,
        intermediate_updates=True,
        before_image=True,
        restart_without_loss=True,
        schema_change=True,
        how="Debezium's MariaDB connector in Kafka Connect (snapshot, then binlog), from Kafka",
    )

    def __init__(
        self,
        table: str,
        key: tuple[str, ...],
        *,
        register: Callable[[Sequence[str]], DebeziumConnector],
        open_reader: Callable[[Sequence[str]], TopicReader],
        kafka_bootstrap: str,
        timeout: float = 60.0,
    ) -> None:
        super().__init__(table, key)
        self.register = register
        self.open_reader = open_reader
        self.kafka_bootstrap = kafka_bootstrap
        self.timeout = timeout
        self.connector: DebeziumConnector | None = None
        self.reader: TopicReader | None = None

    def start(self) -> None:
        if self.connector is not None:
            self.connector.resume(timeout=self.timeout)
            return
        self.connector = self.register([self.table])
        self.reader = self.open_reader([self.connector.topic(self.table)])

    def stop(self) -> None:
        if self.connector is not None:
            self.connector.stop(timeout=self.timeout)

    def delivered(self) -> list[ChangeEvent]:
        if self.reader is None:
            return []
        self.reader.poll_once(timeout=0.1)
        return self.reader.seen.events

    def wait_events(
        self, done: Callable[[list[ChangeEvent]], bool], *, expected: str, timeout: float
    ) -> list[ChangeEvent]:
        """Consume the topic until ``done(events)``; WaitTimeout naming expected vs seen."""
        if self.reader is None:
            raise RuntimeError(f"{self.name} on {self.table} was not started: call start()")
        seen = self.reader.read_until(
            lambda records: done(records.events), timeout=timeout, expected=expected
        )
        return seen.events

    def schema_changes(self, containing: str, *, timeout: float) -> SchemaChanges:
        """Read the connector's schema history topic until a DDL contains ``containing``."""
        if self.connector is None:
            raise RuntimeError(f"{self.name} on {self.table} was not started: call start()")
        topic = self.connector.config[HISTORY_TOPIC]
        records = read_json_values(
            self.kafka_bootstrap,
            topic,
            done=lambda values: any(containing in str(v.get("ddl", "")) for v in values),
            timeout=timeout,
            expected=f"a schema history record with {containing!r}",
        )
        statements = [str(r["ddl"]) for r in records if containing in str(r.get("ddl", ""))]
        return SchemaChanges(f"schema history topic {topic}", statements, records)

    def close(self) -> None:
        """Delete the connector (idempotent; the registering fixture's teardown tolerates it)."""
        if self.connector is not None:
            self.connector.delete(timeout=self.timeout)
            self.connector = None

    def describe(self) -> dict[str, Any]:
        connector = self.connector.describe() if self.connector is not None else {}
        return {**super().describe(), "connector": None, "config": {}, **connector}
