"""Steps for features/iceberg/snapshot_cdc.feature: incremental consumers with a checkpoint.

A :class:`~cdc_support.iceberg.polls.ConsumerRun` records what every poll delivered and what
it should have delivered (the table model's changes since the previous poll).
"""

from __future__ import annotations

import itertools
import random

import pytest
from pytest_bdd import given, parsers, then, when

from cdc_support.checks.replay import rebuild_from_events
from cdc_support.iceberg import SnapshotExpiredError
from cdc_support.iceberg.expected import mismatches
from cdc_support.iceberg.generated import GeneratedIcebergTable
from cdc_support.iceberg.polls import ConsumerRun, Poll
from cdc_support.iceberg.warehouse import IcebergWarehouse
from pytest_cdc.report import evidence
from steps.common import assert_tables_equal
from steps.iceberg_attach import attach_changelog, attach_writes


def _attach_poll(iceberg: GeneratedIcebergTable, run: ConsumerRun, poll: Poll) -> None:
    attach_changelog(iceberg, poll.changelog, f"{poll.consumer} poll {len(run.polls)}")


@given(
    "an incremental consumer that has read the table up to its current snapshot",
    target_fixture="iceberg_consumers",
)
def consumer_caught_up(
    iceberg: GeneratedIcebergTable, iceberg_warehouse: IcebergWarehouse
) -> ConsumerRun:
    """A consumer with no checkpoint yet reads every row as an insert, then checkpoints."""
    run = ConsumerRun(iceberg, iceberg_warehouse.folder / "consumer-checkpoint.json")
    _attach_poll(iceberg, run, run.start())
    return run


@when(
    parsers.parse(
        "{rounds:d} rounds of writes with seed {seed:d} are committed, "
        "the consumer polling after each"
    )
)
def rounds_with_polls(
    iceberg: GeneratedIcebergTable, iceberg_consumers: ConsumerRun, rounds: int, seed: int
) -> None:
    """Each round is three commits (upsert, delete, append); a poll follows each round."""
    rng = random.Random(seed)
    for i in range(1, rounds + 1):
        attach_writes(iceberg, iceberg.round(rng, f"round {i} (seed {seed})"))
        _attach_poll(iceberg, iceberg_consumers, iceberg_consumers.poll())


@when("the consumer is stopped")
def stop_consumer(iceberg_consumers: ConsumerRun) -> None:
    """Drop the consumer object; only its checkpoint file remains."""
    iceberg_consumers.stop()


@when("a new consumer starts from the same checkpoint file and polls")
def restart_consumer(iceberg: GeneratedIcebergTable, iceberg_consumers: ConsumerRun) -> None:
    """A fresh table handle from the catalog and a fresh consumer on the same file."""
    checkpoint = iceberg_consumers.checkpoint_path.read_text(encoding="utf-8")
    evidence.attach_text("checkpoint file", checkpoint)
    _attach_poll(iceberg, iceberg_consumers, iceberg_consumers.restart("consumer 2"))


@then("the consumer's next poll fails, naming its expired snapshot and the fix")
def poll_fails_expired(iceberg_consumers: ConsumerRun) -> None:
    """SnapshotExpiredError names the snapshot and says to re-bootstrap; nothing delivered."""
    consumer = iceberg_consumers.running
    assert consumer.position is not None
    delivered: list[object] = []
    with pytest.raises(SnapshotExpiredError) as caught:
        consumer.poll(delivered.append)
    message = str(caught.value)
    evidence.attach_text("error", f"{type(caught.value).__name__}: {message}")
    assert caught.value.snapshot_id == consumer.position
    assert str(consumer.position) in message and "expired" in message, message
    assert "bootstrap" in message, message
    assert delivered == [], "the handler got changes although the poll failed"


@then("the consumer's checkpoint still holds that snapshot")
def checkpoint_unchanged(iceberg_consumers: ConsumerRun) -> None:
    """A failed poll does not move the checkpoint file."""
    saved = iceberg_consumers.saved()
    assert saved is not None
    assert saved.snapshot_id == iceberg_consumers.started_at, (
        saved,
        iceberg_consumers.started_at,
    )


@then(
    parsers.parse(
        "after a bootstrap the consumer holds every current product, and its next poll sees "
        "only the {count:d} products appended since"
    )
)
def bootstrap_then_poll(
    iceberg: GeneratedIcebergTable, iceberg_consumers: ConsumerRun, count: int
) -> None:
    """bootstrap(): the current snapshot as read events; the checkpoint moves to it."""
    events = iceberg_consumers.bootstrap()
    evidence.attach_events("bootstrap read events", events)
    assert {e.op for e in events} == {"r"}, {e.op for e in events}
    assert_tables_equal(iceberg.rows, rebuild_from_events(events), "bootstrap vs table")
    saved = iceberg_consumers.saved()
    assert saved is not None and saved.snapshot_id == iceberg.snapshot_id, saved
    write = iceberg.append(count)
    attach_writes(iceberg, [write])
    poll = iceberg_consumers.poll()
    _attach_poll(iceberg, iceberg_consumers, poll)
    assert poll.changelog.counts() == {"c": count, "u": 0, "d": 0}, poll.changelog.counts()
    problems = mismatches(poll.changelog.events, write.expected)
    assert not problems, "\n".join(problems)


@then("each poll delivered exactly the changes of its own range, key by key")
def polls_exact(iceberg_consumers: ConsumerRun) -> None:
    """No loss and no duplicate per key: each poll's events equal the model's changes."""
    summary = []
    problems: list[str] = []
    for index, poll in enumerate(iceberg_consumers.polls, start=1):
        found = mismatches(poll.changelog.events, poll.expected)
        problems += [f"poll {index} ({poll.consumer}): {p}" for p in found]
        summary.append(
            {
                "poll": index,
                "consumer": poll.consumer,
                "from": poll.changelog.from_snapshot_id,
                "to": poll.changelog.to_snapshot_id,
                "snapshots": len(poll.changelog.snapshot_ids),
                "events": poll.changelog.counts(),
                "expected": len(poll.expected),
                "problems": len(found),
            }
        )
    evidence.attach_html("polls", evidence.table_html("consumer polls", summary))
    assert len(iceberg_consumers.polls) >= 2, "fewer than two polls"
    assert not problems, "\n".join(problems)


@then("the polls' snapshot ranges follow each other with no gap and no overlap")
def polls_contiguous(iceberg: GeneratedIcebergTable, iceberg_consumers: ConsumerRun) -> None:
    """Each poll starts where the previous one (of either consumer) ended."""
    run = iceberg_consumers
    assert run.restarted_at is not None and run.restarted_at == run.stopped_at, (
        f"new consumer started at {run.restarted_at}, old one stopped at {run.stopped_at}"
    )
    polls = [p.changelog for p in run.polls]
    assert polls[0].from_snapshot_id is None
    for previous, current in itertools.pairwise(polls):
        assert current.from_snapshot_id == previous.to_snapshot_id, (previous, current)
    covered = [s for log in polls for s in log.snapshot_ids]
    lineage = sorted(iceberg.table.snapshots(), key=lambda s: s.sequence_number)
    assert covered == [s.snapshot_id for s in lineage], "snapshots missed or read twice"


@then("the rows rebuilt from everything the consumers delivered equal the current table")
def rebuilt_equals_current(iceberg: GeneratedIcebergTable, iceberg_consumers: ConsumerRun) -> None:
    """Replaying every delivered event by key gives the table."""
    evidence.attach_events("sample delivered events", iceberg_consumers.delivered)
    rebuilt = rebuild_from_events(iceberg_consumers.delivered)
    assert_tables_equal(iceberg.current_rows(), rebuilt, "delivered vs table")
