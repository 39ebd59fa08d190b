"""One seeded workload with no capture, then through each approach on a database of its own.

:func:`run_comparison` returns a :class:`Comparison`: the :class:`WorkloadRun` of each (the
baseline first) and each approach's customers table as it was when the run ended (without the
marker row), so the events can be replayed and compared against it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import psycopg

from cdc_support.postgres.base import CaptureApproach
from cdc_support.postgres.loader import create_schema, fetch_table
from cdc_support.postgres.measure import (
    MARKER_KEY,
    WorkloadRun,
    measure_approach,
    measure_baseline,
)
from cdc_support.workload import KEY_COLUMNS

__all__ = ["Comparison", "run_comparison"]

Table = dict[tuple[Any, ...], dict[str, Any]]


@dataclass
class Comparison:
    """The workload runs: baseline first, then one per approach, and each one's table."""

    runs: list[WorkloadRun]
    tables: dict[str, Table]

    def run(self, approach: str) -> WorkloadRun:
        """The run of one approach (by its feature name)."""
        return next(r for r in self.runs if r.approach == approach)

    def __repr__(self) -> str:
        return f"Comparison({', '.join(r.approach for r in self.runs)})"


def run_comparison(
    baseline_conn: psycopg.Connection[Any],
    approaches: Iterable[str],
    *,
    make_database: Callable[[str], Any],
    make_approach: Callable[..., CaptureApproach],
    operations: int,
    seed: int,
    on_run: Callable[[WorkloadRun], None] = lambda run: None,
) -> Comparison:
    """Baseline on ``baseline_conn``'s customers table; then each approach, one at a time, on a
    fresh database (``make_database(name)`` -> object with ``.dsn``) made by
    ``make_approach(name, table=..., database=...)``; each approach is closed after its run."""
    runs = [measure_baseline(baseline_conn, operations=operations, seed=seed)]
    tables: dict[str, Table] = {}
    for name in approaches:
        database = make_database(name)
        with psycopg.connect(database.dsn, autocommit=True) as conn:
            create_schema(conn)
            approach = make_approach(name, table="customers", database=database)
            try:
                run = measure_approach(approach, conn, operations=operations, seed=seed)
            finally:
                tables[name] = fetch_table(conn, "customers", KEY_COLUMNS["customers"])
                approach.close()
        tables[name].pop((MARKER_KEY,), None)
        runs.append(run)
        on_run(run)
    return Comparison(runs, tables)
