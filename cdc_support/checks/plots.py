"""Time-series plots for the report: measured values over time, as PNG bytes.

:func:`time_series_png` draws one or more stacked panels sharing the time axis, one line per
series (the same colour for a series name in every panel), optional dashed reference lines,
horizontal limits, labelled vertical marks for moments such as "writer started", and shaded
spans for windows such as "Kafka Connect down". Like
:func:`cdc_support.checks.lag.lag_plot_png` it uses the Agg canvas directly, so no global
matplotlib state is changed.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

__all__ = ["Panel", "Points", "time_series_png"]

Points = tuple[Sequence[float], Sequence[float]]
"""(times, values) of one series."""


@dataclass(frozen=True)
class Panel:
    """One plot area: solid ``series`` by name, dashed ``references``, horizontal ``limits``."""

    ylabel: str
    series: Mapping[str, Points]
    title: str = ""
    references: Mapping[str, Points] = field(default_factory=dict)
    limits: Mapping[str, float] = field(default_factory=dict)


def time_series_png(
    panels: Sequence[Panel],
    *,
    title: str,
    xlabel: str = "seconds",
    marks: Sequence[tuple[float, str]] = (),
    spans: Sequence[tuple[float, float, str]] = (),
    legend_outside: bool = False,
) -> bytes:
    """PNG of ``panels`` stacked top to bottom; ``marks`` are (time, label) vertical lines,
    ``spans`` (start, end, label) shaded windows; ``legend_outside`` puts each legend right of
    its panel instead of in its upper left."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    if not panels:
        raise ValueError("time_series_png needs at least one panel")
    fig = Figure(figsize=(11, 1.0 + 3.2 * len(panels)), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(len(panels), 1, sharex=True, squeeze=False)[:, 0]
    fig.suptitle(title)
    colours: dict[str, str] = {}
    for ax, panel in zip(axes, panels, strict=True):
        for name, (times, values) in panel.series.items():
            colour = colours.setdefault(name, f"C{len(colours) % 10}")
            ax.plot(
                times, values, color=colour, linewidth=1.2, marker=".", markersize=3, label=name
            )
        for index, (name, (times, values)) in enumerate(panel.references.items()):
            ax.plot(times, values, color="0.35", linestyle=("--", ":", "-.")[index % 3], label=name)
        for name, value in panel.limits.items():
            ax.axhline(value, color="red", linestyle="--", linewidth=1, label=name)
        for start, end, label in spans:
            ax.axvspan(start, end, color="red", alpha=0.12, linewidth=0, label=label)
        for at, label in marks:
            ax.axvline(at, color="0.6", linestyle=":", linewidth=1)
            ax.annotate(
                label,
                xy=(at, 1.0),
                xycoords=("data", "axes fraction"),
                xytext=(2, -3),
                textcoords="offset points",
                rotation=90,
                va="top",
                fontsize=7,
                color="0.4",
            )
        if panel.title:
            ax.set_title(panel.title, fontsize=10)
        ax.set_ylabel(panel.ylabel)
        ax.grid(True, alpha=0.3)
        if panel.series or panel.references or panel.limits or spans:
            outside = {"bbox_to_anchor": (1.01, 1.0)} if legend_outside else {}
            ax.legend(fontsize=7, loc="upper left", **outside)
        if not (panel.series or panel.references or panel.limits):
            ax.text(0.5, 0.5, "no samples", ha="center", va="center", transform=ax.transAxes)
    axes[-1].set_xlabel(xlabel)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()
