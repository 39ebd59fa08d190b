"""One test, both connector factories: two distinct connectors, both RUNNING, own configs.

Both factories used to name their first connector after the scenario alone, so the second
registration (``PUT /connectors/<name>/config``) silently replaced the first's config.
"""

from __future__ import annotations

import psycopg
import pymysql
import pytest

from cdc_support.kafka.connect import ConnectClient
from cdc_support.kafka.connector import DebeziumConnector
from cdc_support.mysql.loader import create_table
from cdc_support.naming import MAX_IDENTIFIER, publication_name
from cdc_support.postgres.loader import create_schema

pytestmark = [pytest.mark.postgres, pytest.mark.mysql, pytest.mark.debezium]


def test_postgres_and_mariadb_connectors_of_one_test_are_distinct_and_both_run(
    pg_conn: psycopg.Connection,
    mysql_conn: pymysql.Connection,
    pg_connector_factory,
    mysql_connector_factory,
    connect_client: ConnectClient,
) -> None:
    create_schema(pg_conn)
    create_table(mysql_conn, "customers")

    pg = pg_connector_factory(["customers"])
    mariadb = mysql_connector_factory(["customers"])
    assert pg.name != mariadb.name
    _registered_and_running(connect_client, pg, mariadb)
    assert pg.name.startswith("pg_") and mariadb.name.startswith(("mariadb_", "mysql_"))

    second = pg_connector_factory(["customers"])  # a second one of the same kind
    assert len({pg.name, mariadb.name, second.name}) == 3
    _registered_and_running(connect_client, pg, mariadb, second)
    for connector in (pg, second):
        assert connector.slot_name == connector.name
        assert len(publication_name(connector.name)) <= MAX_IDENTIFIER


def _registered_and_running(client: ConnectClient, *connectors: DebeziumConnector) -> None:
    """Each connector is registered with its own config (topic prefix) and RUNNING."""
    assert {c.name for c in connectors} <= set(client.connectors())
    for connector in connectors:
        registered = client.config(connector.name)
        assert registered["connector.class"] == connector.config["connector.class"]
        assert registered["topic.prefix"] == connector.name
        status = connector.status()
        assert status.running, f"{connector.name}: {status}"
