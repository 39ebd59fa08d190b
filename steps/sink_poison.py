"""Steps for features/pipelines/sink_poison.feature: records a sink worker cannot apply, and
a table that refuses rows (keyless tables: steps/sink_keyless.py)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pytest_bdd import given, parsers, then, when

from cdc_support.checks.integrity import compare_tables
from cdc_support.sinks.commit_log import audit
from cdc_support.sinks.config import table_format
from cdc_support.sinks.dlq import count_records, read_dead_letters
from cdc_support.sinks.envelopes import Changes, customer_changes
from cdc_support.sinks.poison import (
    poison_record,
    produce_to_new_topic,
    refused_update,
    with_records_at,
)
from cdc_support.sinks.table_rules import refuse_nulls
from cdc_support.waiting import wait_until
from cdc_support.workload import NORMALIZERS
from pytest_cdc.fixtures.sinks import SinkWorkerProcess
from pytest_cdc.report import evidence
from steps.common import assert_tables_equal

TIMEOUT = 120.0


@dataclass
class PoisonTopic:
    """A topic of Debezium-shaped change events with some records that cannot be applied."""

    bootstrap: str
    name: str
    changes: Changes
    poison: list[dict[str, Any]] = field(default_factory=list)
    worker: SinkWorkerProcess | None = None

    def __repr__(self) -> str:
        return f"topic {self.name} ({len(self.changes.records)} change records)"

    @property
    def dlq(self) -> str:
        """The worker's dead-letter topic."""
        assert self.worker is not None
        return self.worker.config.dead_letter_topic


def _letters(topic: PoisonTopic) -> dict[str, dict[str, Any]]:
    """The dead letters by source offset; exactly as many as there are poison records."""
    letters = read_dead_letters(topic.bootstrap, topic.dlq, count=len(topic.poison), timeout=60)
    evidence.attach_json(f"dead letters on {topic.dlq}", letters)
    assert count_records(topic.bootstrap, topic.dlq) == len(topic.poison), "extra dead letters"
    return {letter["headers"].get("cdc.dlq.offset", "?"): letter for letter in letters}


def _batches_of(entries: list[dict[str, Any]], topic: str, offset: int) -> list[dict[str, Any]]:
    """Commit-log lines of the batch (of its run) whose offset range holds ``offset``."""
    runs: list[list[dict[str, Any]]] = []
    for entry in entries:
        if entry.get("kind") == "start" or not runs:
            runs.append([])
        runs[-1].append(entry)
    for run in runs:
        for entry in run:
            span = ((entry.get("ranges") or {}).get(topic) or {}).get("0")
            if span and span[0] <= offset < span[1]:
                return [e for e in run if e.get("batch") == entry["batch"] and "ranges" in e]
    raise AssertionError(f"no commit-log line covers offset {offset}")


def _exactly_once(worker: SinkWorkerProcess, records: int) -> list[dict[str, Any]]:
    """Audit the commit log: no offset twice, none skipped, every record consumed."""
    entries = worker.commit_log()
    result = audit(entries)
    evidence.attach_json("exactly-once audit", result.as_dict())
    assert result.exactly_once, result.summary()
    spans = [(e.get("ranges") or {}).get(worker.config.topic, {}) for e in entries]
    reached = max((span[1] for parts in spans for span in parts.values()), default=0)
    assert reached == records, f"consumed up to offset {reached} of {records} records"
    return entries


# --------------------------------------------------------------------------- poison records


@given(
    parsers.parse(
        "a topic of Debezium change events: {ops:d} operations on {rows:d} customers "
        "generated with seed {seed:d}"
    ),
    target_fixture="poison_topic",
)
def change_topic(cdc_stack: Any, ops: int, rows: int, seed: int) -> PoisonTopic:
    """Records shaped like Debezium's PostgreSQL connector's (values with their schema)."""
    changes = customer_changes(ops, seed=seed, initial_rows=rows)
    return PoisonTopic(cdc_stack.kafka_bootstrap, f"poison_{uuid.uuid4().hex[:10]}", changes)


@given("these records written in the middle of it:")
def poison_in_the_middle(poison_topic: PoisonTopic, datatable: list[list[str]]) -> None:
    """Each poison record between two good halves, then all of it produced at once."""
    _header, *rows = datatable
    extra = [poison_record(kind, 900_000 + i) for i, (kind, _) in enumerate(rows)]
    position = len(poison_topic.changes.records) // 2
    stream, offsets = with_records_at(poison_topic.changes.records, extra, position)
    for (kind, reason), (key, value), offset in zip(rows, extra, offsets, strict=True):
        poison_topic.poison.append(
            {"record": kind, "reason says": reason, "offset": offset, "key": key, "value": value}
        )
    produce_to_new_topic(poison_topic.bootstrap, poison_topic.name, stream)
    poison_topic.changes = Changes(stream, poison_topic.changes.rows, poison_topic.changes.ops)
    evidence.attach_html(
        "records written among the change events",
        evidence.table_html(
            "poison records",
            [
                {**p, "key": p["key"].decode(), "value": p["value"].decode(errors="replace")[:120]}
                for p in poison_topic.poison
            ],
        ),
    )


@when(parsers.parse("a sink worker applies the topic to a new {fmt} table"))
def worker_on_topic(poison_topic: PoisonTopic, sink_worker_factory: Callable, fmt: str) -> None:
    """Started after everything was written: its first batch holds the poison records."""
    poison_topic.worker = sink_worker_factory(poison_topic.name, format=table_format(fmt))


@then(
    "the dead-letter topic holds each of those records unchanged, with its reason and its "
    "offset in its headers"
)
def each_poison_dead_lettered(poison_topic: PoisonTopic) -> None:
    """Key and value byte for byte; the reason says what was wrong."""
    letters = _letters(poison_topic)
    for poison in poison_topic.poison:
        letter = letters.get(str(poison["offset"]))
        assert letter is not None, f"no dead letter for offset {poison['offset']}: {poison}"
        assert letter["key"] == poison["key"].decode(), letter
        assert letter["value"] == poison["value"].decode(errors="replace"), letter
        reason = letter["headers"].get("cdc.dlq.reason", "")
        assert poison["reason says"] in reason, f"{poison['record']}: reason {reason!r}"
        assert letter["headers"].get("cdc.dlq.topic") == poison_topic.name, letter


@then(parsers.parse("the {fmt} table holds exactly the rows the other change events leave"))
def table_holds_the_rest(poison_topic: PoisonTopic, fmt: str) -> None:
    """Wait until the table equals the rows the good change events leave; compare."""
    worker, expected = poison_topic.worker, poison_topic.changes.rows
    assert worker is not None
    wait_until(
        lambda: compare_tables(expected, worker.rows(), normalizers=NORMALIZERS),
        done=lambda report: report.ok,
        timeout=TIMEOUT,
        interval=1.0,
        expected=f"the {fmt} table to hold the rows of the good change events",
        describe=lambda report: report.summary().splitlines()[0],
        log_lines=lambda: worker.logs(15).splitlines(),
    )
    assert_tables_equal(expected, worker.rows(), f"{fmt} table vs the good change events")


@then("the batches that held those records were committed, and every offset was taken exactly once")
def poison_batches_committed(poison_topic: PoisonTopic) -> None:
    """The batch holding a poison record also committed the change events around it."""
    worker = poison_topic.worker
    assert worker is not None
    entries = _exactly_once(worker, len(poison_topic.changes.records))
    for poison in poison_topic.poison:
        kinds = [e["kind"] for e in _batches_of(entries, poison_topic.name, poison["offset"])]
        assert "commit" in kinds, f"the batch of offset {poison['offset']} wrote nothing: {kinds}"


@then(parsers.parse("the worker is still running, and its metrics count {count:d} dead letters"))
def still_running(poison_topic: PoisonTopic, count: int) -> None:
    """No record stopped it."""
    worker = poison_topic.worker
    assert worker is not None and worker.running(), worker and worker.logs(20)
    m = worker.metrics()
    letters = {k: v for k, v in m.items() if k.startswith("cdc_sink_dead_letters_total") and v}
    evidence.attach_json("dead letters by reason", letters)
    assert sum(letters.values()) == count, letters


# --------------------------------------------------------------------------- a table's own rule


@given(
    parsers.parse(
        "a sink worker applied the first half of the topic to a new {fmt} table and was stopped"
    )
)
def first_half_applied(poison_topic: PoisonTopic, sink_worker_factory: Callable, fmt: str) -> None:
    """The table exists with the first half's rows; the worker stopped with SIGTERM."""
    records = poison_topic.changes.records
    first = records[: len(records) // 2]
    produce_to_new_topic(poison_topic.bootstrap, poison_topic.name, first)
    worker = sink_worker_factory(poison_topic.name, format=table_format(fmt))
    worker.wait_applied(sum(1 for _, v in first if v is not None), timeout=TIMEOUT)
    worker.stop()
    poison_topic.worker = worker


@given(parsers.parse("the {fmt} table refuses rows without a country"))
def table_rule(poison_topic: PoisonTopic, fmt: str) -> None:
    """A rule of the table's own (Delta: CHECK constraint; Iceberg: a required column)."""
    assert poison_topic.worker is not None
    evidence.attach_text("the table's rule", refuse_nulls(poison_topic.worker.target, "country"))


@when(
    "the second half is written with an update that sets a customer's country to null in its "
    "middle, and the worker is started again"
)
def second_half_with_refused_update(poison_topic: PoisonTopic) -> None:
    """The update is a good change event; only the table's rule refuses it."""
    records, worker = poison_topic.changes.records, poison_topic.worker
    assert worker is not None
    half = len(records) // 2
    middle = half + (len(records) - half) // 2
    update, key = refused_update(poison_topic.changes, middle, "country")
    stream, (offset,) = with_records_at(records, [update], middle)
    produce_to_new_topic(poison_topic.bootstrap, poison_topic.name, stream[half:])
    poison_topic.changes = Changes(stream, poison_topic.changes.rows, poison_topic.changes.ops)
    poison_topic.poison = [{"offset": offset, "key": update[0], "value": update[1], "id": key}]
    evidence.attach_json("the update the table refuses", {"offset": offset, "key": list(key)})
    worker.restart()


@then("the dead-letter topic holds that update, with a reason that says the table refused it")
def refused_update_dead_lettered(poison_topic: PoisonTopic) -> None:
    """Found by committing halves; the reason is the table's own message, on one line."""
    (poison,) = poison_topic.poison
    letter = _letters(poison_topic)[str(poison["offset"])]
    assert letter["value"] == poison["value"].decode(), letter
    reason = letter["headers"].get("cdc.dlq.reason", "")
    assert reason.startswith("the table refused it:") and "\n" not in reason, reason


@then(
    "the worker committed the batch that held it in parts, and every offset was taken exactly once"
)
def committed_in_parts(poison_topic: PoisonTopic) -> None:
    """The commit-log lines of that batch carry their part ("a", "ba", ...)."""
    (poison,) = poison_topic.poison
    assert poison_topic.worker is not None
    entries = _exactly_once(poison_topic.worker, len(poison_topic.changes.records))
    lines = _batches_of(entries, poison_topic.name, poison["offset"])
    evidence.attach_json(
        "commit-log lines of that batch",
        [{k: v for k, v in e.items() if k != "events"} for e in lines],
    )
    assert len(lines) > 1 and all(e.get("part") for e in lines), lines
