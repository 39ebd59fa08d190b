"""How a snapshot's reads and the streamed changes interleave, per second and in topic order.

An initial snapshot delivers all its reads before the first streamed change; an incremental
snapshot reads chunk by chunk between streamed changes. :func:`interleaving` counts both per
second of observation, and the *runs* in delivery order (a run: consecutive events of one
kind), which tell the two apart at a glance: an initial snapshot has 2 runs, an incremental
one many.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from cdc_support.checks.plots import Panel, time_series_png
from cdc_support.events import ChangeEvent

__all__ = ["Interleaving", "interleaving", "interleaving_png"]


@dataclass(frozen=True)
class Interleaving:
    """Reads and streamed changes per second since ``start``, and their runs in order."""

    start: float
    seconds: tuple[int, ...]
    reads: tuple[int, ...]
    streamed: tuple[int, ...]
    runs: int
    """Stretches of consecutive events of one kind (read / streamed), in delivery order."""
    read_runs: int
    """How many of those are reads (an initial snapshot: 1; a restarted one: more)."""

    def summary(self) -> str:
        """One line: totals and runs."""
        return (
            f"{sum(self.reads)} reads and {sum(self.streamed)} streamed changes over "
            f"{len(self.seconds)} s, in {self.runs} runs ({self.read_runs} of reads)"
        )

    def as_dict(self) -> dict[str, Any]:
        """Totals and runs (for JSON attachments)."""
        return {
            "reads": sum(self.reads),
            "streamed": sum(self.streamed),
            "seconds": len(self.seconds),
            "runs": self.runs,
            "runs of reads": self.read_runs,
        }


def interleaving(events: Iterable[ChangeEvent], start: float | None = None) -> Interleaving:
    """Count reads (op "r") and streamed changes per second of ``observed_ts`` since
    ``start`` (default: the first observation), and the runs in the given order."""
    events = list(events)
    observed = [e.observed_ts for e in events if e.observed_ts is not None]
    if start is None:
        start = min(observed, default=0.0)
    end = math.floor(max(observed, default=start) - start) + 1
    reads, streamed = [0] * end, [0] * end
    for event in events:
        if event.observed_ts is None or event.observed_ts < start:
            continue
        second = math.floor(event.observed_ts - start)
        (reads if event.op == "r" else streamed)[second] += 1
    kinds = [e.op == "r" for e in events]
    starts = [i for i, kind in enumerate(kinds) if i == 0 or kind != kinds[i - 1]]
    return Interleaving(
        start=start,
        seconds=tuple(range(end)),
        reads=tuple(reads),
        streamed=tuple(streamed),
        runs=len(starts),
        read_runs=sum(1 for i in starts if kinds[i]),
    )


def interleaving_png(
    result: Interleaving, title: str, marks: Iterable[tuple[float, str]] = ()
) -> bytes:
    """PNG: reads/s and streamed changes/s, one panel, ``marks`` as (seconds, label) lines."""
    middles = [s + 0.5 for s in result.seconds]
    panel = Panel(
        ylabel="events/s",
        series={"snapshot reads (r)": (middles, result.reads),
                "streamed changes (c/u/d)": (middles, result.streamed)},
        title=result.summary(),
    )  # fmt: skip
    return time_series_png(
        [panel], title=title, xlabel="seconds since the first event", marks=list(marks)
    )
