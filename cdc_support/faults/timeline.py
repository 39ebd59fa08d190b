"""What the consumer saw around one fault: events/s and lag p95 per second, and the recovery.

Times on a :class:`Timeline` are seconds relative to the injection (0 = the fault was
injected, ``down_seconds`` = the component answered again). Second ``s`` is the bucket
``[injected_at + s, injected_at + s + 1)`` of *observed* times (when the consumer saw a
change); its lag is ``observed_ts - commit_ts`` of the changes seen in it. Repeated deliveries
count like any other: a re-sent backlog shows as a burst with a high lag.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

from cdc_support.checks.lag import percentile
from cdc_support.checks.plots import Panel, time_series_png
from cdc_support.events import ChangeEvent

__all__ = ["Timeline", "fault_timeline", "timeline_png"]


@dataclass(frozen=True)
class Timeline:
    """Per-second series around a fault window, and how long the pipeline took to recover."""

    injected_at: float
    back_at: float
    """Epoch seconds: the fault was injected, the component answered again."""
    seconds: tuple[int, ...]
    """Start of each one-second bucket, relative to ``injected_at``."""
    events_per_second: tuple[int, ...]
    lag_p95: tuple[float | None, ...]
    """p95 lag of the changes seen in each second; None where none had both timestamps."""
    lag_threshold: float
    """Lag p95 at or under which a second counts as caught up."""
    recovery_seconds: float | None
    """Time to recover (see :func:`fault_timeline`); None when not reached in the window."""
    first_fresh_seconds: float | None
    """Injection until the first delivery, once the component was back, of a change
    committed after the injection."""
    after: int
    """Seconds watched after ``back_at``."""

    @property
    def down_seconds(self) -> float:
        """How long the component was down (or restarting)."""
        return self.back_at - self.injected_at

    def as_dict(self) -> dict[str, Any]:
        """Fields as a plain dict (for JSON attachments)."""
        return asdict(self) | {"down_seconds": self.down_seconds}

    def summary(self) -> str:
        """One line: the window, the recovery, the peaks."""
        if self.recovery_seconds is None:
            recovery = (
                f"not recovered within {self.after} s after it was back "
                f"(lag p95 above {self.lag_threshold:.2f} s)"
            )
        else:
            recovery = (
                f"recovered {self.recovery_seconds:.1f} s after the injection "
                f"(lag p95 back under {self.lag_threshold:.2f} s)"
            )
        fresh = (
            "no change committed after the injection was delivered once it was back"
            if self.first_fresh_seconds is None
            else f"changes committed since delivered again {self.first_fresh_seconds:.1f} s after "
            "the fault"
        )
        lags = [lag for lag in self.lag_p95 if lag is not None]
        peaks = f"peak {max(self.events_per_second, default=0)} events/s"
        if lags:
            peaks += f", peak lag p95 {max(lags):.2f} s"
        return f"down {self.down_seconds:.1f} s; {recovery}; {fresh}; {peaks}"


def fault_timeline(
    events: Iterable[ChangeEvent],
    injected_at: float,
    back_at: float,
    *,
    before: int = 10,
    after: int = 30,
    lag_threshold: float | None = None,
    margin: float = 1.0,
) -> Timeline:
    """Events/s and lag p95 per second from ``before`` s before the injection to ``after`` s
    after ``back_at``, and the time to recover.

    Time to recover: seconds from ``injected_at`` until the consumer had caught up, i.e. the
    start of the first second, from the one ``back_at`` falls in, after which every second that
    saw changes has a lag p95 at or under the threshold until the end of the window — but never
    less than ``back_at - injected_at`` (nothing recovers before the component is back).
    Resolution: one second. None when that is not reached within the window. The threshold is
    ``lag_threshold``, or else the lag p95 of the ``before`` seconds preceding the injection
    plus ``margin`` (``margin`` alone without such changes).

    ``first_fresh_seconds`` is the other reading of "back": the injection until the first
    delivery at or after ``back_at`` of a change committed after the injection (a change that
    slipped in between the injection and the component's actual stop, e.g. during a database's
    shutdown, and was delivered at once does not count: the pipeline was not back yet).
    Changes without an observed time are left out; changes without a commit time count in
    events/s but not in the lag.
    """
    if back_at < injected_at:
        raise ValueError(
            f"back_at {back_at} is before injected_at {injected_at}: pass the fault's own "
            "injected_at and back_at (epoch seconds)"
        )
    first, end = -before, math.ceil(back_at - injected_at) + after
    counts = dict.fromkeys(range(first, end), 0)
    lags: dict[int, list[float]] = {second: [] for second in counts}
    fresh: float | None = None
    for event in events:
        if event.observed_ts is None:
            continue
        second = math.floor(event.observed_ts - injected_at)
        if second not in counts:
            continue
        counts[second] += 1
        if event.lag_seconds is not None:
            lags[second].append(event.lag_seconds)
        if (
            event.commit_ts is not None
            and event.commit_ts >= injected_at
            and event.observed_ts >= back_at
        ):
            fresh = event.observed_ts if fresh is None else min(fresh, event.observed_ts)
    p95 = {s: percentile(sorted(v), 95) if v else None for s, v in lags.items()}
    if lag_threshold is None:
        baseline = sorted(lag for s in range(first, 0) for lag in lags[s])
        lag_threshold = (percentile(baseline, 95) if baseline else 0.0) + margin
    caught_up: int | None = None
    for second in reversed(range(math.floor(back_at - injected_at), end)):
        if p95[second] is None:
            continue
        if p95[second] > lag_threshold:
            break
        caught_up = second
    return Timeline(
        injected_at=injected_at,
        back_at=back_at,
        seconds=tuple(counts),
        events_per_second=tuple(counts.values()),
        lag_p95=tuple(p95.values()),
        lag_threshold=lag_threshold,
        recovery_seconds=None if caught_up is None else max(caught_up, back_at - injected_at),
        first_fresh_seconds=None if fresh is None else fresh - injected_at,
        after=after,
    )


def timeline_png(timeline: Timeline, title: str) -> bytes:
    """PNG: events/s and lag p95 per second, the fault window shaded, the recovery marked."""
    middles = [s + 0.5 for s in timeline.seconds]  # a bucket's value belongs to its whole second
    gaps = [math.nan if v is None else v for v in timeline.lag_p95]  # no line across a gap
    panels = [
        Panel(
            ylabel="events/s",
            series={"changes delivered": (middles, timeline.events_per_second)},
            title="changes seen per second (repeats included)",
        ),
        Panel(
            ylabel="lag p95 (s)",
            series={"lag p95": (middles, gaps)},
            limits={
                f"caught up at or under {timeline.lag_threshold:.2f} s": timeline.lag_threshold
            },
            title="lag p95 per second (observed - commit)",
        ),
    ]
    marks = []
    if timeline.recovery_seconds is not None:
        marks.append((timeline.recovery_seconds, f"recovered {timeline.recovery_seconds:.1f} s"))
    return time_series_png(
        panels,
        title=title,
        xlabel="seconds since the fault was injected",
        marks=marks,
        spans=[(0.0, timeline.down_seconds, f"down {timeline.down_seconds:.1f} s")],
    )
