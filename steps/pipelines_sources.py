"""Steps for features/pipelines/lakehouse_sinks.feature: the source side of a pipeline.

The ``<source>`` column picks the database (PostgreSQL or MariaDB); the steps write to it
through :class:`cdc_support.source_table.SourceTable`, so one Scenario Outline states each rule
once. Debezium captures the table (values with their schema, so the sink gets typed columns).
"""

from __future__ import annotations

import pytest
from pytest_bdd import given, parsers, when

from cdc_support.mysql.source_table import MySqlSourceTable
from cdc_support.postgres.source_table import PostgresTable
from cdc_support.source_table import SourceTable, tally
from cdc_support.workload import EcommerceGenerator
from pytest_cdc.fixtures.stack import ScenarioFixtures
from pytest_cdc.report import evidence
from steps.pipelines import CapturedTable

TABLE = "customers"
SOURCES = ("PostgreSQL", "MariaDB")
SCHEMA_IN_VALUES = {
    "value.converter": "org.apache.kafka.connect.json.JsonConverter",
    "value.converter.schemas.enable": "true",
}
"""Connector overrides: record values carry their Kafka Connect schema, so the sink can give
its table typed columns (a timestamptz column arrives as io.debezium.time.ZonedTimestamp)."""
CONNECTOR_FACTORIES = {
    "PostgreSQL": "pg_connector_factory",
    "MariaDB": "mysql_connector_factory",
}
TIERS = ("bronze", "silver", "gold")


def _source_table(source: str, fixtures: ScenarioFixtures) -> SourceTable:
    """The scenario's own database of that kind, as a source table."""
    if source == "PostgreSQL":
        return PostgresTable(fixtures.get("pg_conn"), TABLE)
    if source == "MariaDB":
        return MySqlSourceTable(fixtures.get("mysql_conn"), TABLE, label="MariaDB")
    raise pytest.UsageError(f"unknown source {source!r} in the feature; use one of {SOURCES}")


@pytest.fixture
def pipeline_source(captured_table: CapturedTable) -> SourceTable:
    """The pipeline's source table (set up by the Given step that captures it)."""
    return captured_table.table


@given(
    parsers.parse(
        "a customers table in {source} with {count:d} rows generated with seed {seed:d}, "
        "captured by Debezium"
    ),
    target_fixture="captured_table",
)
def captured_source(
    source: str, count: int, seed: int, cdc_fixtures: ScenarioFixtures
) -> CapturedTable:
    """Create and fill the table, then register Debezium (its snapshot reads the rows)."""
    table = _source_table(source, cdc_fixtures)
    table.seed(count, seed)
    factory = cdc_fixtures.get(CONNECTOR_FACTORIES[source])
    connector = factory([table.name], extra=SCHEMA_IN_VALUES)
    evidence.attach_json(
        "connector config", {k: v for k, v in connector.config.items() if "password" not in k}
    )
    return CapturedTable(table, connector)


@when(
    parsers.parse(
        "a workload of {count:d} operations with seed {seed:d} runs against the source table"
    )
)
def pipeline_workload(pipeline_source: SourceTable, count: int, seed: int) -> None:
    """Inserts, updates and deletes, each its own transaction (its commit time recorded)."""
    run_recorded_workload(pipeline_source, count, seed)


def run_recorded_workload(source: SourceTable, count: int, seed: int) -> dict[str, int]:
    """Run ``count`` operations on ``source``; attach and return how many of each kind."""
    counts = tally(source.run_workload(EcommerceGenerator(seed + 1), count))
    evidence.attach_json("workload", {"operations": count, "by kind": counts})
    return counts


@when(parsers.parse("the column {column} is added to the source table"))
def add_source_column(pipeline_source: SourceTable, column: str) -> None:
    """ALTER TABLE ... ADD COLUMN: existing rows read null in it."""
    pipeline_source.add_column(column)


@when(
    parsers.parse(
        "{inserted:d} new customers with a loyalty tier are inserted and {updated:d} existing "
        "customers get one"
    ),
    target_fixture="rows_written_after_alter",
)
def rows_with_tier(
    pipeline_source: SourceTable, inserted: int, updated: int
) -> set[tuple[object, ...]]:
    """New rows carry the column; a few old rows are updated to get a value. Returns the
    keys written since the column was added."""
    gen = EcommerceGenerator(500)
    gen.reserve_keys_above(pipeline_source.name, max(k[0] for k in pipeline_source.rows()))
    touched: set[tuple[object, ...]] = set()
    for index in range(inserted):
        row = {**gen.customer(), "loyalty_tier": TIERS[index % len(TIERS)]}
        pipeline_source.insert_row(row)
        touched.add((row["id"],))
    for key in sorted(pipeline_source.rows())[:updated]:
        pipeline_source.update_row(key, {"loyalty_tier": "gold"})
        touched.add(key)
    return touched
