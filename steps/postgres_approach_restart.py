"""Steps for features/postgres/approaches.feature: stop and restart without loss, and a long
transaction that commits after a shorter one."""

from __future__ import annotations

from pytest_bdd import parsers, then, when

from cdc_support.checks.delivery import committed_ops, delivery_report
from cdc_support.postgres.approach_story import (
    Captured,
    LongTransaction,
    Story,
    current_row,
    events_for,
)
from cdc_support.postgres.measure import ApproachOutcomes
from cdc_support.postgres.source_table import PostgresTable
from pytest_cdc.janitor import PgDatabase
from pytest_cdc.report import evidence
from steps.postgres_approach_capture import EVENT_TIMEOUT, step

# --------------------------------------------------------------------------- restart


@when(step("{count:d} customers are inserted and {approach:Approach} has delivered them"))
def insert_many_and_wait(
    source_table: PostgresTable, capture: Captured, story: Story, count: int, approach: str
) -> None:
    """Inserts of keys 1..count, each its own transaction; wait until all are delivered."""
    for key in range(1, count + 1):
        story.insert(source_table.conn, key)
    capture.approach.wait_events(
        lambda evs: len({e.key for e in evs}) >= count,
        expected=f"the inserts of customers 1..{count}",
        timeout=EVENT_TIMEOUT,
    )


@when(step("{approach:Approach} is stopped"))
def approach_stopped(capture: Captured, approach: str) -> None:
    """Stop consuming; the approach keeps its position (slot, offsets, checkpoint)."""
    capture.approach.stop()
    evidence.attach_json(f"{approach} stopped", capture.approach.describe())


@when(
    parsers.parse(
        "while it is stopped, {count:d} more customers are inserted and the first "
        "{renamed:d} are renamed"
    )
)
def write_while_stopped(
    source_table: PostgresTable, story: Story, count: int, renamed: int
) -> None:
    """New rows, and one update each of rows delivered before the stop."""
    first_new = story.next_key()
    for key in range(first_new, first_new + count):
        story.insert(source_table.conn, key)
    for key in range(1, renamed + 1):
        story.rename(source_table.conn, key, f"Renamed while stopped {key}")


@when(step("{approach:Approach} is started again from its saved position"))
def approach_restarted(capture: Captured, approach: str) -> None:
    """Start again: a new connection, resuming from the saved position only."""
    capture.approach.start()
    evidence.attach_json(f"{approach} restarted", capture.approach.describe())


@when(parsers.parse("{count:d} more customers are inserted"))
def insert_more(source_table: PostgresTable, story: Story, count: int) -> None:
    """More new rows after the restart."""
    first_new = story.next_key()
    for key in range(first_new, first_new + count):
        story.insert(source_table.conn, key)


@then(step("{approach:Approach} delivered every committed change {how}, in commit order per key"))
def every_change_delivered(
    capture: Captured,
    story: Story,
    pg_approach_outcomes: ApproachOutcomes,
    approach: str,
    how: str,
) -> None:
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
    source_table: PostgresTable,
    pg_database: PgDatabase,
    story: Story,
    side_connections: list[LongTransaction],
) -> None:
    """A second session updates customer 1 and does not commit yet."""
    session = LongTransaction(pg_database.dsn)
    side_connections.append(session)
    story.old_row = current_row(source_table.conn, 1)
    name = story.old_row["full_name"] + " (long transaction)"
    session.rename(1, name)
    story.names.append(name)


@when(
    step("customer 2 is renamed in a short transaction and {approach:Approach} has delivered that")
)
def short_transaction(
    source_table: PostgresTable, capture: Captured, story: Story, approach: str
) -> None:
    """Customer 2's rename commits first; wait until the approach delivered it."""
    name = current_row(source_table.conn, 2)["full_name"] + " (short transaction)"
    story.rename(source_table.conn, 2, name)
    capture.approach.wait_events(
        lambda evs: any(e.key == (2,) and e.op == "u" for e in evs),
        expected="the rename of customer 2",
        timeout=EVENT_TIMEOUT,
    )


@when("the long transaction commits, then customer 3 is inserted as a marker")
def long_commits(
    source_table: PostgresTable, story: Story, side_connections: list[LongTransaction]
) -> None:
    """Commit the long transaction, then write the marker."""
    side_connections[-1].commit()
    story.committed_elsewhere(1)
    story.insert(source_table.conn, 3)


@then(step("by the marker, customer 1's rename was {verdict} by {approach:Approach}"))
def long_rename_verdict(
    capture: Captured,
    story: Story,
    pg_approach_outcomes: ApproachOutcomes,
    verdict: str,
    approach: str,
) -> None:
    """Wait for the marker (customer 3); was the long transaction's update delivered?"""
    events = capture.wait_for_key((3,), "the marker row (customer 3)", EVENT_TIMEOUT)
    renamed = [
        e
        for e in events_for(events, (1,))
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
