"""Steps for features/deltalake/change_data_feed.feature: the feed read by commit timestamps."""

from __future__ import annotations

from pytest_bdd import parsers, then, when

from cdc_support.deltalake import (
    GeneratedDeltaTable,
    TimestampRead,
    feed_rows,
    feed_to_events,
    feed_versions,
    read_feed,
)
from pytest_cdc.report import evidence


@when(
    parsers.parse(
        "I read the feed from the commit timestamp of version {first:d} to that of version "
        "{last:d}, as the table history gives them"
    ),
    target_fixture="timestamp_read",
)
def read_by_timestamp(delta_table: GeneratedDeltaTable, first: int, last: int) -> TimestampRead:
    """load_cdf(starting_timestamp=..., ending_timestamp=...) with timestamps from history()."""
    read = TimestampRead.between_versions(delta_table.location, first, last)
    evidence.attach_html(
        "table history (version → commit timestamp)",
        evidence.table_html(
            "DeltaTable.history()",
            [{"version": v, "timestamp_ms": ts} for v, ts in sorted(read.history.items())],
        ),
    )
    evidence.attach_html(
        "change rows read by timestamp", evidence.table_html("by timestamp", feed_rows(read.rows))
    )
    return read


@then("it holds exactly the versions whose commit timestamp lies in that range")
def versions_in_range(delta_table: GeneratedDeltaTable, timestamp_read: TimestampRead) -> None:
    """Both ends inclusive; versions with no change rows (the create) cannot show up."""
    read = timestamp_read
    in_range = read.in_range()
    with_rows = feed_versions(read_feed(delta_table.location))
    versions = read.versions
    evidence.attach_json(
        "versions", {"in range by history": sorted(in_range), "read": sorted(versions)}
    )
    assert versions == in_range & with_rows, (
        f"read versions {sorted(versions)}, expected {sorted(in_range & with_rows)}"
    )
    assert versions >= set(read.boundary_versions()) & with_rows
    assert read.matches_version_read(delta_table.location), "timestamp and version reads differ"


@then("each event's commit time is its version's commit timestamp in the history")
def commit_time_matches(delta_table: GeneratedDeltaTable, timestamp_read: TimestampRead) -> None:
    """ChangeEvent.commit_ts comes from _commit_timestamp, the commitInfo timestamp."""
    events = feed_to_events(timestamp_read.rows, delta_table.key)
    assert events
    for event in events:
        expected = timestamp_read.history[event.source["version"]] / 1000
        assert event.commit_ts == expected, (event.source, event.commit_ts, expected)
