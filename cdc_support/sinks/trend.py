"""Commit latency over a run: does it stay flat? Numbers and a plot."""

from __future__ import annotations

import io
import statistics
from collections.abc import Sequence
from typing import Any

from cdc_support.checks.lag import percentile, slope

__all__ = ["latency_plot_png", "latency_trend"]


def latency_trend(latencies: Sequence[float], window: int = 5) -> dict[str, Any]:
    """Medians of the first and last ``window`` commits, percentiles, least-squares slope."""
    if not latencies:
        raise ValueError("no commit latencies: the worker committed nothing")
    ordered = sorted(latencies)
    w = max(1, min(window, len(latencies) // 2 or 1))
    return {
        "commits": len(latencies),
        "window": w,
        "median_first": statistics.median(latencies[:w]),
        "median_last": statistics.median(latencies[-w:]),
        "p50": percentile(ordered, 50),
        "p95": percentile(ordered, 95),
        "max": ordered[-1],
        "slope_ms_per_commit": slope(latencies) * 1000,
    }


def latency_plot_png(
    series: dict[str, Sequence[float]], *, title: str, marks: Sequence[int] = ()
) -> bytes:
    """PNG: commit latency per commit, one line per series; ``marks`` (commit numbers, 1-based)
    are drawn as dotted vertical lines (e.g. where maintenance ran)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, 4), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    for index, (name, values) in enumerate(series.items()):
        ax.plot(range(1, len(values) + 1), list(values), color=f"C{index}", label=name, lw=1)
    for mark in marks:
        ax.axvline(mark, color="grey", linestyle=":", linewidth=0.8)
    ax.set_xlabel("commit #")
    ax.set_ylabel("commit latency (s)")
    ax.set_ylim(bottom=0)
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    if series:
        ax.legend(fontsize=8)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()
