"""Steps shared by every source: the generated data set, integrity and lag checks."""

from __future__ import annotations

from pytest_bdd import given, parsers

from cdc_support.checks.integrity import compare_tables
from cdc_support.checks.lag import LagStats, lag_plot_png
from cdc_support.postgres.connection import PgConnection
from cdc_support.postgres.source_table import PostgresTable
from cdc_support.workload import NORMALIZERS
from pytest_cdc.report import evidence


@given(
    parsers.parse("a {table} table in a fresh PostgreSQL database"), target_fixture="source_table"
)
def fresh_source_table(table: str, pg_conn: PgConnection) -> PostgresTable:
    """Create the e-commerce schema in this scenario's own database."""
    source_table = PostgresTable(pg_conn, table)
    source_table.create()
    return source_table


@given(parsers.parse("{count:d} {table:w} generated with seed {seed:d}"))
def seed_rows(source_table: PostgresTable, count: int, table: str, seed: int) -> None:
    """Bulk-load generated rows with COPY."""
    assert table == source_table.name, f"the scenario's table is {source_table.name}, not {table}"
    rows = source_table.seed(count, seed)
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
