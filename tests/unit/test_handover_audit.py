"""The snapshot → stream handover audit over hand-made streams: folded changes, a clean
handover, a stream that lost a change, a restarted snapshot's re-reads and doubled changes."""

from __future__ import annotations

from cdc_support.checks.handover import HandoverAudit, from_last_snapshot, snapshot_attempts
from cdc_support.events import ChangeEvent
from cdc_support.faults.workload import SequencedOp

T0 = 1_700_000_000.0


def _op(seq: int, op: str, key: int) -> SequencedOp:
    return SequencedOp(seq, op, (key,), T0 + seq)  # type: ignore[arg-type]


def _event(
    op: str, key: int, seq: int | None, observed: float, snapshot: str | None = None
) -> ChangeEvent:
    after = None if op == "d" else {"id": key, "seq": seq}
    source = {} if snapshot is None else {"snapshot": snapshot}
    return ChangeEvent(op=op, key=(key,), before=None, after=after, source=source,
                       commit_ts=None, observed_ts=observed)  # fmt: skip


# rows 1..3 preloaded; ops: 1 u(1), 2 c(4), 3 d(2), 4 u(3), 5 u(4)
OPS = [_op(1, "u", 1), _op(2, "c", 4), _op(3, "d", 2), _op(4, "u", 3), _op(5, "u", 4)]


def _clean() -> list[ChangeEvent]:
    """The snapshot is consistent after op 2: it read 1 (seq 1), 2 (seq 0), 3 (seq 0),
    4 (seq 2) at T0+1.5 .. T0+4.5; ops 3.. stream."""
    rows = [(1, 1), (2, 0), (3, 0), (4, 2)]
    reads = [_event("r", k, s, T0 + 1.5 + i) for i, (k, s) in enumerate(rows)]
    stream = [_event("d", 2, None, T0 + 6), _event("u", 3, 4, T0 + 6), _event("u", 4, 5, T0 + 6)]
    return [*reads, *stream]


def test_a_clean_handover_folds_the_early_changes_and_streams_the_rest_once() -> None:
    report = HandoverAudit(OPS, preloaded=3).audit(_clean())
    assert report.first_streamed_seq == 3
    assert report.folded_into_snapshot == 2
    assert report.lost == 0 and report.stream.duplicates == 0
    assert report.reads == report.rows_read == 4 and report.reread == 0
    assert report.doubled == 0
    assert report.committed_while_reading == 3  # ops 2-4 (T0+2 .. T0+4) inside the reads
    assert "stream starts at operation 3" in report.summary()


def test_a_change_missing_from_the_stream_is_lost() -> None:
    events = [e for e in _clean() if not (e.op == "u" and e.key == (3,))]
    report = HandoverAudit(OPS, preloaded=3).audit(events)
    assert report.lost == 1
    assert str(report.stream.lost[0]) == "u id=3 seq=4"


def test_a_restarted_snapshot_rereads_rows_and_its_stream_doubles_what_it_read() -> None:
    """First attempt read rows 1-2 and died; the second read all at a later point (after op
    4), while the stream resumed from the first attempt's point (op 3): ops 3-4 arrive as
    reads and as streamed changes."""
    first = [_event("r", 1, 1, T0 + 1), _event("r", 2, 0, T0 + 1)]
    second = [_event("r", k, s, T0 + 5) for k, s in [(1, 1), (3, 4), (4, 2)]]
    stream = [_event("d", 2, None, T0 + 7), _event("u", 3, 4, T0 + 7), _event("u", 4, 5, T0 + 7)]
    report = HandoverAudit(OPS, preloaded=3).audit(first + second + stream)
    assert report.reread == 1  # row 1 read twice
    assert report.rows_read == 4
    assert report.doubled == 1  # u(3) seq 4: the second snapshot had read it
    assert report.lost == 0


def test_without_any_streamed_change_everything_is_folded() -> None:
    reads = [_event("r", k, s, T0 + 9) for k, s in [(1, 1), (3, 4), (4, 5)]]
    report = HandoverAudit(OPS, preloaded=3).audit(reads)
    assert report.first_streamed_seq is None
    assert report.folded_into_snapshot == len(OPS)
    assert report.as_dict()["operations folded into the snapshot"] == len(OPS)


def test_a_restarted_snapshot_starts_twice_and_a_rebuild_starts_at_the_last_one() -> None:
    first = [_event("r", 1, 1, T0 + 1, "first"), _event("r", 2, 0, T0 + 1, "true")]
    second = [_event("r", 1, 1, T0 + 5, "first"), _event("r", 3, 4, T0 + 5, "last")]
    stream = [_event("u", 3, 5, T0 + 7, "false")]
    events = first + second + stream
    assert snapshot_attempts(events) == [0, 2]
    assert from_last_snapshot(events) == second + stream  # row 2, gone by then, is not kept
    assert HandoverAudit(OPS, preloaded=3).audit(events).attempts == 2
    assert from_last_snapshot(stream) == stream
