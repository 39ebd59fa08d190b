"""Steps for features/pipelines/lakehouse_sinks.feature: a sink worker killed mid-stream,
and a record on the topic that no parser accepts."""

from __future__ import annotations

from typing import Any

from pytest_bdd import parsers, then, when

from cdc_support.sinks.commit_log import audit
from cdc_support.sinks.dlq import read_dead_letters
from cdc_support.sinks.envelopes import produce_one
from cdc_support.source_table import BackgroundWorkload, SourceTable, tally
from cdc_support.waiting import wait_until
from cdc_support.workload import EcommerceGenerator
from pytest_cdc.report import evidence
from steps.pipelines import APPLY_TIMEOUT, CapturedTable, Sink

POISON_KEY, POISON_VALUE = b'{"id": 999999}', b"this is not JSON {"


@when(
    parsers.parse(
        "a workload of {count:d} operations with seed {seed:d} runs, and the sink worker is "
        "killed with SIGKILL once it committed {kill_at:d} events and restarted after "
        "operation {restart_at:d}"
    )
)
def workload_with_kill(
    pipeline_source: SourceTable,
    sink: Sink,
    count: int,
    seed: int,
    kill_at: int,
    restart_at: int,
) -> None:
    """The workload runs in a thread; the worker is killed while events stream in, and
    started again (same group, same table) while the workload goes on. (Should the worker
    lag behind, the writer waits at operation ``restart_at`` for the kill, so the kill is
    always mid-stream.)"""
    assert 0 < kill_at < restart_at < count, "need 0 < kill_at < restart_at < count"
    workload = BackgroundWorkload(
        pipeline_source,
        EcommerceGenerator(seed + 1),
        count,
        hold_at=restart_at,
        hold_timeout=APPLY_TIMEOUT,
    ).start()
    worker = sink.worker
    try:
        worker.wait_applied(pipeline_source.seeded + kill_at, timeout=APPLY_TIMEOUT)
        written_at_kill = workload.done
        record = worker.kill()
        workload.release()
        sink.kills.append(record)
        evidence.attach_json(
            "the kill",
            {**record.as_dict(), "operations written when killed": written_at_kill},
        )
        assert record.killed_by_sigkill, f"the worker did not die by SIGKILL: {record}"
        assert written_at_kill < count, (
            f"the workload had finished ({written_at_kill} operations) before the kill: "
            "not mid-stream; lower the kill threshold"
        )
        wait_until(
            lambda: workload.done,
            done=workload.passed(restart_at),
            timeout=APPLY_TIMEOUT,
            expected=f"the workload to pass operation {restart_at}",
            describe=lambda done: f"{done} operations written",
        )
        worker.restart()
        evidence.attach_text("restarted worker", f"pid {worker.pid}")
    finally:
        workload.stop(APPLY_TIMEOUT)  # never leave the writer waiting, also on failure
    workload.join(APPLY_TIMEOUT)
    evidence.attach_json(
        "workload", {"operations": count, "by kind": tally(pipeline_source.workload)}
    )


@when(
    parsers.parse(
        "a record that is not JSON is written to the customers topic between two workloads "
        "of {count:d} operations"
    ),
    target_fixture="poisoned_record",
)
def poison_between_workloads(
    pipeline_source: SourceTable, captured_table: CapturedTable, cdc_stack: Any, count: int
) -> dict[str, Any]:
    """Debezium's records before and after, and in between one that no parser accepts."""
    gen = EcommerceGenerator(101)
    pipeline_source.run_workload(gen, count)
    topic = captured_table.topic
    position = produce_one(cdc_stack.kafka_bootstrap, topic, POISON_KEY, POISON_VALUE)
    poison = {"key": POISON_KEY.decode(), "value": POISON_VALUE.decode(), **position._asdict()}
    evidence.attach_json("the record written to the topic", poison)
    pipeline_source.run_workload(gen, count)
    return poison


@then("every change event was applied exactly once across both runs of the worker")
def exactly_once(sink: Sink) -> None:
    """From the commit log: no offset in two commits, nothing applied below the position
    the table recorded when the second run started, no offset range skipped."""
    entries = sink.worker.commit_log()
    result = audit(entries)
    starts = [e for e in entries if e.get("kind") == "start"]
    evidence.attach_json("exactly-once audit", result.as_dict())
    evidence.attach_json("worker runs (start lines of the commit log)", starts)
    evidence.attach_text("worker log (last lines)", sink.worker.logs(40))
    assert result.runs == 2, f"expected 2 runs of the worker, the log shows {result.runs}"
    assert result.exactly_once, result.summary()
    restarted = starts[-1]
    assert restarted.get("stored"), (
        f"the restarted worker found no position in the table: {restarted}"
    )


@then(
    "the dead-letter topic holds that record, with the reason and its topic, partition and "
    "offset in its headers"
)
def dead_letter_holds_record(sink: Sink, poisoned_record: dict[str, Any], cdc_stack: Any) -> None:
    """Key and value unchanged; ``cdc.dlq.*`` headers say why and where from."""
    topic = sink.worker.config.dead_letter_topic
    letters = read_dead_letters(cdc_stack.kafka_bootstrap, topic, count=1, timeout=60)
    evidence.attach_json(f"dead letters on {topic}", letters)
    assert len(letters) == 1, f"expected exactly 1 dead letter, got {len(letters)}"
    letter = letters[0]
    headers = letter["headers"]
    poison = poisoned_record
    assert (letter["key"], letter["value"]) == (poison["key"], poison["value"]), letter
    assert "not JSON" in headers.get("cdc.dlq.reason", ""), headers
    assert headers.get("cdc.dlq.topic") == poison["topic"], headers
    assert headers.get("cdc.dlq.partition") == str(poison["partition"]), headers
    assert headers.get("cdc.dlq.offset") == str(poison["offset"]), headers


@then(parsers.parse("the worker's metrics count {count:d} dead letter"))
def dead_letter_metric(sink: Sink, pipeline_source: SourceTable, count: int) -> None:
    """The dead letter is counted; the worker went on (it applied the records after it)."""
    worker = sink.worker
    worker.wait_applied(pipeline_source.change_events, timeout=APPLY_TIMEOUT)
    m = worker.metrics()
    letters = sum(v for k, v in m.items() if k.startswith("cdc_sink_dead_letters_total"))
    evidence.attach_json(
        "dead-letter and error metrics",
        {k: v for k, v in m.items() if "dead_letters" in k or "errors" in k},
    )
    assert letters == count, f"expected {count} dead letters in the metrics, got {letters}"
    assert m.get("cdc_sink_events_applied_total") == pipeline_source.change_events


@then(parsers.parse("the restarted worker went on from the position the {fmt} table recorded"))
def resumed_from_table(sink: Sink, fmt: str) -> None:
    """Iceberg: the restarted worker seeks to the offsets of the current snapshot. Delta: it
    reads from the group's committed offsets (committed after the table, so at or behind
    it) and skips every record below the app transaction version the table recorded."""
    entries = sink.worker.commit_log()
    starts = [i for i, e in enumerate(entries) if e.get("kind") == "start"]
    assert len(starts) == 2, f"expected 2 runs, the commit log shows {len(starts)}"
    second = entries[starts[1]]
    after = [e for e in entries[starts[1] :] if e.get("kind") in ("commit", "skip", "consumed")]
    assert after, "the restarted worker consumed nothing"
    topic = str(after[0]["topic"])
    (partition, (first, _)), *_ = after[0]["ranges"][topic].items()
    stored = (second.get("stored") or {}).get(topic, {}).get(partition)
    committed = (second.get("committed") or {}).get(topic, {}).get(partition)
    skipped = sum(int(e["summary"].get("skipped_replayed", 0)) for e in after)
    facts = {
        "format": fmt,
        "resumes from": second.get("resume"),
        "table recorded (next offset)": stored,
        "consumer group committed": committed,
        "first offset read after the restart": first,
        "records read again and skipped": skipped,
    }
    evidence.attach_json("where the restarted worker went on", facts)
    assert stored is not None, f"the {fmt} table recorded no position: {second}"
    if sink.worker.target.format == "iceberg":
        assert first == stored, f"expected the restart to seek to offset {stored}: {facts}"
        assert skipped == 0, facts
    else:
        assert first == (committed or 0), f"expected the group's offset {committed}: {facts}"
        assert skipped == max(0, stored - first), (
            f"every record below the table's version {stored} must be skipped: {facts}"
        )
