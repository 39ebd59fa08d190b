"""Steps for features/postgres/approaches.feature: what each approach adds to the source
database (and leaves), then one workload through each approach (the comparison table)."""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable
from typing import Any

from pytest_bdd import parsers, then, when

from cdc_support.checks.integrity import compare_tables
from cdc_support.checks.lag import LagStats, lag_plot_png
from cdc_support.checks.replay import rebuild_from_events
from cdc_support.postgres.approach_story import Captured, expected_kinds
from cdc_support.postgres.comparison import Comparison, run_comparison
from cdc_support.postgres.measure import (
    ApproachOutcomes,
    WorkloadRun,
    comparison_rows,
    comparison_table_html,
)
from cdc_support.postgres.source_table import PostgresTable
from cdc_support.workload import NORMALIZERS
from pytest_cdc.fixtures.capture import POLL_INTERVAL, CaptureFactory
from pytest_cdc.report import evidence
from steps.common import assert_tables_equal
from steps.postgres_approach_capture import ORDER, step

# --------------------------------------------------------------------------- footprint


@then(parsers.parse("the source database gained {objects}"))
def source_gained(capture: Captured, objects: str) -> None:
    """The catalog after start() minus before: exactly these kinds of object."""
    gained = Counter(i.kind for i in capture.footprint.added)
    evidence.attach_json("added to the source database", capture.footprint.as_dict())
    assert not capture.footprint.removed, capture.footprint.summary()
    assert gained == expected_kinds(objects), f"expected {objects}; {capture.footprint.summary()}"


@then(step("{approach:Approach} {changes} the source schema"))
def changes_schema(
    capture: Captured, pg_approach_outcomes: ApproachOutcomes, approach: str, changes: str
) -> None:
    """Tables, columns, indexes, sequences, triggers or functions count as schema changes."""
    kinds = sorted(capture.footprint.kinds())
    changed = capture.footprint.schema_changed
    pg_approach_outcomes.record(
        approach, "source schema change", yes=changed, detail="adds " + ", ".join(kinds)
    )
    assert changes in ("changes", "does not change"), f"unknown {changes!r}"
    assert changed == (changes == "changes"), capture.footprint.summary()


@when(step("{approach:Approach} is closed"))
def approach_closed(capture: Captured, approach: str) -> None:
    """Close: stop, and remove everything the approach installed."""
    capture.approach.close()


@then(step("nothing {approach:Approach} added is left in the source database"))
def nothing_left(capture: Captured, source_table: PostgresTable, approach: str) -> None:
    """The catalog equals the one before the approach started."""
    left = capture.left_behind(source_table.conn)
    evidence.attach_json("left in the source database after close", left.as_dict())
    assert left.empty, f"{approach} left: {left.summary()}"


# --------------------------------------------------------------------------- comparison


def _meanwhile() -> str:
    """What else wrote to the server while the workload ran: nothing, unless under `-n`."""
    workers = os.environ.get("PYTEST_XDIST_WORKER_COUNT")
    if workers:
        return f"under pytest -n {workers}, the other workers' scenarios wrote WAL meanwhile"
    return "nothing else ran meanwhile"


def _attach_run(run: WorkloadRun) -> None:
    evidence.attach_json(f"{run.approach}: measured", run.as_dict())


@when(
    parsers.parse(
        "a workload of {count:d} operations with seed {seed:d} runs with no capture, then once "
        "through each approach on a table of its own"
    ),
    target_fixture="comparison",
)
def comparison_runs(
    source_table: PostgresTable,
    pg_capture_factory: CaptureFactory,
    pg_database_factory: Callable[[str], Any],
    count: int,
    seed: int,
) -> Comparison:
    """Baseline on this scenario's table; each approach on a fresh database, one at a time."""
    return run_comparison(
        source_table.conn,
        ORDER,
        make_database=pg_database_factory,
        make_approach=pg_capture_factory,
        operations=count,
        seed=seed,
        on_run=_attach_run,
    )


@then(
    "the comparison table and a lag plot with one line per approach are attached, with the "
    "numbers measured in this run"
)
def comparison_attached(comparison: Comparison, pg_approach_outcomes: ApproachOutcomes) -> None:
    """One row per approach: the rules as observed in this session, the measured numbers."""
    note = (
        "Rules: as the scenarios of this feature observed them in this run (and the workload's "
        "own counts); 'not run in this session' when that scenario did not run. Numbers: one "
        f"seeded workload, each approach on a table of its own; pollers poll every "
        f"{POLL_INTERVAL} s; WAL bytes are server-wide ({_meanwhile()})."
    )
    runs = comparison.runs
    evidence.attach_html(
        "comparison of the approaches", comparison_table_html(runs, pg_approach_outcomes, note=note)
    )
    evidence.attach_json("comparison (data)", comparison_rows(runs, pg_approach_outcomes))
    series = {r.approach: r.lag_samples for r in runs if r.events}
    evidence.attach_png(
        "lag per approach",
        lag_plot_png(series, title="source commit → delivered, per approach"),
    )
    for run in runs[1:]:
        assert run.events, f"{run.approach} delivered nothing"
        assert run.lag is not None and run.wal_bytes > 0, f"{run.approach}: nothing measured"


def _datatable_rows(datatable: list[list[str]]) -> list[dict[str, str]]:
    header, *rows = datatable
    return [dict(zip(header, row, strict=True)) for row in rows]


@then("each approach's events rebuild its source table as its rules say:")
def rebuilt_as_rules_say(comparison: Comparison, datatable: list[list[str]]) -> None:
    """Exactly once and equal, or — for polling — every surviving row, plus deleted rows it saw."""
    for row in _datatable_rows(datatable):
        name, expectation = row["approach"], row["rebuilt table"]
        run, source = comparison.run(name), comparison.tables[name]
        rebuilt = rebuild_from_events(run.events)
        if expectation.startswith("equals the source"):
            report = run.delivery()
            evidence.attach_json(f"{name}: delivery accounting", report.as_dict())
            assert_tables_equal(source, rebuilt, f"{name}: rebuilt vs source")
            assert report.exactly_once, f"{name}: {report.summary()}"
        elif expectation.startswith("holds every surviving row's last state"):
            extra_keys = set(rebuilt) - set(source)
            deleted = {o.key for o in run.operations if o.op == "delete"}
            surviving = {k: rebuilt[k] for k in source if k in rebuilt}
            check = compare_tables(source, surviving, normalizers=NORMALIZERS)
            evidence.attach_json(
                f"{name}: rebuilt vs source",
                {**check.as_dict(), "deleted rows still in the rebuilt table": len(extra_keys)},
            )
            assert check.ok, f"{name}: {check.summary()}"
            # How many deleted rows it kept depends on whether a poll fell between a row's
            # insert and its delete: the Hard deletes scenario shows the miss deterministically.
            assert extra_keys <= deleted, (
                f"{name}: rows beyond the source should be deleted rows; got {len(extra_keys)} "
                f"extra, {len(extra_keys - deleted)} of them never deleted"
            )
        else:
            raise AssertionError(f"unknown expectation {expectation!r} in the table")


@then("the p95 lag of each approach is under its documented limit:")
def p95_under_limits(comparison: Comparison, datatable: list[list[str]]) -> None:
    """The documented limit per approach; the measured percentiles are attached."""
    measured: dict[str, Any] = {}
    problems = []
    for row in _datatable_rows(datatable):
        name, limit = row["approach"], float(row["limit in seconds"])
        stats: LagStats | None = comparison.run(name).lag
        assert stats is not None, f"{name}: no lag samples"
        measured[name] = {**stats.as_dict(), "limit_p95_seconds": limit, "why": row["why"]}
        if stats.p95 >= limit:
            problems.append(f"{name}: p95 {stats.p95:.3f}s ≥ {limit}s ({stats.summary()})")
    evidence.attach_json("lag per approach", measured)
    assert not problems, "lag limit breached: " + "; ".join(problems)
