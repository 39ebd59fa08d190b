"""Steps for features/iceberg/snapshot_cdc.feature: net changes over a range, time travel."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pytest_bdd import parsers, then

from cdc_support.checks.integrity import canonical_row
from cdc_support.events import ChangeEvent
from cdc_support.iceberg import Changelog, changes_between, collapse_to_net, snapshot_info
from cdc_support.iceberg.expected import mismatches
from cdc_support.iceberg.generated import GeneratedIcebergTable
from cdc_support.iceberg.tables import rows_by_key
from pytest_cdc.report import evidence
from steps.common import assert_tables_equal
from steps.iceberg_attach import attach_changelog

NET_OUTCOMES = (
    "an insert of its last version",
    "nothing",
    "an update from the original to its last version",
    "a delete of the original",
)


@then(
    parsers.parse(
        "the net change of product {key:d} over those commits is {net}, "
        "and no other product changed"
    ),
    target_fixture="iceberg_changelog",
)
def net_changes(
    iceberg: GeneratedIcebergTable, range_start: int | None, key: int, net: str
) -> Changelog:
    """One diff over the whole range: the original row and the last one decide."""
    log = changes_between(iceberg.table, range_start, net_changes=True)
    attach_changelog(iceberg, log, "net changes over the range")
    events = log.events
    if net == "nothing":
        assert events == [], f"expected no net change, got {[(e.op, e.key) for e in events]}"
        return log
    original, last = iceberg.original(key), iceberg.rows.get((key,))
    expected = {
        "an insert of its last version": ("c", None, last),
        "an update from the original to its last version": ("u", original, last),
        "a delete of the original": ("d", original, None),
    }
    if net not in expected:
        raise AssertionError(f"unknown net outcome {net!r}; the steps know {NET_OUTCOMES}")
    problems = mismatches(events, {(key,): expected[net]})
    assert not problems, "\n".join(problems)
    return log


def _shape(events: Sequence[ChangeEvent]) -> list[tuple[Any, ...]]:
    return [
        (e.op, e.key, e.before and canonical_row(e.before), e.after and canonical_row(e.after))
        for e in events
    ]


@then("folding the snapshot-by-snapshot changes gives the same net changes")
def folded_equals_net(
    iceberg: GeneratedIcebergTable, range_start: int | None, iceberg_changelog: Changelog
) -> None:
    """collapse_to_net(per-snapshot events) == the range diff, on op, key, before and after."""
    per_snapshot = changes_between(iceberg.table, range_start, net_changes=False)
    attach_changelog(iceberg, per_snapshot, "snapshot by snapshot over the range")
    assert len(per_snapshot.diffs) == len(iceberg_changelog.snapshot_ids) >= 2
    folded = collapse_to_net(per_snapshot.events)
    assert _shape(folded) == _shape(iceberg_changelog.events)


@then(parsers.parse("reading the noted snapshot by its id gives the {count:d} generated products"))
def time_travel_by_id(iceberg: GeneratedIcebergTable, noted_snapshot: int, count: int) -> None:
    """``table.scan(snapshot_id=...)`` reads the table as it was."""
    rows = iceberg.rows_at(noted_snapshot)
    assert len(rows) == count, f"{len(rows)} rows in the noted snapshot, expected {count}"
    generated = rows_by_key(iceberg.generated, iceberg.key)
    assert_tables_equal(generated, rows, "noted snapshot vs generated products")


@then("reading the table as of the noted snapshot's timestamp gives the same snapshot")
def time_travel_by_time(iceberg: GeneratedIcebergTable, noted_snapshot: int) -> None:
    """``snapshot_as_of_timestamp``: the latest snapshot at or before that time."""
    table = iceberg.table
    noted = table.snapshot_by_id(noted_snapshot)
    assert noted is not None
    found = table.snapshot_as_of_timestamp(noted.timestamp_ms)
    assert found is not None and found.snapshot_id == noted.snapshot_id, (found, noted)
    later = [s for s in table.snapshots() if s.sequence_number > noted.sequence_number]
    assert later, "no snapshot was committed after the noted one"
    assert all(s.timestamp_ms > noted.timestamp_ms for s in later), "later snapshots share its ms"
    evidence.attach_json("history", [snapshot_info(table, s) for s in table.snapshots()])


@then("the current snapshot gives the products after both writes")
def current_after_writes(iceberg: GeneratedIcebergTable) -> None:
    """The current snapshot equals the model after every write."""
    assert_tables_equal(iceberg.rows, iceberg.current_rows(), "current snapshot vs model")
    assert len(iceberg.writes) == 3, [w.description for w in iceberg.writes]
