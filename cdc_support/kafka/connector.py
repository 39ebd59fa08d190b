"""One Debezium connector's lifecycle on a Kafka Connect worker.

:class:`DebeziumConnector` holds a connector's config (built by
:mod:`cdc_support.kafka.connector_config`) and does, in order: ``check`` (Connect's validation,
then that its tables exist: one line naming the fix), for PostgreSQL ``prepare`` (as the tables'
owner: the publication and SELECT for the connector's role), ``register``, wait until RUNNING
and its first heartbeat (its snapshot is done: it streams); then ``status``, ``stop`` /
``resume``, and ``close``: delete it, wait until it is gone and, for PostgreSQL, drop its
replication slot and publication and take the grants back, so nothing pins WAL afterwards.
A PostgreSQL connector with a signal table (:mod:`cdc_support.kafka.signals`) gets it in its
publication, and INSERT on it for its incremental snapshots' window marks.
The pytest fixtures and the PostgreSQL capture approach all go through it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import psycopg

from cdc_support.kafka import connector_checks
from cdc_support.kafka.connect import (
    ConnectClient,
    ConnectError,
    ConnectorNotFound,
    ConnectorStatus,
)
from cdc_support.kafka.connector_config import (
    mysql_connector_config,
    postgres_connector_config,
    topic_for,
)
from cdc_support.naming import publication_name
from cdc_support.postgres import privileges
from cdc_support.postgres.source import drop_slot

__all__ = ["DebeziumConnector"]


class DebeziumConnector:
    """A Debezium connector ``name`` with its ``config``, on ``client``'s Connect worker.

    ``bootstrap`` is the Kafka the worker writes to (where the heartbeats are read).
    PostgreSQL connectors also take ``admin_dsn``: the tables' owner, who creates the
    publication, grants SELECT and drops slot and publication at :meth:`close`.
    """

    def __init__(
        self,
        client: ConnectClient,
        name: str,
        config: dict[str, Any],
        *,
        bootstrap: str,
        schema: str = "public",
        admin_dsn: str | None = None,
        timeout: float = 60.0,
    ) -> None:
        self.client = client
        self.name = name
        self.config = config
        self.bootstrap = bootstrap
        self.schema = schema  # the topic's middle part: PG schema, MySQL database
        self.admin_dsn = admin_dsn
        self.timeout = timeout
        self.topic_prefix: str = config["topic.prefix"]
        self.slot_name: str | None = config.get("slot.name")  # PostgreSQL only
        self.publication_name: str | None = config.get("publication.name")  # PostgreSQL only
        self._granted: list[str] = []
        if self.slot_name and not admin_dsn:
            raise ValueError(f"{self!r}: a PostgreSQL connector needs admin_dsn (tables' owner)")

    @classmethod
    def postgres(
        cls,
        client: ConnectClient,
        name: str,
        *,
        bootstrap: str,
        admin_dsn: str,
        timeout: float = 60.0,
        **config: Any,
    ) -> DebeziumConnector:
        """A PostgreSQL connector whose slot and topic prefix are ``name`` and publication
        :func:`~cdc_support.naming.publication_name` of it; ``config``: the keyword arguments
        of :func:`~cdc_support.kafka.connector_config.postgres_connector_config` but those."""
        built = postgres_connector_config(
            topic_prefix=name, slot_name=name, publication_name=publication_name(name), **config
        )
        return cls(client, name, built, bootstrap=bootstrap, admin_dsn=admin_dsn, timeout=timeout)

    @classmethod
    def mysql(
        cls,
        client: ConnectClient,
        name: str,
        *,
        bootstrap: str,
        timeout: float = 60.0,
        **config: Any,
    ) -> DebeziumConnector:
        """A MariaDB/MySQL connector whose topic prefix is ``name``; ``config``: the keyword
        arguments of :func:`~cdc_support.kafka.connector_config.mysql_connector_config` but
        those two."""
        built = mysql_connector_config(topic_prefix=name, kafka_bootstrap=bootstrap, **config)
        return cls(
            client, name, built, bootstrap=bootstrap, schema=config["database"], timeout=timeout
        )

    def __repr__(self) -> str:
        return f"DebeziumConnector({self.name})"

    @property
    def signal_table(self) -> str | None:
        """The config's ``signal.data.collection`` (Debezium's source signal channel)."""
        return self.config.get("signal.data.collection") or None

    @property
    def tables(self) -> list[str]:
        """The config's ``table.include.list``."""
        return [t for t in str(self.config.get("table.include.list", "")).split(",") if t]

    def topic(self, table: str, schema: str | None = None) -> str:
        """The change topic of one table."""
        return topic_for(self.topic_prefix, schema or self.schema, table)

    # -- start
    def check(self) -> None:
        """Connect's validation, then the tables: ConnectorConfigError naming the fix."""
        connector_checks.check_connector(self.client, self.name, self.config)

    def prepare(self) -> None:
        """PostgreSQL, as the tables' owner: the publication, and SELECT for the connector's
        role (taken back at :meth:`close`). Nothing to do for other connectors."""
        if not self.slot_name:
            return
        role, signals = self.config["database.user"], self.signal_table
        watched = [*self.tables, *([signals] if signals else [])]
        with psycopg.connect(str(self.admin_dsn), autocommit=True) as conn:
            privileges.create_publication(conn, str(self.publication_name), watched)
            self._granted = privileges.grant_capture(conn, role, watched)
            if signals:
                privileges.grant_signal_writes(conn, role, signals)

    def register(self) -> None:
        """Create the connector on the worker."""
        self.client.create(self.name, self.config)

    def wait_streaming(self, *, timeout: float | None = None) -> None:
        """Wait until connector and task are RUNNING, then for the first heartbeat."""
        timeout = self.timeout if timeout is None else timeout
        self.client.wait_running(self.name, timeout=timeout)
        self.client.wait_streaming(self.name, self.topic_prefix, self.bootstrap, timeout=timeout)

    def start(
        self,
        *,
        timeout: float | None = None,
        before: Callable[[], None] | None = None,
        wait: bool = True,
    ) -> None:
        """Check, run ``before`` (e.g. set a replica identity), prepare, register, then wait
        until it streams (``wait=False``: return while its snapshot may still run; call
        :meth:`wait_streaming` later)."""
        self.check()
        if before is not None:
            before()
        self.prepare()
        self.register()
        if wait:
            self.wait_streaming(timeout=timeout)

    # -- while it runs
    def status(self) -> ConnectorStatus:
        """Current connector/task state."""
        return self.client.status(self.name)

    def stop(self, *, timeout: float | None = None) -> None:
        """Connect's STOPPED state: the task ends, offsets are committed, the slot stays."""
        self.client.stop(self.name)
        self.client.wait_stopped(self.name, timeout=self.timeout if timeout is None else timeout)

    def resume(self, *, timeout: float | None = None) -> None:
        """Start a stopped connector again; it resumes from its offsets."""
        self.client.resume(self.name)
        self.client.wait_running(self.name, timeout=self.timeout if timeout is None else timeout)

    # -- end
    def delete(self, *, timeout: float | None = None) -> bool:
        """Delete the connector and wait until it is gone; False when it was not registered."""
        try:
            self.client.delete(self.name)
        except ConnectorNotFound:
            return False
        self.client.wait_gone(self.name, timeout=self.timeout if timeout is None else timeout)
        return True

    def close(self, *, timeout: float | None = None) -> None:
        """Delete the connector; for PostgreSQL then drop its slot and publication and revoke
        the grant. Every step is tried; ConnectError lists the ones that failed."""
        problems: list[str] = []
        try:
            self.delete(timeout=timeout)
        except Exception as exc:
            problems.append(f"deleting connector {self.name}: {exc}")
        if self.slot_name:
            problems += self._drop_postgres_objects()
        if problems:
            raise ConnectError("; ".join(problems))

    def _drop_postgres_objects(self) -> list[str]:
        problems: list[str] = []
        role, signals = self.config["database.user"], self.signal_table
        with psycopg.connect(str(self.admin_dsn), autocommit=True) as conn:
            steps: list[tuple[str, Callable[[], object]]] = [
                (f"slot {self.slot_name}", lambda: drop_slot(conn, str(self.slot_name))),
                (
                    f"publication {self.publication_name}",
                    lambda: privileges.drop_publication(conn, str(self.publication_name)),
                ),
                (
                    f"SELECT grant of {role}",
                    lambda: privileges.revoke_capture(conn, role, self._granted),
                ),
            ]
            if signals:
                steps.append(
                    (
                        f"INSERT grant of {role} on {signals}",
                        lambda: privileges.revoke_signal_writes(conn, role, signals),
                    )
                )
            for what, step in steps:
                try:
                    step()
                except Exception as exc:
                    problems.append(f"dropping {what}: {exc}")
        self._granted = []
        return problems

    def describe(self) -> dict[str, Any]:
        """Name, topic prefix, slot and publication, and the config without passwords."""
        return {
            "connector": self.name,
            "topic prefix": self.topic_prefix,
            "slot": self.slot_name,
            "publication": self.publication_name,
            "config": {k: v for k, v in self.config.items() if "password" not in k},
        }
