"""Steps for features/postgres/approaches.feature: four PostgreSQL CDC approaches, one rule at a
time, then one workload through each (the comparison table).

Every approach is a :class:`~cdc_support.postgres.CaptureApproach` made by the
``pg_capture_factory`` fixture, whose teardown closes it and fails if anything is left.
``<approach>`` in the feature is one of the names in ``APPROACHES``; the step patterns only
accept those names, so they cannot shadow another feature's sentences.
"""

from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import psycopg
import pytest
from pytest_bdd import given, parsers, then, when

from cdc_support.checks.delivery import committed_ops, delivery_report
from cdc_support.checks.integrity import compare_tables, rebuild_from_events
from cdc_support.checks.lag import LagStats, lag_plot_png
from cdc_support.events import ChangeEvent
from cdc_support.postgres import APPROACHES, CaptureApproach
from cdc_support.postgres.catalog import (
    SCHEMA_KINDS,
    CatalogDiff,
    CatalogItem,
    catalog_diff,
    catalog_snapshot,
)
from cdc_support.postgres.measure import (
    MARKER_KEY,
    ApproachOutcomes,
    WorkloadRun,
    comparison_rows,
    comparison_table_html,
    measure_approach,
    measure_baseline,
)
from cdc_support.workload import (
    KEY_COLUMNS,
    NORMALIZERS,
    EcommerceGenerator,
    Operation,
    create_schema,
    fetch_table,
)
from pytest_cdc import evidence
from pytest_cdc.pg_approach_fixtures import POLL_INTERVAL, CaptureFactory
from steps.common import SourceTable, assert_tables_equal

EVENT_TIMEOUT = 60.0
ORDER = ("logical decoding", "Debezium", "trigger audit", "timestamp polling")


def _approach_name(text: str) -> str:
    return text


_approach_name.pattern = "|".join(re.escape(n) for n in ORDER)  # type: ignore[attr-defined]
_TYPES = {"Approach": _approach_name}


def step(text: str) -> parsers.parse:
    """A parse pattern whose ``{approach:Approach}`` matches only the four approach names."""
    return parsers.parse(text, extra_types=_TYPES)


assert set(ORDER) == set(APPROACHES), "ORDER must list every approach"


@dataclass
class Captured:
    """The approach a scenario runs, and what starting it added to the source database."""

    approach: CaptureApproach
    before: frozenset[CatalogItem]
    footprint: CatalogDiff

    def wait_for_key(self, key: tuple[Any, ...], what: str) -> list[ChangeEvent]:
        """Wait until some event for ``key`` arrived; all events delivered by then."""
        return self.approach.wait_events(
            lambda events: any(e.key == key for e in events), expected=what, timeout=EVENT_TIMEOUT
        )

    def __repr__(self) -> str:
        return self.approach.name


@dataclass
class Story:
    """What the scenario wrote, in commit order, and what the checks need to know."""

    rule: str = ""
    operations: list[Operation] = field(default_factory=list)
    names: list[str] = field(default_factory=list)
    old_row: dict[str, Any] | None = None

    def __repr__(self) -> str:
        return f"{len(self.operations)} writes"


@pytest.fixture
def story() -> Story:
    """The writes of this scenario."""
    return Story()


@pytest.fixture
def side_connections() -> Iterator[list[psycopg.Connection]]:
    """Extra connections (a long transaction); closed before the approaches are."""
    opened: list[psycopg.Connection] = []
    yield opened
    for conn in opened:
        conn.close()


# --------------------------------------------------------------------------- writes


def _insert(source: SourceTable, story: Story, key: int) -> dict[str, Any]:
    row = EcommerceGenerator(1000 + key).customer(key=key)
    cols = ", ".join(row)
    marks = ", ".join(["%s"] * len(row))
    source.conn.execute(f"INSERT INTO customers ({cols}) VALUES ({marks})", list(row.values()))
    story.operations.append(Operation("insert", "customers", (key,), row, time.time()))
    return row


def _rename(source: SourceTable, story: Story, key: int, name: str) -> None:
    source.conn.execute("UPDATE customers SET full_name = %s WHERE id = %s", (name, key))
    story.operations.append(Operation("update", "customers", (key,), None, time.time()))
    story.names.append(name)


def _current(source: SourceTable, key: int) -> dict[str, Any]:
    row = source.rows().get((key,))
    assert row is not None, f"customer {key} is not in the table"
    return row


# --------------------------------------------------------------------------- capture


@given(step("{approach:Approach} captures the customers table"), target_fixture="capture")
@when(step("{approach:Approach} captures the customers table"), target_fixture="capture")
def approach_captures(
    approach: str, pg_capture_factory: CaptureFactory, source_table: SourceTable
) -> Captured:
    """Make the approach on this scenario's database and start it."""
    before = catalog_snapshot(source_table.conn)
    made = pg_capture_factory(approach, table=source_table.name)
    made.start()
    footprint = catalog_diff(before, catalog_snapshot(source_table.conn))
    evidence.attach_json(
        f"{approach}: how it captures",
        {
            **made.describe(),
            "declared": made.declared.as_dict(),
            "added to the source": footprint.as_dict(),
        },
    )
    if approach == "Debezium":
        config = getattr(made, "config", {})
        evidence.attach_json(
            "connector config", {k: v for k, v in config.items() if "password" not in k}
        )
    return Captured(made, before, footprint)


@when(step("customer {key:d} is inserted and {approach:Approach} has delivered it"))
def insert_and_wait(source_table: SourceTable, capture: Captured, story: Story, key: int, approach):
    """One insert; wait until the approach delivered it (so later writes come after a poll)."""
    story.old_row = _insert(source_table, story, key)
    capture.wait_for_key((key,), f"the insert of customer {key}")


@given(step("customers 1 and 2 are inserted and {approach:Approach} has delivered them"))
def insert_two_and_wait(source_table: SourceTable, capture: Captured, story: Story, approach):
    """Two inserts, delivered before the scenario goes on."""
    for key in (1, 2):
        _insert(source_table, story, key)
    capture.approach.wait_events(
        lambda evs: {(1,), (2,)} <= {e.key for e in evs},
        expected="the inserts of customers 1 and 2",
        timeout=EVENT_TIMEOUT,
    )


@when("customer 1 is deleted, then customer 2 is inserted as a marker")
def delete_then_marker(source_table: SourceTable, story: Story):
    """A hard delete, then a marker row: everything before it is delivered once it is."""
    story.rule = "hard deletes"
    story.old_row = _current(source_table, 1)
    source_table.conn.execute("DELETE FROM customers WHERE id = 1")
    story.operations.append(Operation("delete", "customers", (1,), story.old_row, time.time()))
    _insert(source_table, story, 2)


@when(step("customer 1 is renamed {count:d} times between two polls of {approach:Approach}"))
def renamed_between_polls(
    source_table: SourceTable, capture: Captured, story: Story, count: int, approach
):
    """No poll (no read, for the log-based ones) runs while the renames are committed."""
    story.rule = "intermediate updates"
    base = _current(source_table, 1)["full_name"]
    with capture.approach.between_polls():
        for n in range(1, count + 1):
            _rename(source_table, story, 1, f"{base} #{n}")


@when("customer 2 is inserted as a marker")
def marker_two(source_table: SourceTable, story: Story):
    """A row written last: once it is delivered, everything before it has been."""
    _insert(source_table, story, 2)


@when("customer 1 is renamed, then customer 2 is inserted as a marker")
def rename_then_marker(source_table: SourceTable, story: Story):
    """One update, then the marker."""
    story.rule = "before-image"
    story.old_row = _current(source_table, 1)
    _rename(source_table, story, 1, story.old_row["full_name"] + " Jr.")
    _insert(source_table, story, 2)


# --------------------------------------------------------------------------- rule checks


def _events_for(events: list[ChangeEvent], key: tuple[Any, ...]) -> list[ChangeEvent]:
    return [e for e in events if e.key == key]


@then(step('by the marker, {approach:Approach} delivered "{ops}" for customer 1'))
def delivered_ops_by_marker(
    capture: Captured,
    story: Story,
    pg_approach_outcomes: ApproachOutcomes,
    approach: str,
    ops: str,
):
    """Wait for the marker (customer 2); compare customer 1's delivered ops."""
    events = capture.wait_for_key((2,), "the marker row (customer 2)")
    mine = _events_for(events, (1,))
    evidence.attach_events(f"{approach}: events for customer 1", mine)
    got = [e.op for e in mine]
    expected = [o.strip() for o in ops.split(",")]
    if story.rule == "hard deletes":
        yes = "d" in got
        detail = f'delivered "{", ".join(got)}" for an insert then a delete'
        pg_approach_outcomes.record(approach, story.rule, yes=yes, detail=detail)
    elif story.rule == "intermediate updates":
        updates = got.count("u")
        detail = f"{updates} of 3 updates delivered"
        pg_approach_outcomes.record(approach, story.rule, yes=updates == 3, detail=detail)
    assert got == expected, f"{approach}: expected ops {expected} for customer 1, got {got}"
    for event in mine:
        if event.op == "d":
            assert story.old_row is not None and event.before is not None
            assert event.before.get("full_name") == story.old_row["full_name"], event.before


@then(step("the updates {approach:Approach} delivered carry {names}"))
def updates_carry_names(capture: Captured, story: Story, approach: str, names: str):
    """Which names the delivered updates of customer 1 carry, in order."""
    updates = [e for e in _events_for(capture.approach.delivered(), (1,)) if e.op == "u"]
    carried = [(e.after or {}).get("full_name") for e in updates]
    expected = {
        "every new name, in order": story.names,
        "only the last name": story.names[-1:],
    }.get(names)
    assert expected is not None, f"unknown expectation {names!r} in the Examples table"
    assert carried == expected, f"{approach}: updates carry {carried}, expected {expected}"


@then(step("the before-image of the update {approach:Approach} delivered is {before}"))
def update_before_image(
    capture: Captured,
    story: Story,
    source_table: SourceTable,
    pg_approach_outcomes: ApproachOutcomes,
    approach: str,
    before: str,
):
    """The whole old row (every column, the old name), or nothing."""
    updates = [e for e in _events_for(capture.approach.delivered(), (1,)) if e.op == "u"]
    assert updates, f"{approach} delivered no update for customer 1"
    event = updates[0]
    evidence.attach_json(f"{approach}: the update event", event.to_json_dict())
    old = story.old_row or {}
    columns = set(source_table.rows()[(2,)])
    whole = (
        event.before is not None
        and columns <= set(event.before)
        and event.before["full_name"] == old.get("full_name")
        and event.before["email"] == old.get("email")
    )
    detail = "the whole old row" if whole else f"before-image: {event.before or 'none'}"
    pg_approach_outcomes.record(approach, "before-image", yes=whole, detail=detail)
    if before == "the whole old row":
        assert whole, f"{approach}: expected the whole old row {old}, got {event.before}"
    elif before == "absent":
        assert event.before is None, f"{approach}: expected no before-image, got {event.before}"
    else:
        raise AssertionError(f"unknown expectation {before!r} in the Examples table")


# --------------------------------------------------------------------------- restart


@when(step("{count:d} customers are inserted and {approach:Approach} has delivered them"))
def insert_many_and_wait(
    source_table: SourceTable, capture: Captured, story: Story, count: int, approach
):
    """Inserts of keys 1..count, each its own transaction; wait until all are delivered."""
    for key in range(1, count + 1):
        _insert(source_table, story, key)
    capture.approach.wait_events(
        lambda evs: len({e.key for e in evs}) >= count,
        expected=f"the inserts of customers 1..{count}",
        timeout=EVENT_TIMEOUT,
    )


@when(step("{approach:Approach} is stopped"))
def approach_stopped(capture: Captured, approach):
    """Stop consuming; the approach keeps its position (slot, offsets, checkpoint)."""
    capture.approach.stop()
    evidence.attach_json(f"{approach} stopped", capture.approach.describe())


@when(
    parsers.parse(
        "while it is stopped, {count:d} more customers are inserted and the first "
        "{renamed:d} are renamed"
    )
)
def write_while_stopped(source_table: SourceTable, story: Story, count: int, renamed: int):
    """New rows, and one update each of rows delivered before the stop."""
    first_new = max(o.key[0] for o in story.operations) + 1
    for key in range(first_new, first_new + count):
        _insert(source_table, story, key)
    for key in range(1, renamed + 1):
        _rename(source_table, story, key, f"Renamed while stopped {key}")


@when(step("{approach:Approach} is started again from its saved position"))
def approach_restarted(capture: Captured, approach):
    """Start again: a new connection, resuming from the saved position only."""
    capture.approach.start()
    evidence.attach_json(f"{approach} restarted", capture.approach.describe())


@when(parsers.parse("{count:d} more customers are inserted"))
def insert_more(source_table: SourceTable, story: Story, count: int):
    """More new rows after the restart."""
    first_new = max(o.key[0] for o in story.operations) + 1
    for key in range(first_new, first_new + count):
        _insert(source_table, story, key)


@then(step("{approach:Approach} delivered every committed change {how}, in commit order per key"))
def every_change_delivered(
    capture: Captured,
    story: Story,
    pg_approach_outcomes: ApproachOutcomes,
    approach: str,
    how: str,
):
    """Per key, the committed ops arrive in order; nothing lost (and, exactly once, nothing
    repeated)."""
    committed = committed_ops(story.operations)
    last = story.operations[-1].key
    events = capture.approach.wait_events(
        lambda evs: not delivery_report(committed, evs).lost and any(e.key == last for e in evs),
        expected=f"all {len(committed)} committed changes",
        timeout=EVENT_TIMEOUT,
    )
    report = delivery_report(committed, events)
    evidence.attach_json(f"{approach}: delivery accounting", report.as_dict())
    pg_approach_outcomes.record(
        approach,
        "restart without loss",
        yes=not report.lost,
        detail=f"{report.delivered} events for {report.expected} changes: "
        f"{sum(map(len, report.lost.values()))} lost, "
        f"{sum(map(len, report.duplicated.values()))} duplicated",
    )
    assert not report.lost and not report.reordered, report.summary()
    if how == "exactly once":
        assert report.exactly_once, report.summary()
    elif how != "at least once":
        raise AssertionError(f"unknown expectation {how!r} in the Examples table")


# --------------------------------------------------------------------------- long transaction


@when("a long transaction renames customer 1 and stays open")
def long_transaction(
    source_table: SourceTable, story: Story, side_connections: list[psycopg.Connection]
):
    """A second session updates customer 1 and does not commit yet."""
    conn = psycopg.connect(source_table.database.dsn, autocommit=False)
    side_connections.append(conn)
    story.old_row = _current(source_table, 1)
    name = story.old_row["full_name"] + " (long transaction)"
    conn.execute("UPDATE customers SET full_name = %s WHERE id = 1", (name,))
    story.names.append(name)


@when(
    step("customer 2 is renamed in a short transaction and {approach:Approach} has delivered that")
)
def short_transaction(source_table: SourceTable, capture: Captured, story: Story, approach):
    """Customer 2's rename commits first; wait until the approach delivered it."""
    name = _current(source_table, 2)["full_name"] + " (short transaction)"
    _rename(source_table, story, 2, name)
    capture.approach.wait_events(
        lambda evs: any(e.key == (2,) and e.op == "u" for e in evs),
        expected="the rename of customer 2",
        timeout=EVENT_TIMEOUT,
    )


@when("the long transaction commits, then customer 3 is inserted as a marker")
def long_commits(source_table: SourceTable, story: Story, side_connections):
    """Commit the long transaction, then write the marker."""
    side_connections[-1].commit()
    story.operations.append(Operation("update", "customers", (1,), None, time.time()))
    _insert(source_table, story, 3)


@then(step("by the marker, customer 1's rename was {verdict} by {approach:Approach}"))
def long_rename_verdict(
    capture: Captured,
    story: Story,
    pg_approach_outcomes: ApproachOutcomes,
    verdict: str,
    approach: str,
):
    """Wait for the marker (customer 3); was the long transaction's update delivered?"""
    events = capture.wait_for_key((3,), "the marker row (customer 3)")
    renamed = [
        e
        for e in _events_for(events, (1,))
        if e.op == "u" and (e.after or {}).get("full_name") == story.names[0]
    ]
    evidence.attach_events(f"{approach}: everything delivered", events)
    delivered = bool(renamed)
    pg_approach_outcomes.record(
        approach,
        "long transaction",
        yes=delivered,
        detail="its update was delivered" if delivered else "its update was never delivered",
    )
    assert verdict in ("delivered", "missed"), f"unknown verdict {verdict!r}"
    assert delivered == (verdict == "delivered"), (
        f"{approach}: expected customer 1's rename to be {verdict}, but it was "
        f"{'delivered' if delivered else 'not delivered'}"
    )


# --------------------------------------------------------------------------- footprint

_KINDS = SCHEMA_KINDS | {"publication", "replication slot", "replica identity"}


def _expected_kinds(text: str) -> Counter[str]:
    """``a table, 2 indexes, REPLICA IDENTITY FULL`` -> Counter of catalog kinds."""
    counts: Counter[str] = Counter()
    for item in (i.strip() for i in text.split(",")):
        if item.upper().startswith("REPLICA IDENTITY"):
            counts["replica identity"] += 1
            continue
        match = re.fullmatch(r"(a|an|\d+) (.+)", item)
        assert match, f"cannot read {item!r}: write 'a <kind>' or '<n> <kinds>'"
        kind = match[2]
        for plural in ("es", "s"):
            if kind not in _KINDS and kind.endswith(plural) and kind[: -len(plural)] in _KINDS:
                kind = kind[: -len(plural)]
        assert kind in _KINDS, f"unknown kind {kind!r}; one of {sorted(_KINDS)}"
        counts[kind] += 1 if match[1] in ("a", "an") else int(match[1])
    return counts


@then(parsers.parse("the source database gained {objects}"))
def source_gained(capture: Captured, objects: str):
    """The catalog after start() minus before: exactly these kinds of object."""
    gained = Counter(i.kind for i in capture.footprint.added)
    evidence.attach_json("added to the source database", capture.footprint.as_dict())
    assert not capture.footprint.removed, capture.footprint.summary()
    assert gained == _expected_kinds(objects), f"expected {objects}; {capture.footprint.summary()}"


@then(step("{approach:Approach} {changes} the source schema"))
def changes_schema(
    capture: Captured, pg_approach_outcomes: ApproachOutcomes, approach: str, changes: str
):
    """Tables, columns, indexes, sequences, triggers or functions count as schema changes."""
    kinds = sorted(capture.footprint.kinds())
    changed = capture.footprint.schema_changed
    pg_approach_outcomes.record(
        approach, "source schema change", yes=changed, detail="adds " + ", ".join(kinds)
    )
    assert changes in ("changes", "does not change"), f"unknown {changes!r}"
    assert changed == (changes == "changes"), capture.footprint.summary()


@when(step("{approach:Approach} is closed"))
def approach_closed(capture: Captured, approach):
    """Close: stop, and remove everything the approach installed."""
    capture.approach.close()


@then(step("nothing {approach:Approach} added is left in the source database"))
def nothing_left(capture: Captured, source_table: SourceTable, approach):
    """The catalog equals the one before the approach started."""
    left = catalog_diff(capture.before, catalog_snapshot(source_table.conn))
    evidence.attach_json("left in the source database after close", left.as_dict())
    assert left.empty, f"{approach} left: {left.summary()}"


# --------------------------------------------------------------------------- comparison


@dataclass
class Comparison:
    """The workload runs: baseline first, then one per approach, and each one's table."""

    runs: list[WorkloadRun]
    tables: dict[str, dict[tuple[Any, ...], dict[str, Any]]]

    def run(self, approach: str) -> WorkloadRun:
        return next(r for r in self.runs if r.approach == approach)

    def __repr__(self) -> str:
        return f"Comparison({', '.join(r.approach for r in self.runs)})"


@when(
    parsers.parse(
        "a workload of {count:d} operations with seed {seed:d} runs with no capture, then once "
        "through each approach on a table of its own"
    ),
    target_fixture="comparison",
)
def run_comparison(
    source_table: SourceTable,
    pg_capture_factory: CaptureFactory,
    pg_database_factory: Callable[[str], Any],
    count: int,
    seed: int,
) -> Comparison:
    """Baseline on this scenario's table; each approach on a fresh database, one at a time."""
    runs = [measure_baseline(source_table.conn, operations=count, seed=seed)]
    tables: dict[str, dict[tuple[Any, ...], dict[str, Any]]] = {}
    for name in ORDER:
        database = pg_database_factory(name)
        with psycopg.connect(database.dsn, autocommit=True) as conn:
            create_schema(conn)
            approach = pg_capture_factory(name, table="customers", database=database)
            try:
                run = measure_approach(approach, conn, operations=count, seed=seed)
            finally:
                tables[name] = fetch_table(conn, "customers", KEY_COLUMNS["customers"])
                approach.close()
        tables[name].pop((MARKER_KEY,), None)
        runs.append(run)
        evidence.attach_json(f"{name}: measured", run.as_dict())
    return Comparison(runs, tables)


@then(
    "the comparison table and a lag plot with one line per approach are attached, with the "
    "numbers measured in this run"
)
def comparison_attached(comparison: Comparison, pg_approach_outcomes: ApproachOutcomes):
    """One row per approach: the rules as observed in this session, the measured numbers."""
    note = (
        "Rules: as the scenarios of this feature observed them in this run (and the workload's "
        "own counts); 'not run in this session' when that scenario did not run. Numbers: one "
        f"seeded workload, each approach on a table of its own; pollers poll every "
        f"{POLL_INTERVAL} s; WAL bytes are server-wide (nothing else ran meanwhile)."
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
def rebuilt_as_rules_say(comparison: Comparison, datatable: list[list[str]]):
    """Exactly once and equal, or — for polling — every surviving row, plus deleted ones."""
    for row in _datatable_rows(datatable):
        name, expectation = row["approach"], row["rebuilt table"]
        run, source = comparison.run(name), comparison.tables[name]
        rebuilt = rebuild_from_events(run.events)
        if expectation.startswith("equals the source"):
            report = run.delivery()
            evidence.attach_json(f"{name}: delivery accounting", report.as_dict())
            assert_tables_equal(source, rebuilt, f"{name}: rebuilt vs source")
            assert report.exactly_once, f"{name}: {report.summary()}"
        elif expectation.startswith("holds every row's last state"):
            extra_keys = set(rebuilt) - set(source)
            deleted = {o.key for o in run.operations if o.op == "delete"}
            surviving = {k: rebuilt[k] for k in source if k in rebuilt}
            check = compare_tables(source, surviving, normalizers=NORMALIZERS)
            evidence.attach_json(
                f"{name}: rebuilt vs source",
                {**check.as_dict(), "deleted rows still in the rebuilt table": len(extra_keys)},
            )
            assert check.ok, f"{name}: {check.summary()}"
            assert extra_keys and extra_keys <= deleted, (
                f"{name}: rows beyond the source should be deleted rows; got {len(extra_keys)} "
                f"extra, {len(extra_keys - deleted)} of them never deleted"
            )
        else:
            raise AssertionError(f"unknown expectation {expectation!r} in the table")


@then("the p95 lag of each approach is under its documented limit:")
def p95_under_limits(comparison: Comparison, datatable: list[list[str]]):
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
