"""The plugin's fixtures: the session stack, per-scenario databases, clients and factories.

Per resource, as in pytest-postgresql: a session-scoped service (`cdc_stack`), a per-test
clean place to work (`pg_database`), clients (`pg_conn`, `connect_client`) and factories
(`kafka_reader_factory`, `debezium_connector_factory`) whose teardown removes what they made.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

import psycopg
import pytest

from cdc_support.kafka.connect import ConnectClient
from cdc_support.kafka.connector import DebeziumConnector
from cdc_support.kafka.topics import TopicReader
from cdc_support.naming import connector_name
from cdc_support.postgres.connection import PgConnection
from cdc_support.postgres.tables import check_replica_identity
from pytest_cdc.janitor import PgDatabase, scenario_database, scenario_name
from pytest_cdc.stack import Stack
from pytest_cdc.state import get_state


@pytest.fixture(scope="session")
def cdc_stack(request: pytest.FixtureRequest) -> Stack:
    """The running CDC stack (endpoints only), started once per session."""
    return get_state(request.config).stack()


@pytest.fixture
def cdc_scenario_name(request: pytest.FixtureRequest) -> str:
    """A unique identifier for this test, used to name its database, slot, topics."""
    return scenario_name((request.node.originalname or request.node.name).removeprefix("test_"))


@pytest.fixture
def pg_database(cdc_stack: Stack, cdc_scenario_name: str) -> Iterator[PgDatabase]:
    """A fresh PostgreSQL database for this test; dropped (with its slots) afterwards."""
    cdc_dsn = cdc_stack.endpoints.postgres_cdc_dsn
    with scenario_database(cdc_stack.postgres_dsn, cdc_scenario_name, cdc_dsn=cdc_dsn) as database:
        yield database


@pytest.fixture
def pg_conn(pg_database: PgDatabase) -> Iterator[PgConnection]:
    """An autocommit psycopg connection to this test's database.

    Closed, not committed, after the test: a test interrupted mid-query (Ctrl-C, SIGTERM)
    leaves a command in progress, and a COMMIT then would fail the teardown.
    """
    conn = PgConnection.connect(pg_database.dsn, autocommit=True)
    try:
        yield conn
    finally:
        conn.close()


@pytest.fixture(scope="session")
def connect_client(cdc_stack: Stack) -> ConnectClient:
    """A REST client for the stack's Kafka Connect worker."""
    return ConnectClient(cdc_stack.connect_url)


@pytest.fixture
def kafka_reader_factory(cdc_stack: Stack) -> Iterator[Callable[..., TopicReader]]:
    """Make `TopicReader`s (from the earliest offset); all are closed after the test."""
    make = ReaderFactory(cdc_stack.kafka_bootstrap)
    yield make
    make.close_all()


class ReaderFactory:
    """Callable that makes TopicReaders and remembers them, to close them after the test."""

    def __init__(self, bootstrap: str) -> None:
        self.bootstrap = bootstrap
        self.readers: list[TopicReader] = []

    def __call__(self, topics: Sequence[str], **kwargs: Any) -> TopicReader:
        reader = TopicReader(self.bootstrap, topics, **kwargs)
        self.readers.append(reader)
        return reader

    def close_all(self) -> None:
        """Close every reader made."""
        for reader in self.readers:
            reader.close()

    def __repr__(self) -> str:
        return f"kafka readers on {self.bootstrap}"


class _Named:
    """Wraps a factory function with a short repr (step parameters show it in the report)."""

    def __init__(self, func: Callable[..., Any], label: str) -> None:
        self._func = func
        self._label = label

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._func(*args, **kwargs)

    def __repr__(self) -> str:
        return self._label


def close_connectors(
    connectors: Sequence[DebeziumConnector], request: pytest.FixtureRequest
) -> None:
    """Close each connector (delete it; for PostgreSQL drop its slot and publication); what
    fails becomes a test warning ``cdc teardown: ...``."""
    for connector in connectors:
        try:
            connector.close()
        except Exception as exc:
            request.node.warn(pytest.PytestWarning(f"cdc teardown: {exc}"))


@pytest.fixture
def debezium_connector_factory(
    cdc_stack: Stack,
    connect_client: ConnectClient,
    pg_database: PgDatabase,
    cdc_scenario_name: str,
    request: pytest.FixtureRequest,
) -> Iterator[Callable[..., DebeziumConnector]]:
    """Register Debezium PostgreSQL connectors on this test's database; wait until they stream.

    Teardown deletes each connector, waits until it is gone, and drops its replication slot
    and publication, so nothing pins WAL after the test. Connectors are named by
    :func:`cdc_support.naming.connector_name` (``pg_<scenario>_<n>``). A table without a
    replica identity (no primary key, REPLICA IDENTITY DEFAULT) is refused before anything is
    made (ReplicaIdentityMissing, naming the fix).
    """
    created: list[DebeziumConnector] = []

    def create(
        tables: Sequence[str],
        *,
        snapshot_mode: str = "initial",
        tombstones_on_delete: bool = True,
        extra: dict[str, Any] | None = None,
        timeout: float = 60.0,
    ) -> DebeziumConnector:
        qualified = [t if "." in t else f"public.{t}" for t in tables]
        with psycopg.connect(pg_database.dsn, autocommit=True) as conn:
            check_replica_identity(conn, qualified)
        ep = cdc_stack.endpoints
        user, password = ep.postgres_cdc_login
        connector = DebeziumConnector.postgres(
            connect_client,
            connector_name("pg", cdc_scenario_name, len(created)),
            bootstrap=ep.kafka_bootstrap,
            admin_dsn=pg_database.dsn,
            timeout=timeout,
            host=ep.postgres_host,
            port=ep.postgres_port,
            user=user,
            password=password,
            dbname=pg_database.name,
            tables=qualified,
            snapshot_mode=snapshot_mode,
            tombstones_on_delete=tombstones_on_delete,
            extra=extra,
        )
        created.append(connector)
        connector.start()
        return connector

    yield _Named(create, f"Debezium connectors on {pg_database.name}")
    close_connectors(created, request)
