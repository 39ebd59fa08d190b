"""The connector factories refuse what Connect would take badly, in one line naming the fix."""

from __future__ import annotations

import pytest

from cdc_support.kafka.connect import ConnectorConfigError
from cdc_support.mysql.loader import create_table
from cdc_support.postgres.loader import create_schema


def _one_line_naming(error: pytest.ExceptionInfo[ConnectorConfigError], *parts: str) -> str:
    message = str(error.value)
    assert "\n" not in message, message
    for part in parts:
        assert part in message, message
    return message


def test_postgres_connector_on_a_missing_table_names_it(
    pg_connector_factory, pg_conn, connect_client
) -> None:
    create_schema(pg_conn)
    before = set(connect_client.connectors())
    with pytest.raises(ConnectorConfigError) as error:
        pg_connector_factory(["customers", "no_such_table"], timeout=30)
    _one_line_naming(error, "no such table public.no_such_table", "create it")
    assert "public.customers" not in str(error.value)
    assert set(connect_client.connectors()) <= before, "a connector was registered"


def test_mariadb_connector_on_a_missing_table_names_it(
    mysql_connector_factory, mysql_conn, mysql_database, connect_client
) -> None:
    create_table(mysql_conn, "customers")
    before = set(connect_client.connectors())
    with pytest.raises(ConnectorConfigError) as error:
        mysql_connector_factory(["customers", "no_such_table"], timeout=30)
    _one_line_naming(error, f"no such table {mysql_database.name}.no_such_table", "create it")
    assert set(connect_client.connectors()) <= before, "a connector was registered"


def test_bad_connector_config_names_the_failing_keys(
    pg_connector_factory, pg_conn, connect_client
) -> None:
    create_schema(pg_conn)
    before = set(connect_client.connectors())
    with pytest.raises(ConnectorConfigError) as error:
        pg_connector_factory(
            ["customers"], extra={"snapshot.mode": "sometimes", "topic.prefix": ""}, timeout=30
        )
    _one_line_naming(error, "Connect refuses its config", "snapshot.mode", "topic.prefix")
    assert set(connect_client.connectors()) <= before, "a connector was registered"
