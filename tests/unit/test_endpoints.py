"""Endpoints travel as JSON (an endpoints file, xdist workers): exactly, passwords included."""

from __future__ import annotations

import json

import pytest

from cdc_support.endpoints import Endpoints, EndpointsError

FULL = Endpoints(
    postgres_dsn="postgresql://postgres:pg%40-pw@127.0.0.1:15432/postgres",
    kafka_bootstrap="127.0.0.1:19092",
    connect_url="http://127.0.0.1:18083",
    mysql_dsn="mysql://root:r00t-pw@127.0.0.1:13306/",
    postgres_host="postgres",
    postgres_port=5432,
    postgres_user="postgres",
    postgres_password="pg@-pw",
    postgres_cdc_user="cdc_replication",
    postgres_cdc_password="-cdc:pw/",
    mysql_flavor="mariadb",
    mysql_host="mariadb",
    mysql_port=3306,
    mysql_cdc_user="cdc",
    mysql_cdc_password="my cdc pw",
    credentials_file="/tmp/cdc-stack-x/credentials.json",
)


def test_endpoints_round_trip_through_json_exactly_with_their_passwords() -> None:
    text = FULL.to_json()
    assert Endpoints.from_json(text) == FULL
    assert json.loads(text)["postgres_cdc_password"] == "-cdc:pw/"  # not *** (a 0600 file)
    assert "r00t-pw" in text and "***" not in text
    assert "***" in repr(FULL) and "r00t-pw" not in repr(FULL)  # the report still redacts


def test_a_stack_without_mysql_round_trips_too() -> None:
    bare = Endpoints("postgresql://p:x@127.0.0.1:5432/postgres", "127.0.0.1:9092", "http://c:8083")
    assert Endpoints.from_json(bare.to_json()) == bare


def test_connect_side_addresses_default_to_the_host_side_ones() -> None:
    ep = Endpoints(
        postgres_dsn="postgresql://postgres:x@10.0.0.5:15432/postgres",
        kafka_bootstrap="k:9092",
        connect_url="http://c:8083",
        mysql_dsn="mysql://root:y@10.0.0.6:13306/",
    )
    assert (ep.postgres_host, ep.postgres_port) == ("10.0.0.5", 15432)
    assert (ep.mysql_host, ep.mysql_port) == ("10.0.0.6", 13306)


def test_cdc_dsns_are_host_side_even_when_connect_reaches_the_servers_elsewhere() -> None:
    # Debezium (inside Connect) dials postgres:5432 / mariadb:3306; this host dials the DSNs'
    assert (
        FULL.postgres_cdc_dsn
        == "postgresql://cdc_replication:-cdc%3Apw%2F@127.0.0.1:15432/postgres"
    )
    assert FULL.mysql_cdc_dsn == "mysql://cdc:my%20cdc%20pw@127.0.0.1:13306/"


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("{not json", "not JSON"),
        ("[1, 2]", "not a JSON object"),
        ('{"kafka_bootstrap": "k:9092", "connect_url": "http://c"}', "missing postgres_dsn"),
        (FULL.to_json().replace(": 5432", ': "5432"'), "postgres_port must be a JSON int"),
        (FULL.to_json().replace('"mysql_flavor"', '"mysql_flavour"'), "unknown mysql_flavour"),
        (FULL.to_json().replace("mysql://root:", "root:"), "mysql_dsn is not a URI"),
        (FULL.to_json().replace("postgresql://", "host=x "), "is not a URI with a host"),
    ],
)
def test_a_bad_endpoints_json_is_one_line_naming_the_fix(text: str, says: str) -> None:
    with pytest.raises(EndpointsError) as error:
        Endpoints.from_json(text, source="endpoints.json")
    message = str(error.value)
    assert says in message and "endpoints.json" in message and "\n" not in message
    assert "r00t-pw" not in message
