"""MySQL/MariaDB fixtures: a per-test database, connections, Debezium connectors, binlog readers.

The admin account (``Endpoints.mysql_dsn``) creates the database and writes test data; every
CDC client — the Debezium connector and the binlog reader — connects as the stack's
least-privilege CDC user instead.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pymysql
import pytest

from cdc_support.kafka.connect import ConnectClient
from cdc_support.kafka.connector import DebeziumConnector
from cdc_support.mysql.binlog_reader import BinlogReader, PositionStore
from cdc_support.mysql.source import MySqlAddress, connect, parse_dsn
from cdc_support.naming import connector_name
from pytest_cdc.errors import BackendNotAvailable
from pytest_cdc.fixtures import _Named, close_connectors
from pytest_cdc.stack import Stack


@dataclass(frozen=True)
class MySqlDatabase:
    """A database created for one test, with the admin and the CDC account pointed at it."""

    name: str
    flavor: str
    admin: MySqlAddress
    cdc: MySqlAddress

    def __repr__(self) -> str:
        return f"MySqlDatabase({self.name} on {self.flavor})"


def new_server_id() -> int:
    """A replica server id for one CDC client (must differ from every other client's)."""
    return random.randint(10_000, 2**31 - 1)


@pytest.fixture
def mysql_database(cdc_stack: Stack, cdc_scenario_name: str) -> Iterator[MySqlDatabase]:
    """A fresh MySQL/MariaDB database for this test; dropped afterwards."""
    ep = cdc_stack.endpoints
    if not ep.mysql_dsn:
        raise BackendNotAvailable(
            f"the {cdc_stack.info.backend} stack has no MySQL/MariaDB server; "
            "use --cdc-backend=native (MariaDB) or give mysql_dsn to the external backend"
        )
    admin = parse_dsn(ep.mysql_dsn)
    name = cdc_scenario_name  # valid as a MariaDB/MySQL name (cdc_support.naming)
    with connect(admin) as conn, conn.cursor() as cur:
        cur.execute(f"CREATE DATABASE `{name}`")
    database = MySqlDatabase(
        name=name,
        flavor=ep.mysql_flavor,
        admin=admin.with_database(name),
        cdc=parse_dsn(ep.mysql_cdc_dsn),  # this host's address; Debezium uses ep.mysql_host/port
    )
    try:
        yield database
    finally:
        with connect(admin) as conn, conn.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS `{name}`")


@pytest.fixture
def mysql_conn(mysql_database: MySqlDatabase) -> Iterator[pymysql.Connection]:
    """An autocommit admin connection to this test's database (for writing test data)."""
    conn = connect(mysql_database.admin)
    try:
        yield conn
    finally:
        conn.close()


@pytest.fixture
def mysql_connector_factory(
    cdc_stack: Stack,
    connect_client: ConnectClient,
    mysql_database: MySqlDatabase,
    cdc_scenario_name: str,
    request: pytest.FixtureRequest,
) -> Iterator[Callable[..., DebeziumConnector]]:
    """Register Debezium MariaDB/MySQL connectors (as the CDC user); wait until they stream.

    Connectors are named ``<flavor>_<scenario>_<n>`` (:func:`cdc_support.naming.connector_name`),
    never like the PostgreSQL factory's ``pg_...`` ones. Teardown deletes each connector and
    waits until it is gone. Its schema history topic belongs to Debezium and is left on the
    (throwaway) broker.
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
        ep = cdc_stack.endpoints
        cdc = mysql_database.cdc
        connector = DebeziumConnector.mysql(
            connect_client,
            connector_name(mysql_database.flavor, cdc_scenario_name, len(created)),
            bootstrap=ep.kafka_bootstrap,
            timeout=timeout,
            flavor=mysql_database.flavor,
            host=ep.mysql_host,  # as Connect reaches the server
            port=ep.mysql_port,
            user=cdc.user,
            password=cdc.password,
            database=mysql_database.name,
            tables=tables,
            server_id=new_server_id(),
            snapshot_mode=snapshot_mode,
            tombstones_on_delete=tombstones_on_delete,
            extra=extra,
        )
        created.append(connector)
        connector.start()
        return connector

    yield _Named(create, f"Debezium {mysql_database.flavor} connectors on {mysql_database.name}")
    close_connectors(created, request)


@pytest.fixture
def binlog_reader_factory(
    mysql_database: MySqlDatabase, tmp_path: Path
) -> Iterator[Callable[..., BinlogReader]]:
    """Make :class:`BinlogReader`s on this test's database (as the CDC user); all are stopped
    after the test. Each keeps its position in a file under the test's tmp_path."""
    readers: list[BinlogReader] = []

    def make(tables: Sequence[str], *, position_file: Path | None = None) -> BinlogReader:
        store = PositionStore(position_file or tmp_path / f"binlog-position-{len(readers)}.json")
        reader = BinlogReader(
            mysql_database.cdc,
            schema=mysql_database.name,
            tables=tables,
            store=store,
            server_id=new_server_id(),
        )
        readers.append(reader)
        return reader

    yield _Named(make, f"binlog readers on {mysql_database.name}")
    for reader in readers:
        reader.stop()
