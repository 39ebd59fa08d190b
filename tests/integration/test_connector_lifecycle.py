"""DebeziumConnector on the real stack: it streams, and close() leaves nothing behind."""

from __future__ import annotations

import psycopg
import pytest

from cdc_support.kafka.connect import ConnectClient
from cdc_support.kafka.connector import DebeziumConnector
from cdc_support.naming import connector_name
from cdc_support.postgres.loader import create_schema
from cdc_support.postgres.privileges import table_privileges
from cdc_support.postgres.source import slot_state

pytestmark = [pytest.mark.postgres, pytest.mark.debezium]


def _publications(conn: psycopg.Connection) -> set[str]:
    return {r[0] for r in conn.execute("SELECT pubname FROM pg_publication").fetchall()}


def test_a_postgres_connector_streams_and_close_drops_slot_publication_and_grant(
    cdc_stack, pg_database, pg_conn: psycopg.Connection, connect_client: ConnectClient
) -> None:
    create_schema(pg_conn)
    ep = cdc_stack.endpoints
    user, password = ep.postgres_cdc_login
    connector = DebeziumConnector.postgres(
        connect_client,
        connector_name("pg", pg_database.name, 0),
        bootstrap=ep.kafka_bootstrap,
        admin_dsn=pg_database.dsn,
        host=ep.postgres_host,
        port=ep.postgres_port,
        user=user,
        password=password,
        dbname=pg_database.name,
        tables=["public.customers"],
    )
    try:
        connector.start()
        assert connector.status().running, connector.status()
        assert slot_state(pg_conn, connector.name) is not None
        assert connector.publication_name in _publications(pg_conn)
        assert table_privileges(pg_conn, user, "public.customers")["SELECT"]
    finally:
        connector.close()
    assert connector.name not in connect_client.connectors()
    assert slot_state(pg_conn, connector.name) is None
    assert connector.publication_name not in _publications(pg_conn)
    if user != "postgres":  # a superuser reads everything anyway
        assert not table_privileges(pg_conn, user, "public.customers")["SELECT"]
    connector.close()  # closing twice is harmless
