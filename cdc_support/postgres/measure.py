"""Measure approaches on one workload, and the comparison table the report shows.

:func:`measure_approach` starts an approach on a fresh table, runs a seeded workload against
it, writes a marker row, waits until the marker is delivered (everything committed before it
has been, by then) and returns a :class:`WorkloadRun`: what was committed and delivered, lag
percentiles (source commit time → delivery), events/s, and the cost on the source — WAL bytes
written during the workload (``pg_current_wal_lsn()`` before and after) and rows written
(the database's tuple counters) beyond the workload's own. :func:`measure_baseline` runs the
same workload with no capture, for scale.

:class:`ApproachOutcomes` collects what the rule scenarios observed per approach;
:func:`comparison_table_html` renders one row per approach from runs and outcomes.
"""

from __future__ import annotations

import html
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import psycopg

from cdc_support.checks.delivery import DeliveryReport, committed_ops, delivery_report
from cdc_support.checks.lag import LagStats, lag_samples
from cdc_support.events import ChangeEvent
from cdc_support.postgres.base import CaptureApproach
from cdc_support.postgres.catalog import CatalogDiff, catalog_diff, catalog_snapshot
from cdc_support.postgres.loader import mixed_workload
from cdc_support.workload import EcommerceGenerator, Operation

__all__ = [
    "RULES",
    "ApproachOutcomes",
    "Outcome",
    "SourceMeter",
    "WorkloadRun",
    "comparison_rows",
    "comparison_table_html",
    "measure_approach",
    "measure_baseline",
    "rows_written",
    "wal_lsn",
]

RULES = (
    "hard deletes",
    "intermediate updates",
    "before-image",
    "restart without loss",
    "long transaction",
    "source schema change",
)
"""The rules of features/postgres/approaches.feature, in the order of the table's columns."""
COST_RULES = frozenset({"source schema change"})
"""Rules where "yes" is a cost, not a capability (shown in red rather than green)."""

MARKER_KEY = 10_000_000


# --------------------------------------------------------------------------- source cost


def wal_lsn(conn: psycopg.Connection[Any]) -> int:
    """The server's current WAL insert position, in bytes."""
    row = conn.execute("SELECT (pg_current_wal_lsn() - '0/0'::pg_lsn)::bigint").fetchone()
    assert row is not None
    return int(row[0])


def rows_written(conn: psycopg.Connection[Any]) -> int:
    """Tuples inserted + updated + deleted in the database's user tables so far (stats)."""
    conn.execute("SELECT pg_stat_clear_snapshot()")
    row = conn.execute(
        "SELECT coalesce(sum(n_tup_ins + n_tup_upd + n_tup_del), 0)::bigint "
        "FROM pg_stat_user_tables"
    ).fetchone()
    assert row is not None
    return int(row[0])


def _flush_stats(conn: psycopg.Connection[Any]) -> None:
    """Make this backend publish its table counters now (PostgreSQL 15+)."""
    conn.execute("SELECT pg_stat_force_next_flush()")


@dataclass
class SourceMeter:
    """WAL bytes and rows written on the source between :meth:`begin` and :meth:`end`.

    ``writer`` must be the connection doing the writes (its counters are flushed on demand;
    triggers count in the writer's backend). WAL is server-wide: run nothing else meanwhile.
    """

    writer: psycopg.Connection[Any]
    wal_bytes: int = 0
    rows: int = 0
    seconds: float = 0.0
    _wal0: int = 0
    _rows0: int = 0
    _t0: float = 0.0

    def begin(self) -> None:
        _flush_stats(self.writer)
        self._rows0 = rows_written(self.writer)
        self._wal0 = wal_lsn(self.writer)
        self._t0 = time.monotonic()

    def end(self) -> None:
        self.seconds = time.monotonic() - self._t0
        self.wal_bytes = wal_lsn(self.writer) - self._wal0
        _flush_stats(self.writer)
        self.rows = rows_written(self.writer) - self._rows0


# --------------------------------------------------------------------------- runs


@dataclass
class WorkloadRun:
    """One approach (or none) through one workload: what arrived, how fast, at what cost."""

    approach: str
    operations: list[Operation]
    events: list[ChangeEvent]
    wal_bytes: int
    rows_written: int
    writer_seconds: float
    delivery_seconds: float
    footprint: CatalogDiff | None = None
    columns: tuple[str, ...] = ()

    @property
    def committed(self) -> Counter[str]:
        """Committed operations by op code (c/u/d)."""
        return Counter(op for op, _ in committed_ops(self.operations))

    @property
    def delivered(self) -> Counter[str]:
        """Delivered events by op code."""
        return Counter(e.op for e in self.events)

    @property
    def extra_rows(self) -> int:
        """Rows written on the source beyond the workload's own (audit rows, ...)."""
        return self.rows_written - len(self.operations)

    @property
    def lag_samples(self) -> list[float]:
        """Per event: source commit time → delivery, seconds."""
        return lag_samples(self.events)

    @property
    def lag(self) -> LagStats | None:
        """Lag percentiles (None when no event has both times)."""
        samples = self.lag_samples
        return LagStats.from_samples(samples) if samples else None

    @property
    def events_per_second(self) -> float:
        """Events delivered ÷ seconds from the workload's start to the last delivery."""
        return len(self.events) / self.delivery_seconds if self.delivery_seconds > 0 else 0.0

    @property
    def writer_ops_per_second(self) -> float:
        """The workload's own rate (for scale)."""
        return len(self.operations) / self.writer_seconds if self.writer_seconds > 0 else 0.0

    @property
    def full_before_images(self) -> int:
        """Update events whose before-image has every column of the row."""
        columns = set(self.columns)
        return sum(
            1
            for e in self.events
            if e.op == "u" and e.before is not None and columns <= set(e.before)
        )

    def delivery(self) -> DeliveryReport:
        """Per-key loss/duplicate accounting against the workload."""
        return delivery_report(committed_ops(self.operations), self.events)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready measurements."""
        lag = self.lag
        return {
            "approach": self.approach,
            "operations committed": dict(self.committed),
            "events delivered": dict(self.delivered),
            "lag seconds": lag.as_dict() if lag else None,
            "events per second": round(self.events_per_second, 1),
            "writer ops per second": round(self.writer_ops_per_second, 1),
            "rows written on the source": self.rows_written,
            "extra rows written": self.extra_rows,
            "WAL bytes during the workload": self.wal_bytes,
            "update events with a full before-image": self.full_before_images,
            "footprint on the source": self.footprint.as_dict() if self.footprint else None,
            "delivery": self.delivery().as_dict() if self.events else None,
        }


def _workload(conn: psycopg.Connection[Any], operations: int, seed: int) -> list[Operation]:
    return mixed_workload(conn, EcommerceGenerator(seed), operations, table="customers")


def _table_columns(conn: psycopg.Connection[Any], table: str) -> tuple[str, ...]:
    rows = conn.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_schema = 'public' "
        "AND table_name = %s ORDER BY ordinal_position",
        (table,),
    ).fetchall()
    return tuple(r[0] for r in rows)


def measure_baseline(conn: psycopg.Connection[Any], *, operations: int, seed: int) -> WorkloadRun:
    """The workload on a table nobody captures: the WAL and rows it costs by itself."""
    meter = SourceMeter(conn)
    meter.begin()
    ops = _workload(conn, operations, seed)
    meter.end()
    return WorkloadRun(
        "none (baseline)", ops, [], meter.wal_bytes, meter.rows, meter.seconds, meter.seconds
    )


def measure_approach(
    approach: CaptureApproach,
    conn: psycopg.Connection[Any],
    *,
    operations: int,
    seed: int,
    timeout: float = 120.0,
) -> WorkloadRun:
    """Start ``approach`` on the (empty) customers table of ``conn``'s database, run the
    workload, then a marker insert; wait for the marker; measure. The caller closes it."""
    before = catalog_snapshot(conn)
    approach.start()
    footprint = catalog_diff(before, catalog_snapshot(conn))
    meter = SourceMeter(conn)
    meter.begin()
    started = time.time()
    ops = _workload(conn, operations, seed)
    meter.end()
    conn.execute(
        "INSERT INTO customers (id, email, full_name, country, created_at) "
        "VALUES (%s, 'marker@example.org', 'Marker', 'ZZ', now())",
        (MARKER_KEY,),
    )
    delivered = approach.wait_events(
        lambda evs: any(e.key == (MARKER_KEY,) for e in evs),
        expected=f"the marker row {MARKER_KEY} written after the workload",
        timeout=timeout,
    )
    events = [e for e in delivered if e.key != (MARKER_KEY,)]
    last = max((e.observed_ts or started) for e in events) if events else started
    return WorkloadRun(
        approach.name,
        ops,
        events,
        meter.wal_bytes,
        meter.rows,
        meter.seconds,
        max(last - started, 1e-9),
        footprint,
        _table_columns(conn, "customers"),
    )


# --------------------------------------------------------------------------- outcomes


@dataclass(frozen=True)
class Outcome:
    """What one rule scenario observed for one approach."""

    yes: bool
    detail: str


@dataclass
class ApproachOutcomes:
    """Rule outcomes observed in this run, by (approach, rule)."""

    items: dict[tuple[str, str], Outcome] = field(default_factory=dict)

    def record(self, approach: str, rule: str, *, yes: bool, detail: str) -> None:
        """Remember what a scenario observed (the latest observation wins)."""
        if rule not in RULES:
            raise ValueError(f"unknown rule {rule!r}; one of {RULES}")
        self.items[(approach, rule)] = Outcome(yes, detail)

    def get(self, approach: str, rule: str) -> Outcome | None:
        """The observation, or None when that scenario did not run in this session."""
        return self.items.get((approach, rule))

    def as_dict(self) -> dict[str, dict[str, Any]]:
        """``{approach: {rule: {"yes": ..., "detail": ...}}}``."""
        out: dict[str, dict[str, Any]] = {}
        for (approach, rule), o in self.items.items():
            out.setdefault(approach, {})[rule] = {"yes": o.yes, "detail": o.detail}
        return out

    def __repr__(self) -> str:
        return f"ApproachOutcomes({len(self.items)} observations)"


# --------------------------------------------------------------------------- the table


def _ratio(part: int, whole: int) -> str:
    return f"{part}/{whole}"


def _measured_rules(run: WorkloadRun) -> dict[str, tuple[bool, str]]:
    """The rules a workload run measures by itself: (yes, detail) per rule."""
    c, d = run.committed, run.delivered
    footprint = run.footprint
    kinds = sorted(footprint.kinds()) if footprint else []
    result = {
        "hard deletes": (
            d["d"] == c["d"] > 0,
            f"workload: {_ratio(d['d'], c['d'])} deletes delivered",
        ),
        "intermediate updates": (
            d["u"] == c["u"] > 0,
            f"workload: {_ratio(d['u'], c['u'])} updates delivered",
        ),
        "before-image": (
            run.full_before_images == d["u"] > 0,
            f"workload: {_ratio(run.full_before_images, d['u'])} updates with the whole old row",
        ),
    }
    if footprint is not None:
        result["source schema change"] = (
            footprint.schema_changed,
            "adds " + (", ".join(kinds) or "nothing"),
        )
    return result


def comparison_rows(runs: list[WorkloadRun], outcomes: ApproachOutcomes) -> list[dict[str, Any]]:
    """One dict per run: rule cells (yes/no + detail) and the measured numbers."""
    rows = []
    for run in runs:
        measured = _measured_rules(run) if run.events or run.footprint else {}
        cells: dict[str, Any] = {"approach": run.approach}
        for rule in RULES:
            seen = outcomes.get(run.approach, rule)
            from_run = measured.get(rule)
            if run.approach.startswith("none"):
                cells[rule] = None
                continue
            yes = seen.yes if seen is not None else (from_run[0] if from_run else None)
            details = [d for d in (seen.detail if seen else None, from_run and from_run[1]) if d]
            details = list(dict.fromkeys(details))  # the same words twice say nothing more
            if seen is None and from_run is None:
                details = ["not run in this session"]
            cells[rule] = {"yes": yes, "detail": "; ".join(details)}
        lag = run.lag
        cells.update(
            {
                "events delivered / committed": f"{len(run.events)}/{len(run.operations)}",
                "lag p50 s": lag.p50 if lag else None,
                "lag p95 s": lag.p95 if lag else None,
                "lag p99 s": lag.p99 if lag else None,
                "events/s": run.events_per_second if run.events else None,
                "writer ops/s": run.writer_ops_per_second,
                "extra rows written": run.extra_rows,
                "WAL bytes": run.wal_bytes,
            }
        )
        rows.append(cells)
    return rows


_STYLE = """
body { font-family: sans-serif; font-size: 13px; margin: 1em; }
table { border-collapse: collapse; }
th, td { border: 1px solid #ccc; padding: 4px 8px; text-align: left; vertical-align: top; }
th { background: #f0f0f0; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.good { color: #070; font-weight: bold; } .bad { color: #b00; font-weight: bold; }
.detail { color: #666; font-size: 11px; } .na { color: #999; font-style: italic; }
"""


def _rule_cell(rule: str, cell: dict[str, Any] | None) -> str:
    if cell is None:
        return '<td class="na">—</td>'
    yes = cell["yes"]
    if yes is None:
        word = '<span class="na">?</span>'
    else:
        good = yes != (rule in COST_RULES)
        word = f'<span class="{"good" if good else "bad"}">{"yes" if yes else "no"}</span>'

    return f'<td>{word}<div class="detail">{html.escape(cell["detail"])}</div></td>'


def _num(value: Any, fmt: str) -> str:
    if value is None:
        return '<td class="num na">—</td>'
    return f'<td class="num">{format(value, fmt)}</td>'


def comparison_table_html(
    runs: list[WorkloadRun],
    outcomes: ApproachOutcomes,
    *,
    title: str = "PostgreSQL CDC approaches, measured in this run",
    note: str = "",
) -> str:
    """A self-contained HTML page: one row per approach, rules then numbers."""
    rows = comparison_rows(runs, outcomes)
    baseline = next((r for r in runs if r.approach.startswith("none")), None)
    head = (
        "<tr><th>approach</th>"
        + "".join(f"<th>{html.escape(r)}</th>" for r in RULES)
        + "<th>events delivered / committed</th><th>lag p50 (s)</th><th>lag p95 (s)</th>"
        "<th>lag p99 (s)</th><th>events/s</th><th>writer ops/s</th>"
        "<th>extra rows written on the source</th><th>WAL bytes during the workload</th></tr>"
    )
    body = []
    for row, run in zip(rows, runs, strict=True):
        wal = f"{row['WAL bytes']:,}"
        if baseline is not None and run is not baseline and baseline.wal_bytes > 0:
            wal += f' <span class="detail">({run.wal_bytes / baseline.wal_bytes:.2f} x baseline)'
            wal += "</span>"
        body.append(
            f"<tr><th>{html.escape(row['approach'])}</th>"
            + "".join(_rule_cell(r, row[r]) for r in RULES)
            + f'<td class="num">{row["events delivered / committed"]}</td>'
            + _num(row["lag p50 s"], ".3f")
            + _num(row["lag p95 s"], ".3f")
            + _num(row["lag p99 s"], ".3f")
            + _num(row["events/s"], ".0f")
            + _num(row["writer ops/s"], ".0f")
            + _num(row["extra rows written"], ",d")
            + f'<td class="num">{wal}</td></tr>'
        )
    return (
        '<!DOCTYPE html>\n<html><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head><body>"
        f"<h2>{html.escape(title)}</h2>"
        + (f"<p>{html.escape(note)}</p>" if note else "")
        + f"<table><thead>{head}</thead><tbody>{''.join(body)}</tbody></table></body></html>\n"
    )
