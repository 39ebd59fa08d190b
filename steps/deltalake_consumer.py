"""Steps for features/deltalake/change_data_feed.feature: an incremental consumer of the feed.

A consumer with a checkpoint file, restarted mid-feed, and stopped long enough for VACUUM to
remove files of versions it still needs.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pytest_bdd import given, parsers, then, when

from cdc_support.checks.replay import rebuild_from_events
from cdc_support.deltalake import (
    CdfConsumer,
    CdfVersionsUnavailable,
    GeneratedDeltaTable,
    Handled,
    Outage,
    PollFailure,
    RestartAudit,
    contiguous,
    delta_rs_read_error,
    feed_to_events,
    latest_version,
    read_feed,
    run_batches,
    run_to_end,
    table_history,
)
from pytest_cdc.report import evidence
from steps.common import assert_tables_equal
from steps.deltalake_attachments import attach_commits, attach_handled, attach_log_entries

# --------------------------------------------------------------------------- consumers


@given("a CDF consumer with a checkpoint file", target_fixture="consumer")
def consumer_with_checkpoint(delta_table: GeneratedDeltaTable, tmp_path: Path) -> CdfConsumer:
    """A consumer from version 0; its position lives in checkpoint.json."""
    return CdfConsumer(delta_table.location, delta_table.key, tmp_path / "checkpoint.json")


@given(
    "a CDF consumer with a checkpoint file has handled the feed up to the latest version",
    target_fixture="consumer",
)
def consumer_caught_up(delta_table: GeneratedDeltaTable, tmp_path: Path) -> CdfConsumer:
    """Run a consumer to the end once; the checkpoint then holds the latest version."""
    consumer = CdfConsumer(delta_table.location, delta_table.key, tmp_path / "checkpoint.json")
    consumer.run_to_end(lambda batch: None)
    assert consumer.last_version == delta_table.version
    return consumer


# --------------------------------------------------------------------------- vacuum


@given(
    parsers.parse(
        "while it is stopped, {appends:d} appends of {count:d} customers and an update of "
        "customer {key:d} are made"
    ),
    target_fixture="outage",
)
def writes_while_stopped(
    delta_table: GeneratedDeltaTable,
    appends: int,
    count: int,
    key: int,
    delta_attached: set[int],
) -> Outage:
    """Appends (read from data files) and an update (read from a change file)."""
    made = [delta_table.append(count) for _ in range(appends)]
    outage = Outage(made, delta_table.update([(key,)]))
    attach_commits(delta_table, outage.commits, delta_attached)  # the feed before VACUUM
    return outage


@given(
    parsers.parse(
        "the table is compacted with OPTIMIZE and vacuumed with a retention of {hours:d} hours"
    )
)
def compact_and_vacuum(delta_table: GeneratedDeltaTable, outage: Outage, hours: int) -> None:
    """OPTIMIZE removes the small files from the table; VACUUM deletes them from storage."""
    first = delta_table.optimize().version
    outage.vacuumed = delta_table.vacuum(hours)
    attach_log_entries(delta_table.location, range(first, delta_table.version + 1))
    evidence.attach_json("files deleted by VACUUM", outage.vacuumed)
    evidence.attach_json("DeltaTable.history()", table_history(delta_table.location))
    assert outage.vacuumed, "VACUUM deleted nothing"


@when("the consumer polls again", target_fixture="poll_failure")
def poll_again(consumer: CdfConsumer) -> PollFailure:
    """Expect the consumer's own error, raised before any row is read."""
    with pytest.raises(CdfVersionsUnavailable) as info:
        consumer.poll()
    evidence.attach_text("the consumer's error", str(info.value))
    return PollFailure(info.value)


@then(
    "it fails with CdfVersionsUnavailable naming the versions it needs, those that are gone "
    "and the fix"
)
def error_names_versions(
    delta_table: GeneratedDeltaTable,
    consumer: CdfConsumer,
    outage: Outage,
    poll_failure: PollFailure,
) -> None:
    """Needed: checkpoint+1..latest; gone: exactly the appends; readable: from the update on."""
    error = poll_failure.error
    latest = latest_version(delta_table.location)
    needed = (consumer.next_version, latest)
    gone = outage.gone
    assert error.needed == needed, error.needed
    assert sorted(error.missing) == gone, f"unreadable versions {sorted(error.missing)}"
    assert error.available == (outage.update.version, latest), error.available
    text = str(error)
    assert f"needs versions {needed[0]}..{needed[1]}" in text
    assert f"versions {gone[0]}..{gone[-1]}" in text
    assert f"from version {outage.update.version} to {latest}" in text
    assert "fix:" in text and "VACUUM" in text and "snapshot" in text


@then("its checkpoint still holds the version it had handled up to")
def checkpoint_unchanged(consumer: CdfConsumer, outage: Outage) -> None:
    """A failed poll moves nothing."""
    assert consumer.last_version == outage.appends[0].version - 1


@then("delta-rs alone opens the same feed without error and fails only when the rows are read")
def delta_rs_fails_late(delta_table: GeneratedDeltaTable, consumer: CdfConsumer) -> None:
    """The pitfall the consumer guards against: load_cdf is lazy."""
    error = delta_rs_read_error(delta_table.location, consumer.next_version)
    assert error is not None, "delta-rs read the feed of vacuumed versions without an error"
    evidence.attach_text("delta-rs's own error when the rows are read", error)
    assert "not found" in error


# --------------------------------------------------------------------------- restart


@when(
    parsers.parse(
        "the consumer handles the feed {size:d} versions at a time and stops after {count:d} "
        "batches"
    ),
    target_fixture="first_run",
)
def first_run(consumer: CdfConsumer, size: int, count: int) -> Handled:
    """Each batch: handle (keep the events), then commit the checkpoint."""
    handled = run_batches(consumer, count, size)
    assert consumer.last_version == handled.batches[-1].last_version
    attach_handled("batches of the first consumer", handled)
    evidence.attach_json(
        "checkpoint file when the consumer stopped",
        json.loads(consumer.checkpoint.path.read_text(encoding="utf-8")),
    )
    return handled


@when(
    "a new consumer starts from the same checkpoint file and handles the feed to the end",
    target_fixture="second_run",
)
def second_run(consumer: CdfConsumer, first_run: Handled) -> Handled:
    """Nothing shared with the first consumer but the checkpoint file."""
    restarted = CdfConsumer(consumer.location, consumer.key, consumer.checkpoint.path)
    assert restarted.next_version == first_run.batches[-1].last_version + 1
    handled = run_to_end(restarted, size=4)
    attach_handled("batches of the restarted consumer", handled)
    return handled


@then(
    "per key, the events handled by the two consumers equal one full read of the feed: "
    "none lost, none repeated"
)
def no_loss_no_repeat(
    delta_table: GeneratedDeltaTable, first_run: Handled, second_run: Handled
) -> None:
    """Compare (version, op) lists per key, and the handled version ranges."""
    reference = feed_to_events(read_feed(delta_table.location), delta_table.key)
    audit = RestartAudit.of(first_run.events + second_run.events, reference)
    evidence.attach_json(
        "restart audit",
        {
            "first consumer": repr(first_run),
            "second consumer": repr(second_run),
            **audit.summary(),
        },
    )
    assert not audit.lost, f"events lost across the restart: {audit.lost}"
    assert not audit.repeated, f"events handled twice: {audit.repeated}"
    assert audit.same_sequences, "per-key event sequences differ from one full read"
    spans = first_run.spans + second_run.spans
    assert contiguous(spans), spans
    assert spans[0][0] == 0 and spans[-1][1] == latest_version(delta_table.location)


@then("the table rebuilt from the handled events equals the Delta table")
def handled_rebuilds(
    delta_table: GeneratedDeltaTable, first_run: Handled, second_run: Handled
) -> None:
    """Replay what the two consumers handled."""
    rebuilt = rebuild_from_events(first_run.events + second_run.events)
    assert_tables_equal(delta_table.read_current(), rebuilt, "handled events vs Delta table")


@then("the checkpoint holds the table's latest version")
def checkpoint_at_latest(delta_table: GeneratedDeltaTable, consumer: CdfConsumer) -> None:
    """After the run to the end, the next poll has nothing to read."""
    assert consumer.last_version == latest_version(delta_table.location)
    assert consumer.poll().empty
