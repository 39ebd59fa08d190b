"""DebeziumConnector's lifecycle against a recording Connect client (no Connect needed)."""

from __future__ import annotations

from typing import Any

import pytest

from cdc_support.kafka.connect import ConnectError, ConnectorNotFound
from cdc_support.kafka.connector import DebeziumConnector
from cdc_support.kafka.connector_config import heartbeat_topic


class RecordingClient:
    """Stands in for ConnectClient: records each call; ``fail`` maps a method to its error."""

    def __init__(self, **fail: Exception) -> None:
        self.calls: list[str] = []
        self.fail = fail

    def __getattr__(self, method: str) -> Any:
        def call(*args: Any, **kwargs: Any) -> Any:
            self.calls.append(method)
            if method in self.fail:
                raise self.fail[method]
            return {} if method == "validate" else None

        return call


def _mariadb(client: Any) -> DebeziumConnector:
    return DebeziumConnector.mysql(
        client,
        "mariadb_shop_1a2b3c4d_0",
        bootstrap="127.0.0.1:9092",
        flavor="mariadb",
        host="127.0.0.1",
        port=3306,
        user="cdc",
        password="secret",
        database="shop",
        tables=["orders"],
        server_id=4242,
    )


def test_start_checks_registers_then_waits_for_running_and_the_first_heartbeat(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    client = RecordingClient()
    connector = _mariadb(client)
    monkeypatch.setattr("cdc_support.kafka.connector_checks.missing_tables", lambda config: [])
    ran: list[str] = []
    connector.start(before=lambda: ran.append("before"))
    assert client.calls == ["validate", "create", "wait_running", "wait_streaming"]
    assert ran == ["before"]
    assert repr(connector) == "DebeziumConnector(mariadb_shop_1a2b3c4d_0)"
    assert connector.topic("orders") == "mariadb_shop_1a2b3c4d_0.shop.orders"
    assert connector.config["topic.prefix"] == connector.topic_prefix == connector.name
    assert heartbeat_topic(connector.topic_prefix).endswith(connector.name)
    assert "secret" not in str(connector.describe())


def test_a_config_connect_refuses_is_never_registered() -> None:
    client = RecordingClient()
    client.validate = lambda name, config: {"snapshot.mode": ["bad value"]}  # type: ignore[method-assign]
    with pytest.raises(ConnectError, match=r"snapshot\.mode: bad value"):
        _mariadb(client).start()
    assert "create" not in client.calls


def test_close_of_a_connector_never_registered_is_quiet() -> None:
    client = RecordingClient(delete=ConnectorNotFound("no such connector"))
    connector = _mariadb(client)
    connector.close()
    assert connector.delete() is False
    assert client.calls == ["delete", "delete"]


def test_close_reports_what_failed_in_one_error() -> None:
    client = RecordingClient(delete=ConnectError("DELETE -> HTTP 500: worker busy"))
    with pytest.raises(ConnectError, match="deleting connector mariadb_shop_1a2b3c4d_0: DELETE"):
        _mariadb(client).close()


def test_a_postgres_connector_needs_the_tables_owner() -> None:
    config = {"topic.prefix": "pg_x_0", "slot.name": "pg_x_0", "publication.name": "pg_x_0_pub"}
    with pytest.raises(ValueError, match="needs admin_dsn"):
        DebeziumConnector(RecordingClient(), "pg_x_0", config, bootstrap="k:1")  # type: ignore[arg-type]
    made = DebeziumConnector.postgres(
        RecordingClient(),  # type: ignore[arg-type]
        "pg_x_0",
        bootstrap="k:1",
        admin_dsn="dbname=x",
        host="h",
        port=5432,
        user="cdc",
        password="pw",
        dbname="x",
        tables=["public.t"],
    )
    assert (made.slot_name, made.publication_name) == ("pg_x_0", "pg_x_0_pub")
    assert made.tables == ["public.t"]
