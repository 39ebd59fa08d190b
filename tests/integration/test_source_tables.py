"""The SourceTable implementations against the stack's real PostgreSQL and MariaDB, and
:func:`produce_one` against its real Kafka broker."""

from __future__ import annotations

import uuid

import pytest
from confluent_kafka import Consumer

from cdc_support.mysql.source_table import MySqlSourceTable
from cdc_support.postgres.source_table import PostgresTable
from cdc_support.sinks.envelopes import produce_one
from cdc_support.source_table import SourceTable
from cdc_support.waiting import wait_until
from cdc_support.workload import EcommerceGenerator

SOURCES = [
    pytest.param("PostgreSQL", marks=pytest.mark.postgres, id="postgres"),
    pytest.param("MariaDB", marks=pytest.mark.mysql, id="mariadb"),
]


def _table(source: str, request: pytest.FixtureRequest) -> SourceTable:
    if source == "PostgreSQL":
        return PostgresTable(request.getfixturevalue("pg_conn"))
    return MySqlSourceTable(request.getfixturevalue("mysql_conn"))


@pytest.mark.parametrize("source", SOURCES)
def test_a_source_table_seeds_writes_and_counts_its_change_events(
    source: str, request: pytest.FixtureRequest
) -> None:
    table = _table(source, request)
    table.seed(10, seed=5)
    assert len(table.rows()) == 10
    ops = table.run_workload(EcommerceGenerator(6), 30)
    assert table.workload == ops and len(ops) == 30
    table.add_column("loyalty_tier")
    gen = EcommerceGenerator(7)
    gen.reserve_keys_above("customers", max(k[0] for k in table.rows()))
    row = {**gen.customer(), "loyalty_tier": "silver"}
    table.insert_row(row)
    first = min(table.rows())
    table.update_row(first, {"loyalty_tier": "gold"})
    table.execute(f"DELETE FROM {table.quote('customers')} WHERE id = %s", (row["id"],))

    rows = table.rows()
    assert (row["id"],) not in rows, "execute ran the DELETE in its own committed transaction"
    assert rows[first]["loyalty_tier"] == "gold"
    assert all(r["loyalty_tier"] is None for k, r in rows.items() if k != first)
    assert table.change_events == 10 + 30 + 2  # the DELETE went through execute: not counted
    assert repr(table) == f"{source} customers table"


@pytest.mark.debezium
def test_produce_one_says_where_the_record_landed(cdc_stack) -> None:
    topic = f"produce-one-{uuid.uuid4().hex[:8]}"
    first = produce_one(cdc_stack.kafka_bootstrap, topic, b"k", b"not JSON {")
    second = produce_one(cdc_stack.kafka_bootstrap, topic, None, b"v")
    assert (first.topic, first.partition) == (topic, 0)
    assert second.offset == first.offset + 1
    consumer = Consumer(
        {
            "bootstrap.servers": cdc_stack.kafka_bootstrap,
            "group.id": f"g-{topic}",
            "auto.offset.reset": "earliest",
        }
    )
    try:
        consumer.subscribe([topic])
        seen: list[tuple[bytes | None, bytes | None, int]] = []

        def read() -> int:
            msg = consumer.poll(0.5)
            if msg is not None and msg.error() is None:
                seen.append((msg.key(), msg.value(), msg.offset()))
            return len(seen)

        wait_until(read, done=lambda n: n >= 2, timeout=60, interval=0.1, expected="2 records")
    finally:
        consumer.close()
    assert seen == [(b"k", b"not JSON {", first.offset), (None, b"v", second.offset)]
