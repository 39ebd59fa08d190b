"""Benchmark of the Iceberg snapshot-diff approach: diff throughput and upsert latency trend.

Two measurements on real pyiceberg tables in a temporary SQLite-catalog warehouse:

* **diff throughput** — a table of ``rows`` generated products gets one upsert that changes
  ``changed_fraction`` of them (pyiceberg rewrites the affected data files); the changelog
  across that upsert is derived as net changes and snapshot by snapshot. Reported as rows
  read from data files per second and change events per second.
* **upsert latency trend** — ``upserts`` upserts of ``batch`` rows (updates of existing keys
  plus a few inserts) into a table of ``rows`` rows, timed one by one, once keeping every
  snapshot and once expiring all snapshots but the current one after each upsert.

Run ``python -m cdc_support.bench.iceberg`` for a readable table, or call :func:`run`.
Numbers depend on the machine; nothing here asserts a speed.
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from cdc_support.checks.lag import slope
from cdc_support.iceberg import (
    changes_between,
    create_table,
    generated_schema,
    open_catalog,
    to_arrow,
)
from cdc_support.workload import EcommerceGenerator

__all__ = ["format_report", "run"]


def _trend(latencies: Sequence[float]) -> dict[str, Any]:
    window = max(1, min(5, len(latencies) // 4 or 1))
    return {
        "count": len(latencies),
        "first": latencies[0],
        "median_first": statistics.median(latencies[:window]),
        "median_last": statistics.median(latencies[-window:]),
        "last": latencies[-1],
        "p50": statistics.median(latencies),
        "max": max(latencies),
        "slope_ms_per_upsert": slope(latencies) * 1000,
        "window": window,
        "latencies": latencies,
    }


def _diff_throughput(catalog: Any, rows: int, changed_fraction: float, seed: int) -> dict[str, Any]:
    table = create_table(catalog, "bench.diff", generated_schema("products"))
    gen = EcommerceGenerator(seed)
    products = gen.products(rows)
    table.append(to_arrow(table, products))
    before = table.current_snapshot()
    assert before is not None
    step = max(1, round(1 / changed_fraction)) if changed_fraction > 0 else rows + 1
    changed = [{**p, **gen.changes("products", p)} for p in products[::step]]
    inserted = gen.products(max(1, len(changed) // 10))
    table.upsert(to_arrow(table, changed + inserted))
    results: dict[str, Any] = {
        "table_rows": rows,
        "upserted_rows": len(changed) + len(inserted),
        "snapshots_of_upsert": len(table.snapshots()) - 1,
    }
    for mode, net in (("net", True), ("per_snapshot", False)):
        started = time.perf_counter()
        log = changes_between(table, before.snapshot_id, net_changes=net)
        seconds = time.perf_counter() - started
        rows_read = sum(d.rows_read for d in log.diffs)
        events = len(log.events)
        results[mode] = {
            "seconds": seconds,
            "rows_read": rows_read,
            "events": events,
            "carried_over": sum(d.carried_over for d in log.diffs),
            "rows_per_second": rows_read / seconds if seconds > 0 else float("inf"),
            "events_per_second": events / seconds if seconds > 0 else float("inf"),
        }
    return results


def _upsert_latencies(
    catalog: Any, name: str, rows: int, upserts: int, batch: int, seed: int, expire: bool
) -> dict[str, Any]:
    table = create_table(catalog, f"bench.{name}", generated_schema("products"))
    gen = EcommerceGenerator(seed)
    current = {p["id"]: p for p in gen.products(rows)}
    table.append(to_arrow(table, current.values()))
    latencies: list[float] = []
    expiry: list[float] = []
    for _ in range(upserts):
        keys = gen.random.sample(sorted(current), min(batch, len(current)))
        updates = [{**current[k], **gen.changes("products", current[k])} for k in keys]
        inserts = gen.products(max(1, batch // 10))
        started = time.perf_counter()
        table.upsert(to_arrow(table, updates + inserts))
        latencies.append(time.perf_counter() - started)
        for row in updates + inserts:
            current[row["id"]] = row
        if expire:
            started = time.perf_counter()
            cutoff = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1)
            table.maintenance.expire_snapshots().older_than(cutoff).commit()
            expiry.append(time.perf_counter() - started)
    trend = _trend(latencies)
    trend["snapshots_kept"] = len(table.snapshots())
    trend["data_files"] = len(table.inspect.files())
    if expiry:
        trend["expire_p50"] = statistics.median(expiry)
    return trend


def run(
    *,
    rows: int = 20_000,
    changed_fraction: float = 0.01,
    upserts: int = 30,
    batch: int = 100,
    seed: int = 42,
    workdir: str | Path | None = None,
) -> dict[str, Any]:
    """Measure diff throughput and upsert latency (with and without expiry); return a dict.

    Keys: ``parameters``, ``diff`` (net and per-snapshot: seconds, rows_read, events,
    rows_per_second, ...), ``upsert_latency`` (``keep_snapshots`` and ``expire_each``: first,
    last, medians of the first and last few, p50, slope in ms per upsert, raw latencies).
    """
    if rows < 1 or upserts < 1 or batch < 1 or not 0 <= changed_fraction <= 1:
        raise ValueError(
            "need rows >= 1, upserts >= 1, batch >= 1 and 0 <= changed_fraction <= 1, got "
            f"{rows=} {upserts=} {batch=} {changed_fraction=}"
        )
    with tempfile.TemporaryDirectory(prefix="iceberg-bench-", dir=workdir) as tmp:
        catalog = open_catalog(Path(tmp) / "warehouse")
        try:
            diff = _diff_throughput(catalog, rows, changed_fraction, seed)
            keep = _upsert_latencies(catalog, "keep", rows, upserts, batch, seed, expire=False)
            expire = _upsert_latencies(catalog, "expire", rows, upserts, batch, seed, expire=True)
        finally:
            catalog.engine.dispose()
    return {
        "parameters": {
            "rows": rows,
            "changed_fraction": changed_fraction,
            "upserts": upserts,
            "batch": batch,
            "seed": seed,
        },
        "diff": diff,
        "upsert_latency": {"keep_snapshots": keep, "expire_each": expire},
    }


def format_report(result: dict[str, Any]) -> str:
    """The result of :func:`run` as a plain-text table."""
    p = result["parameters"]
    d = result["diff"]
    lines = [
        f"Iceberg snapshot diff (pyiceberg) — {p['rows']} rows, upsert of {d['upserted_rows']} "
        f"rows ({d['snapshots_of_upsert']} snapshots)",
        "",
        f"{'diff mode':<14}{'seconds':>10}{'rows read':>12}{'rows/s':>12}{'events':>9}"
        f"{'events/s':>11}{'carried':>9}",
    ]
    for mode in ("net", "per_snapshot"):
        m = d[mode]
        lines.append(
            f"{mode:<14}{m['seconds']:>10.3f}{m['rows_read']:>12}{m['rows_per_second']:>12,.0f}"
            f"{m['events']:>9}{m['events_per_second']:>11,.0f}{m['carried_over']:>9}"
        )
    lines += [
        "",
        f"upsert latency, {p['upserts']} upserts of {p['batch']} rows (+{max(1, p['batch'] // 10)}"
        " new) each, seconds:",
        f"{'variant':<16}{'first':>8}{'med first':>11}{'med last':>10}{'last':>8}{'p50':>8}"
        f"{'max':>8}{'ms/upsert':>11}{'snapshots':>11}{'files':>7}",
    ]
    for name, t in result["upsert_latency"].items():
        lines.append(
            f"{name:<16}{t['first']:>8.3f}{t['median_first']:>11.3f}{t['median_last']:>10.3f}"
            f"{t['last']:>8.3f}{t['p50']:>8.3f}{t['max']:>8.3f}{t['slope_ms_per_upsert']:>11.2f}"
            f"{t['snapshots_kept']:>11}{t['data_files']:>7}"
        )
    expire = result["upsert_latency"]["expire_each"]
    if "expire_p50" in expire:
        lines.append(f"(expire_snapshots after each upsert: p50 {expire['expire_p50']:.3f}s)")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: run the benchmark and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=20_000, help="rows in the table")
    parser.add_argument(
        "--changed-fraction", type=float, default=0.01, help="share of rows one upsert changes"
    )
    parser.add_argument("--upserts", type=int, default=30, help="upserts in the latency run")
    parser.add_argument("--batch", type=int, default=100, help="updated rows per upsert")
    parser.add_argument("--seed", type=int, default=42, help="generator seed")
    args = parser.parse_args(argv)
    result = run(
        rows=args.rows,
        changed_fraction=args.changed_fraction,
        upserts=args.upserts,
        batch=args.batch,
        seed=args.seed,
    )
    print(format_report(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
