"""Reads and streamed changes per second and in runs: an initial snapshot has two runs, an
incremental one many; the PNG renders."""

from __future__ import annotations

from cdc_support.events import ChangeEvent
from cdc_support.faults.interleaving import interleaving, interleaving_png

T0 = 1_700_000_000.0


def _event(op: str, observed: float) -> ChangeEvent:
    return ChangeEvent(op=op, key=(1,), before=None, after={"id": 1}, source={},
                       commit_ts=None, observed_ts=observed)  # fmt: skip


def test_an_initial_snapshot_reads_first_then_streams() -> None:
    events = [_event("r", T0 + i / 10) for i in range(20)] + [_event("u", T0 + 2.5)] * 3
    result = interleaving(events)
    assert result.seconds == (0, 1, 2)
    assert result.reads == (10, 10, 0) and result.streamed == (0, 0, 3)
    assert (result.runs, result.read_runs) == (2, 1)
    assert result.summary() == "20 reads and 3 streamed changes over 3 s, in 2 runs (1 of reads)"


def test_an_incremental_snapshot_alternates_chunks_and_changes() -> None:
    events = []
    for chunk in range(4):
        events += [_event("u", T0 + chunk), _event("r", T0 + chunk + 0.1), _event("r", T0 + chunk)]
    result = interleaving(events)
    assert (result.runs, result.read_runs) == (8, 4)
    assert result.reads == (2, 2, 2, 2)
    assert interleaving_png(result, "incremental").startswith(b"\x89PNG")
