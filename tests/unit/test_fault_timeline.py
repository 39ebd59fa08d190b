"""Events/s and lag p95 per second around a fault, and the time the pipeline took to recover."""

from __future__ import annotations

import pytest

from cdc_support.events import ChangeEvent
from cdc_support.faults.timeline import fault_timeline, timeline_png

T0 = 1_700_000_000.0  # the fault is injected here; the component is back 5 s later
BACK = T0 + 5.0


def _event(key: int, committed: float | None, observed: float | None) -> ChangeEvent:
    return ChangeEvent(
        op="c",
        key=(key,),
        before=None,
        after={"id": key, "seq": key},
        source={},
        commit_ts=committed,
        observed_ts=observed,
    )


def _stream() -> list[ChangeEvent]:
    """10 commits/s from T0-20 to T0+40 (10 s before the window opens, 10 s after it closes).

    Delivered 50 ms after the commit, except: nothing is delivered while the component is down
    (T0..T0+5); the backlog arrives in a burst in T0+5..T0+5.5, preceded by a re-delivery of
    the last second before the fault (at-least-once duplicates).
    """
    events = []
    for n in range(600):
        committed = T0 - 20 + n / 10
        held_back = T0 <= committed < BACK  # delivered in the burst at 5.0 .. 5.5
        observed = BACK + (committed - T0) / 10 if held_back else committed + 0.05
        events.append(_event(n, committed, observed))
    repeats = [e for e in events if T0 - 1 <= (e.commit_ts or 0) < T0]
    events += [_event(e.key[0], e.commit_ts, BACK + 0.01) for e in repeats]  # type: ignore[index]
    return events


def test_the_series_cover_the_window_second_by_second() -> None:
    timeline = fault_timeline(_stream(), T0, BACK, before=10, after=30)
    assert timeline.seconds == tuple(range(-10, 35))
    assert len(timeline.events_per_second) == len(timeline.lag_p95) == 45
    at = timeline.seconds.index
    assert timeline.events_per_second[at(-3)] == 10
    assert timeline.lag_p95[at(-3)] == pytest.approx(0.05)


def test_nothing_delivered_during_the_fault_is_a_gap() -> None:
    timeline = fault_timeline(_stream(), T0, BACK)
    at = timeline.seconds.index
    assert [timeline.events_per_second[at(s)] for s in range(5)] == [0, 0, 0, 0, 0]
    assert [timeline.lag_p95[at(s)] for s in range(5)] == [None] * 5


def test_the_backlog_and_the_duplicates_arrive_in_a_burst_after_the_fault() -> None:
    timeline = fault_timeline(_stream(), T0, BACK)
    at = timeline.seconds.index
    # 50 held back + 10 re-delivered + 10 new in the same second
    assert timeline.events_per_second[at(5)] == 70
    assert timeline.lag_p95[at(5)] > 5.0
    assert timeline.lag_p95[at(6)] == pytest.approx(0.05)


def test_recovery_is_when_lag_is_back_under_the_baseline_threshold_for_good() -> None:
    timeline = fault_timeline(_stream(), T0, BACK)
    assert timeline.lag_threshold == pytest.approx(0.05 + 1.0)  # baseline p95 + margin
    assert timeline.recovery_seconds == pytest.approx(6.0)
    # the first change committed after the injection was delivered as the component came back
    assert timeline.first_fresh_seconds == pytest.approx(5.0)
    assert "recovered 6.0 s after" in timeline.summary()


def test_a_recovery_inside_the_fault_second_counts_from_the_return() -> None:
    events = [_event(n, T0 - 15 + n / 10, T0 - 15 + n / 10 + 0.05) for n in range(400)]
    timeline = fault_timeline(events, T0, T0 + 0.4)
    assert timeline.recovery_seconds == pytest.approx(0.4)


def test_lag_that_never_returns_means_no_recovery() -> None:
    late = [_event(n, T0 + n / 10, T0 + 8 + n / 10 * 2) for n in range(300)]
    timeline = fault_timeline(late, T0, BACK, lag_threshold=2.0)
    assert timeline.lag_threshold == 2.0
    assert timeline.recovery_seconds is None
    assert "not recovered within 30 s" in timeline.summary()


def test_events_without_timestamps_and_outside_the_window() -> None:
    events = [
        _event(1, None, T0 - 2.5),  # counted, no lag
        _event(2, T0 - 3, None),  # never observed: not on the timeline
        _event(3, T0 - 100, T0 - 50),  # before the window
        _event(4, T0 + 10, T0 + 10.2),
    ]
    timeline = fault_timeline(events, T0, BACK)
    at = timeline.seconds.index
    assert sum(timeline.events_per_second) == 2
    assert timeline.events_per_second[at(-3)] == 1 and timeline.lag_p95[at(-3)] is None
    assert timeline.lag_p95[at(10)] == pytest.approx(0.2)
    assert timeline.as_dict()["recovery_seconds"] == pytest.approx(10.0)


def test_a_fault_window_that_ends_before_it_starts_is_refused() -> None:
    with pytest.raises(ValueError, match="back_at"):
        fault_timeline([], T0, T0 - 1)


def test_the_png_shows_the_fault_window() -> None:
    png = timeline_png(fault_timeline(_stream(), T0, BACK), "kill -9 Kafka Connect")
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    empty = timeline_png(fault_timeline([], T0, BACK), "no events")
    assert empty.startswith(b"\x89PNG")


def test_a_change_slipping_in_before_the_stop_and_delivered_at_once_is_not_a_recovery() -> None:
    events = [*_stream(), _event(9999, T0 + 0.01, T0 + 0.06)]
    assert fault_timeline(events, T0, BACK).first_fresh_seconds == pytest.approx(5.0)
