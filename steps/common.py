"""Steps shared by every source: the generated data set, integrity and lag checks."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest
from pytest_bdd import given, parsers

from cdc_support.checks.integrity import compare_tables
from cdc_support.checks.lag import LagStats, lag_plot_png
from cdc_support.postgres.connection import PgConnection
from cdc_support.workload import (
    KEY_COLUMNS,
    NORMALIZERS,
    EcommerceGenerator,
    Operation,
    create_schema,
    fetch_table,
)
from pytest_cdc import evidence
from pytest_cdc.janitor import PgDatabase


@dataclass
class SourceTable:
    """The source table a scenario writes to, with what was written to it."""

    conn: PgConnection
    name: str
    key: tuple[str, ...]
    database: PgDatabase
    seeded: list[dict[str, Any]] = field(default_factory=list)
    workload: list[Operation] = field(default_factory=list)

    def rows(self) -> dict[tuple[Any, ...], dict[str, Any]]:
        """The table's current contents by key."""
        return fetch_table(self.conn, self.name, self.key)

    def __repr__(self) -> str:
        return f"SourceTable({self.database.name}.{self.name})"


@dataclass(frozen=True)
class SourceDatabase:
    """This scenario's database and a connection to it (short repr for the report)."""

    conn: PgConnection
    database: PgDatabase

    def __repr__(self) -> str:
        return f"database {self.database.name}"


@pytest.fixture
def source_db(pg_conn: PgConnection, pg_database: PgDatabase) -> SourceDatabase:
    """The scenario's own PostgreSQL database, as steps see it."""
    return SourceDatabase(pg_conn, pg_database)


@given(
    parsers.parse("a {table} table in a fresh PostgreSQL database"), target_fixture="source_table"
)
def fresh_source_table(table: str, source_db: SourceDatabase) -> SourceTable:
    """Create the e-commerce schema in this scenario's own database."""
    create_schema(source_db.conn)
    return SourceTable(source_db.conn, table, KEY_COLUMNS[table], source_db.database)


@given(parsers.parse("{count:d} {table} generated with seed {seed:d}"))
def seed_rows(source_table: SourceTable, count: int, table: str, seed: int) -> None:
    """Bulk-load generated rows with COPY."""
    gen = EcommerceGenerator(seed)
    rows = getattr(gen, table)(count)
    gen.bulk_load(source_table.conn, table, rows)
    source_table.seeded = rows
    evidence.attach_html(
        f"first generated {table}", evidence.table_html(f"{table} (seed {seed})", rows[:10])
    )


def assert_tables_equal(expected: dict, actual: dict, what: str) -> None:
    """Compare by count, checksum and per-key diff; attach the diff when they disagree."""
    report = compare_tables(expected, actual, normalizers=NORMALIZERS)
    evidence.attach_json(f"integrity: {what}", report.as_dict())
    if not report.ok:
        evidence.attach_html(f"per-key diff: {what}", report.diff.to_html())
    assert report.ok, f"integrity failure ({what}): {report.summary()}"


def assert_lag_under(
    samples: list[float], limit: float, what: str, path: str = "source commit → Kafka"
) -> LagStats:
    """Attach p50/p95/p99 and a plot, then check p95 against the documented limit."""
    stats = LagStats.from_samples(samples)
    evidence.attach_json(f"lag: {what}", {**stats.as_dict(), "limit_p95_seconds": limit})
    evidence.attach_png(
        f"lag plot: {what}",
        lag_plot_png({what: samples}, title=f"{what}: {path}", limit_seconds=limit),
    )
    assert stats.p95 < limit, f"lag limit breached ({what}): p95 {stats.p95:.3f}s ≥ {limit}s; " + (
        stats.summary()
    )
    return stats
