"""Steps for features/postgres/approaches.feature: four PostgreSQL CDC approaches, one rule at a
time, then one workload through each (the comparison table).

Every approach is a :class:`~cdc_support.postgres.CaptureApproach` made by the
``pg_capture_factory`` fixture, whose teardown closes it and fails if anything is left.
``<approach>`` in the feature is one of the names in ``APPROACHES``; the step patterns only
accept those names, so they cannot shadow another feature's sentences.

This module holds the capture, the writes and the first rules (deletes, intermediate updates,
before-image); the restart, long-transaction, footprint and comparison steps are in
``postgres_approach_restart.py`` and ``postgres_approach_comparison.py``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from pytest_bdd import given, parsers, then, when

from cdc_support.postgres import APPROACHES
from cdc_support.postgres.approach_story import (
    Captured,
    LongTransaction,
    Story,
    current_row,
    events_for,
)
from cdc_support.postgres.measure import ApproachOutcomes
from cdc_support.postgres.source_table import PostgresTable
from pytest_cdc.fixtures.capture import CaptureFactory
from pytest_cdc.report import evidence

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


@pytest.fixture
def story() -> Story:
    """The writes of this scenario."""
    return Story()


@pytest.fixture
def side_connections() -> Iterator[list[LongTransaction]]:
    """Extra sessions (a long transaction); closed before the approaches are."""
    opened: list[LongTransaction] = []
    yield opened
    for session in opened:
        session.close()


# --------------------------------------------------------------------------- capture


@given(step("{approach:Approach} captures the customers table"), target_fixture="capture")
@when(step("{approach:Approach} captures the customers table"), target_fixture="capture")
def approach_captures(
    approach: str, pg_capture_factory: CaptureFactory, source_table: PostgresTable
) -> Captured:
    """Make the approach on this scenario's database and start it."""
    made = Captured.start(pg_capture_factory(approach, table=source_table.name), source_table.conn)
    evidence.attach_json(
        f"{approach}: how it captures",
        {
            **made.approach.describe(),
            "declared": made.approach.declared.as_dict(),
            "added to the source": made.footprint.as_dict(),
        },
    )
    if approach == "Debezium":
        config = getattr(made.approach, "config", {})
        evidence.attach_json(
            "connector config", {k: v for k, v in config.items() if "password" not in k}
        )
    return made


@when(step("customer {key:d} is inserted and {approach:Approach} has delivered it"))
def insert_and_wait(
    source_table: PostgresTable, capture: Captured, story: Story, key: int, approach: str
) -> None:
    """One insert; wait until the approach delivered it (so later writes come after a poll)."""
    story.old_row = story.insert(source_table.conn, key)
    capture.wait_for_key((key,), f"the insert of customer {key}", EVENT_TIMEOUT)


@given(step("customers 1 and 2 are inserted and {approach:Approach} has delivered them"))
def insert_two_and_wait(
    source_table: PostgresTable, capture: Captured, story: Story, approach: str
) -> None:
    """Two inserts, delivered before the scenario goes on."""
    for key in (1, 2):
        story.insert(source_table.conn, key)
    capture.approach.wait_events(
        lambda evs: {(1,), (2,)} <= {e.key for e in evs},
        expected="the inserts of customers 1 and 2",
        timeout=EVENT_TIMEOUT,
    )


@when("customer 1 is deleted, then customer 2 is inserted as a marker")
def delete_then_marker(source_table: PostgresTable, story: Story) -> None:
    """A hard delete, then a marker row: everything before it is delivered once it is."""
    story.rule = "hard deletes"
    story.delete(source_table.conn, 1)
    story.insert(source_table.conn, 2)


@when(step("customer 1 is renamed {count:d} times between two polls of {approach:Approach}"))
def renamed_between_polls(
    source_table: PostgresTable, capture: Captured, story: Story, count: int, approach: str
) -> None:
    """No poll (no read, for the log-based ones) runs while the renames are committed."""
    story.rule = "intermediate updates"
    base = current_row(source_table.conn, 1)["full_name"]
    with capture.approach.between_polls():
        for n in range(1, count + 1):
            story.rename(source_table.conn, 1, f"{base} #{n}")


@when("customer 2 is inserted as a marker")
def marker_two(source_table: PostgresTable, story: Story) -> None:
    """A row written last: once it is delivered, everything before it has been."""
    story.insert(source_table.conn, 2)


@when("customer 1 is renamed, then customer 2 is inserted as a marker")
def rename_then_marker(source_table: PostgresTable, story: Story) -> None:
    """One update, then the marker."""
    story.rule = "before-image"
    story.old_row = current_row(source_table.conn, 1)
    story.rename(source_table.conn, 1, story.old_row["full_name"] + " Jr.")
    story.insert(source_table.conn, 2)


# --------------------------------------------------------------------------- rule checks


@then(step('by the marker, {approach:Approach} delivered "{ops}" for customer 1'))
def delivered_ops_by_marker(
    capture: Captured,
    story: Story,
    pg_approach_outcomes: ApproachOutcomes,
    approach: str,
    ops: str,
) -> None:
    """Wait for the marker (customer 2); compare customer 1's delivered ops."""
    events = capture.wait_for_key((2,), "the marker row (customer 2)", EVENT_TIMEOUT)
    mine = events_for(events, (1,))
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
def updates_carry_names(capture: Captured, story: Story, approach: str, names: str) -> None:
    """Which names the delivered updates of customer 1 carry, in order."""
    updates = [e for e in events_for(capture.approach.delivered(), (1,)) if e.op == "u"]
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
    source_table: PostgresTable,
    pg_approach_outcomes: ApproachOutcomes,
    approach: str,
    before: str,
) -> None:
    """The whole old row (every column, the old name), or nothing."""
    updates = [e for e in events_for(capture.approach.delivered(), (1,)) if e.op == "u"]
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
