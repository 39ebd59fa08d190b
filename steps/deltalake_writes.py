"""Steps for features/deltalake/change_data_feed.feature: the table and the writes made to it.

Tables live where the plugin's ``delta_location`` fixture says: the scenario's temp folder, or
with ``--cdc-delta-uri`` (e.g. ``s3://lake/cdc-spec``) and ``--cdc-delta-storage-options`` a
folder of its own below that URI, removed after (:mod:`pytest_cdc.fixtures.lakehouse`).
"""

from __future__ import annotations

import pytest
from pytest_bdd import given, parsers, when

from cdc_support.deltalake import (
    DeltaCommit,
    DeltaLocation,
    GeneratedDeltaTable,
    data_files,
    table_properties,
)
from cdc_support.workload import EcommerceGenerator
from pytest_cdc.report import evidence
from steps.deltalake_attachments import attach_workload

# --------------------------------------------------------------------------- fixtures


@pytest.fixture
def delta_attached() -> set[int]:
    """Versions whose change rows and log entry this scenario has attached already."""
    return set()


# --------------------------------------------------------------------------- the table


@given(
    "a Delta customers table with the Change Data Feed enabled",
    target_fixture="delta_table",
)
def cdf_table(delta_location: DeltaLocation) -> GeneratedDeltaTable:
    """Create an empty table (version 0) with delta.enableChangeDataFeed=true."""
    table = GeneratedDeltaTable(delta_location.child("customers"), EcommerceGenerator(7))
    evidence.attach_json("table properties", table_properties(table.location))
    return table


@given(parsers.parse("{count:d} generated customers (seed {seed:d}) are appended to it"))
def seed_customers(delta_table: GeneratedDeltaTable, count: int, seed: int) -> None:
    """Re-seed the generator and append its rows in one commit."""
    delta_table.reseed(seed)
    commit = delta_table.append(count)
    rows = [delta_table.rows[k] for k in commit.keys]
    evidence.attach_html(
        f"appended customers (seed {seed})",
        evidence.table_html(f"customers v{commit.version}", rows),
    )


@given(parsers.parse("{appends:d} more appends of {count:d} generated customers each"))
def more_appends(delta_table: GeneratedDeltaTable, appends: int, count: int) -> None:
    """Each append is its own commit and writes its own small data file."""
    for _ in range(appends):
        delta_table.append(count)
    evidence.attach_json("data files of the table", data_files(delta_table.location))


@given(parsers.parse("a generated workload of {count:d} commits with seed {seed:d} has run"))
def seeded_workload(delta_table: GeneratedDeltaTable, count: int, seed: int) -> None:
    """Random appends, updates, deletes and merges, one commit each (seeded)."""
    delta_table.reseed(seed)
    attach_workload(delta_table.workload(count))


@when(parsers.parse("a generated workload of {count:d} more commits runs while it is stopped"))
def workload_while_stopped(delta_table: GeneratedDeltaTable, count: int) -> None:
    """More random commits, continuing the same generator."""
    attach_workload(delta_table.workload(count))


# --------------------------------------------------------------------------- one write


@when(parsers.parse("I append {count:d} more generated customers"), target_fixture="commit")
def append_more(delta_table: GeneratedDeltaTable, count: int) -> DeltaCommit:
    """A blind append: new data files, no change files."""
    return delta_table.append(count)


@when(parsers.parse("I update the name of customer {key:d}"), target_fixture="commit")
def update_name(delta_table: GeneratedDeltaTable, key: int) -> DeltaCommit:
    """UPDATE customers SET full_name = ..., country = ... WHERE id = key."""
    return delta_table.update([(key,)])


@when(parsers.parse("I delete customers {first:d} and {second:d}"), target_fixture="commit")
def delete_two(delta_table: GeneratedDeltaTable, first: int, second: int) -> DeltaCommit:
    """DELETE FROM customers WHERE id IN (first, second)."""
    return delta_table.delete([(first,), (second,)])


@when(
    parsers.parse("I merge {updates:d} changed customers and {inserts:d} new ones"),
    target_fixture="commit",
)
def merge_upsert(delta_table: GeneratedDeltaTable, updates: int, inserts: int) -> DeltaCommit:
    """MERGE ... WHEN MATCHED UPDATE WHEN NOT MATCHED INSERT."""
    return delta_table.merge(updates=updates, inserts=inserts)


@when(
    parsers.parse(
        "I merge {updates:d} changed customers, {inserts:d} new ones and {deletes:d} deletions"
    ),
    target_fixture="commit",
)
def merge_with_delete(
    delta_table: GeneratedDeltaTable, updates: int, inserts: int, deletes: int
) -> DeltaCommit:
    """MERGE with a WHEN MATCHED ... DELETE clause as well."""
    return delta_table.merge(updates=updates, inserts=inserts, deletes=deletes)


@when(
    parsers.parse("I overwrite customers {first:d} to {last:d} with a predicate"),
    target_fixture="commit",
)
def overwrite_range(delta_table: GeneratedDeltaTable, first: int, last: int) -> DeltaCommit:
    """write_deltalake(mode='overwrite', predicate='id IN (...)') with changed rows."""
    return delta_table.overwrite([(k,) for k in range(first, last + 1)])


@when(
    parsers.parse("I update customer {key:d} setting its name to its own value"),
    target_fixture="commit",
)
def update_noop(delta_table: GeneratedDeltaTable, key: int) -> DeltaCommit:
    """UPDATE customers SET full_name = full_name WHERE id = key."""
    return delta_table.update_noop([(key,)], "full_name")


@when("the table is compacted with OPTIMIZE", target_fixture="commit")
def compact(delta_table: GeneratedDeltaTable) -> DeltaCommit:
    """Bin-packing compaction of the small files into one."""
    commit = delta_table.optimize()
    evidence.attach_json("OPTIMIZE metrics", commit.metrics)
    return commit


@when(
    parsers.parse("{count:d} more commits are made: an update, a delete, an append and a merge"),
    target_fixture="extra_commits",
)
def four_commits(delta_table: GeneratedDeltaTable, count: int) -> list[DeltaCommit]:
    """Four commits of different kinds, back to back (no pauses)."""
    commits = [
        delta_table.update(delta_table.pick_keys(1)),
        delta_table.delete(delta_table.pick_keys(1)),
        delta_table.append(2),
        delta_table.merge(updates=1, inserts=1),
    ]
    assert len(commits) == count
    return commits
