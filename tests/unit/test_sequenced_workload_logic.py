"""SequencedWorkload's survival logic over an in-memory writer whose failures are scripted:
an unknown outcome read back, an outage, one too long, a real error, stop() mid-outage; and
the plan of a seed. (The real databases, restarted and killed: tests/integration.)"""

from __future__ import annotations

import time
from collections import Counter

import pytest

from cdc_support.faults.workload import (
    OutageTooLong,
    SequencedWorkload,
    WriteMismatch,
    plan_operations,
)


class Down(ConnectionError):
    """The database went away."""


class ScriptedWriter:
    """A table in a dict. ``fail_write[seq] = [committed, ...]``: that operation's first
    writes raise Down, each after committing or not; ``down_for`` connects fail after each."""

    label, table, transient = "memory", "sequenced", (Down,)

    def __init__(self, fail_write: dict[int, list[bool]], down_for: int = 0) -> None:
        self.fail_write = {seq: list(outcomes) for seq, outcomes in fail_write.items()}
        self.down_for, self.down = down_for, 0
        self.table_rows: dict[int, int] = {}
        self.connected, self.connects, self.writes = False, 0, Counter[int]()

    def __repr__(self) -> str:
        return "memory sequenced table"

    def create(self) -> None: ...

    def connect(self) -> None:
        if not self.connected:
            if self.down > 0:
                self.down -= 1
                raise Down("connection refused")
            self.connected, self.connects = True, self.connects + 1

    def close(self) -> None:
        self.connected = False

    def write(self, op: str, key: int, seq: int) -> None:
        if not self.connected:
            raise Down("not connected")
        self.writes[seq] += 1
        outcomes = self.fail_write.get(seq)
        committed = outcomes.pop(0) if outcomes else None
        if committed is not None:
            self.down = self.down_for
        if committed is False:
            raise Down("server closed the connection unexpectedly")
        if op == "c" and key in self.table_rows:
            raise WriteMismatch(f"duplicate key {key}")
        if op == "d":
            self.table_rows.pop(key)
        else:
            self.table_rows[key] = seq
        if committed:
            raise Down("server closed the connection unexpectedly")

    def seq_of(self, key: int) -> int | None:
        if not self.connected:
            raise Down("not connected")
        return self.table_rows.get(key)

    def rows(self) -> dict[tuple[int], int]:
        return {(k,): s for k, s in self.table_rows.items()}


def _run(writer: ScriptedWriter, count: int = 200, **kwargs: float) -> SequencedWorkload:
    workload = SequencedWorkload(writer, count, seed=3, **kwargs).start()  # type: ignore[arg-type]
    workload.join(timeout=30)
    return workload


def test_the_plan_of_a_seed_numbers_keys_upward_and_deletes_only_live_ones() -> None:
    plan = plan_operations(5000, seed=3)
    assert plan == plan_operations(5000, seed=3) != plan_operations(5000, seed=4)
    assert [p.seq for p in plan] == list(range(1, 5001))
    inserted = [p.id for p in plan if p.op == "c"]
    assert inserted == list(range(1, len(inserted) + 1)), "ids from 1 upward, never reused"
    live: set[int] = set()
    for p in plan:
        assert (p.id in live) == (p.op != "c"), f"operation {p.seq}: {p.op} of id {p.id}"
        (live.add if p.op == "c" else live.discard if p.op == "d" else lambda _: None)(p.id)
    kinds = Counter(p.op for p in plan)
    assert 0.45 < kinds["c"] / 5000 < 0.55 and 0.1 < kinds["d"] / 5000 < 0.2


@pytest.mark.parametrize("seq", [1, 57, 58, 100])  # a mix of inserts, updates and deletes
def test_a_write_that_committed_before_its_error_is_logged_once_not_written_again(
    seq: int,
) -> None:
    writer = ScriptedWriter({seq: [True]}, down_for=2)
    workload = _run(writer)
    assert workload.unknown_outcomes == [(seq, True)] and writer.writes[seq] == 1
    assert [op.seq for op in workload.ops] == list(range(1, 201))
    assert writer.rows() == workload.expected_rows()
    ((failed, back),) = workload.outages
    assert failed <= back and workload.ops[seq - 1].committed_at == failed


@pytest.mark.parametrize("seq", [1, 57, 58, 100])
def test_a_write_that_did_not_commit_is_read_back_then_written_again(seq: int) -> None:
    writer = ScriptedWriter({seq: [False]}, down_for=2)
    workload = _run(writer)
    assert workload.unknown_outcomes == [(seq, False)] and writer.writes[seq] == 2
    assert writer.rows() == workload.expected_rows() and len(workload.outages) == 1
    assert workload.ops[seq - 1].committed_at >= workload.outages[0][1] - 1e-3


def test_a_write_again_whose_outcome_is_unknown_again_is_read_back_again() -> None:
    writer = ScriptedWriter({57: [False, True], 58: [False, False]}, down_for=1)
    workload = _run(writer)
    assert workload.unknown_outcomes == [(57, False), (57, True), (58, False), (58, False)]
    assert writer.writes[57] == 2 and writer.writes[58] == 3
    assert writer.rows() == workload.expected_rows() and len(workload.outages) == 2


def test_an_outage_longer_than_the_timeout_fails_naming_the_operation() -> None:
    writer = ScriptedWriter({5: [False]}, down_for=10_000)
    with pytest.raises(
        OutageTooLong,
        match=r"memory sequenced .*operation 5 for 0.3s \(outage_timeout\), last error Down",
    ):
        _run(writer, outage_timeout=0.3)


def test_an_error_that_is_no_connection_error_ends_the_workload() -> None:
    writer = ScriptedWriter({})
    writer.table_rows[1] = 0  # the first insert finds its key taken
    with pytest.raises(WriteMismatch, match="duplicate key 1"):
        _run(writer)


def test_stop_during_an_outage_ends_the_thread_quietly() -> None:
    writer = ScriptedWriter({5: [False]}, down_for=10_000)
    workload = SequencedWorkload(writer, 100, seed=3).start()  # type: ignore[arg-type]
    deadline = time.monotonic() + 10
    while not writer.writes[5] and time.monotonic() < deadline:
        time.sleep(0.01)
    workload.stop(timeout=5)
    assert workload.done == 4 and workload.failure is None


def test_a_preloaded_table_has_its_rows_updated_and_deleted_and_new_ids_after_them() -> None:
    plan = plan_operations(2_000, seed=3, preloaded=500)
    inserted = [p.id for p in plan if p.op == "c"]
    touched = {p.id for p in plan if p.op != "c"}
    assert min(inserted) == 501 and inserted == sorted(inserted)
    assert touched & set(range(1, 501)), "the workload never touched a preloaded row"
    deleted = [p.id for p in plan if p.op == "d"]
    assert len(deleted) == len(set(deleted))
    assert plan_operations(2_000, seed=3, preloaded=500) == plan


def test_expected_rows_start_from_the_preloaded_ones() -> None:
    workload = SequencedWorkload(ScriptedWriter({}), 0, seed=1, preloaded=3)
    assert workload.expected_rows() == {(1,): 0, (2,): 0, (3,): 0}


def test_a_rate_paces_the_operations() -> None:
    workload = SequencedWorkload(ScriptedWriter({}), 40, seed=1, rate=200.0).start()
    workload.join(10)
    assert workload.done == 40
    assert workload.seconds >= 39 / 200.0
    with pytest.raises(ValueError, match="rate"):
        SequencedWorkload(ScriptedWriter({}), 1, seed=1, rate=0)
