"""Lag measurement: per-event lag samples, percentile statistics and plots.

Lag is ``observed_ts - commit_ts`` of a :class:`~cdc_support.events.ChangeEvent`: source commit
time to the moment the consumer (or sink) saw the change. Samples are kept raw: with clocks on
different hosts a small negative lag is possible and is not clamped.
"""

from __future__ import annotations

import io
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass

from cdc_support.events import ChangeEvent

__all__ = [
    "LagStats",
    "lag_against_commits",
    "lag_plot_png",
    "lag_samples",
    "percentile",
    "slope",
]


def percentile(sorted_samples: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100) of sorted samples, linear interpolation (numpy default)."""
    if not sorted_samples:
        raise ValueError("percentile of an empty sample")
    if not 0 <= q <= 100:
        raise ValueError(f"percentile q must be within 0..100, got {q}")
    pos = (len(sorted_samples) - 1) * q / 100
    lo = math.floor(pos)
    hi = min(lo + 1, len(sorted_samples) - 1)
    frac = pos - lo
    return sorted_samples[lo] + (sorted_samples[hi] - sorted_samples[lo]) * frac


def _fmt_seconds(value: float) -> str:
    return f"{value:.3f}s"


@dataclass(frozen=True)
class LagStats:
    """Summary of lag samples, all in seconds."""

    count: int
    p50: float
    p95: float
    p99: float
    max: float
    mean: float

    @classmethod
    def from_samples(cls, samples: Sequence[float]) -> LagStats:
        """Percentiles (linear interpolation), max and mean; ValueError if there are none."""
        if not samples:
            raise ValueError("no lag samples: no event had both a commit time and an observed time")
        ordered = sorted(float(s) for s in samples)
        return cls(
            count=len(ordered),
            p50=percentile(ordered, 50),
            p95=percentile(ordered, 95),
            p99=percentile(ordered, 99),
            max=ordered[-1],
            mean=math.fsum(ordered) / len(ordered),
        )

    def as_dict(self) -> dict[str, float | int]:
        """Fields as a plain dict (for JSON attachments and tables)."""
        return asdict(self)

    def summary(self) -> str:
        """E.g. ``n=1000 p50=0.120s p95=0.480s p99=0.900s max=1.200s mean=0.150s``."""
        return (
            f"n={self.count} p50={_fmt_seconds(self.p50)} p95={_fmt_seconds(self.p95)} "
            f"p99={_fmt_seconds(self.p99)} max={_fmt_seconds(self.max)} "
            f"mean={_fmt_seconds(self.mean)}"
        )


def lag_samples(events: Iterable[ChangeEvent]) -> list[float]:
    """Lag in seconds of each event that has both timestamps, in event order (raw, unclamped)."""
    samples = []
    for event in events:
        lag = getattr(event, "lag_seconds", None)
        if lag is not None:
            samples.append(lag)
    return samples


def slope(values: Sequence[float]) -> float:
    """Least-squares slope of ``values`` against their index (e.g. seconds per commit)."""
    n = len(values)
    if n < 2:
        return 0.0
    mean_x = (n - 1) / 2
    mean_y = math.fsum(values) / n
    num = math.fsum((i - mean_x) * (v - mean_y) for i, v in enumerate(values))
    den = math.fsum((i - mean_x) ** 2 for i in range(n))
    return num / den


def lag_against_commits(
    events: Sequence[ChangeEvent], commits: Sequence[tuple[str, tuple, float | None]]
) -> list[float]:
    """Lag of each event against the client-side commit time of the write that caused it.

    ``commits`` are ``(op code, key, committed_at)`` in commit order, one per single-row
    transaction; the i-th event must be about the i-th commit (same op and key), which holds
    for a consumer that delivers in commit order. Use it where the source's own commit time is
    too coarse (binlog timestamps have one-second resolution). ValueError names the first
    mismatch; events beyond the commits, or commits without a time, are not sampled.
    """
    samples = []
    for index, (event, (op, key, committed_at)) in enumerate(zip(events, commits, strict=False)):
        if (event.op, event.key) != (op, key):
            raise ValueError(
                f"event #{index} is {event.op!r} for key {event.key}, but commit #{index} was "
                f"{op!r} for key {key}: events are not in commit order (or some are missing)"
            )
        if committed_at is not None and event.observed_ts is not None:
            samples.append(event.observed_ts - committed_at)
    return samples


def lag_plot_png(
    series: Mapping[str, Sequence[float]],
    *,
    title: str,
    limit_seconds: float | None = None,
) -> bytes:
    """PNG with two panels: lag per event (one line per series) and the empirical CDF.

    The CDF panel marks p50/p95/p99 of each series; ``limit_seconds`` draws a dashed limit line
    on both panels. Uses the Agg canvas directly, so no global matplotlib state is changed.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(11, 4.5), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    ax_line, ax_cdf = fig.subplots(1, 2, gridspec_kw={"width_ratios": [3, 2]})
    fig.suptitle(title)

    non_empty = {name: list(values) for name, values in series.items() if len(values) > 0}
    for index, (name, values) in enumerate(non_empty.items()):
        color = f"C{index % 10}"
        stats = LagStats.from_samples(values)
        ax_line.plot(
            range(1, len(values) + 1),
            values,
            color=color,
            linewidth=0.9,
            marker="." if len(values) <= 200 else None,
            markersize=3,
            label=f"{name} ({stats.summary()})" if len(non_empty) > 1 else name,
        )
        ordered = sorted(values)
        n = len(ordered)
        ax_cdf.step(ordered, [(i + 1) / n for i in range(n)], where="post", color=color, label=name)
        for q, style, dy in ((50, ":", -10), (95, "--", -12), (99, "-.", 3)):
            value = percentile(ordered, q)
            ax_cdf.axvline(value, color=color, linestyle=style, linewidth=0.8, alpha=0.8)
            ax_cdf.annotate(
                f"p{q}={value:.3g}s",
                xy=(value, q / 100),
                xytext=(3, dy),
                textcoords="offset points",
                fontsize=7,
                color=color,
            )

    if limit_seconds is not None:
        label = f"limit {limit_seconds:g}s"
        ax_line.axhline(limit_seconds, color="red", linestyle="--", linewidth=1, label=label)
        ax_cdf.axvline(limit_seconds, color="red", linestyle="--", linewidth=1, label=label)

    ax_line.set_xlabel("event #")
    ax_line.set_ylabel("lag (s)")
    ax_line.set_title("lag per event")
    ax_line.grid(True, alpha=0.3)
    ax_cdf.set_xlabel("lag (s)")
    ax_cdf.set_ylabel("fraction of events ≤ lag")
    ax_cdf.set_ylim(0, 1.06)
    ax_cdf.set_title("empirical CDF (p50 ·· p95 -- p99 -·)")
    ax_cdf.grid(True, alpha=0.3)
    if not non_empty:
        ax_line.text(0.5, 0.5, "no samples", ha="center", va="center", transform=ax_line.transAxes)
    if non_empty or limit_seconds is not None:
        ax_line.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.14), ncols=1)
        ax_cdf.legend(fontsize=7, loc="lower right")

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()
