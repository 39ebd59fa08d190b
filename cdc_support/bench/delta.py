"""Benchmark of Delta Lake's Change Data Feed with delta-rs: MERGE and CDF read throughput.

Measured on real delta-rs tables in a temporary folder (no Spark, no services):

* **MERGE throughput** — a CDF-enabled table of ``rows`` generated products gets ``merges``
  MERGEs of ``merge_rows`` source rows each, then ``small_merges`` MERGEs of
  ``small_merge_rows`` rows (each source: ~90 % updates of random existing keys, ~10 % new
  keys). Each MERGE is timed on its own (:func:`cdc_support.deltalake.tables.merge_rows`,
  including the Arrow conversion of the source rows). Random keys touch every data file, so
  every MERGE rewrites the whole table: rows/s falls with the table size, not the batch size.
* **CDF read throughput** — the feed of every version of that table (the initial append, read
  as inserts, plus the pre-/post-images and inserts of every MERGE) read with
  ``DeltaTable.load_cdf`` alone, by commit-timestamp range, with
  :func:`~cdc_support.deltalake.feed.read_feed` (which first checks the log for vacuumed files,
  then casts view types and sorts), and normalised to change events.
* **consumer** — a :class:`~cdc_support.deltalake.consumer.CdfConsumer` reading the same feed
  from version 0, ``consumer_versions`` versions per batch, with an fsync'd checkpoint per batch.

Run ``python -m cdc_support.bench.delta`` (``--quick`` for small sizes) for a readable table,
or call :func:`run`. Numbers depend on the machine; nothing here asserts a speed.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa

from cdc_support.deltalake import tables
from cdc_support.deltalake.consumer import CdfConsumer
from cdc_support.deltalake.feed import (
    FeedRange,
    commit_timestamps,
    feed_to_events,
    open_table,
    read_feed,
)
from cdc_support.deltalake.location import DeltaLocation
from cdc_support.workload import EcommerceGenerator

__all__ = ["FULL", "QUICK", "format_report", "run"]

FULL: dict[str, int] = {
    "rows": 100_000,
    "merges": 20,
    "merge_rows": 5_000,
    "small_merges": 100,
    "small_merge_rows": 500,
    "consumer_versions": 10,
}
"""Default sizes."""

QUICK: dict[str, int] = {
    "rows": 5_000,
    "merges": 5,
    "merge_rows": 1_000,
    "small_merges": 20,
    "small_merge_rows": 100,
    "consumer_versions": 5,
}
"""Sizes of ``--quick`` (a smoke run of a few seconds)."""

_KEY = ("id",)


def _rate(count: int, seconds: float) -> float:
    return count / seconds if seconds > 0 else float("inf")


def _timed(call: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    result = call()
    return time.perf_counter() - started, result


class _Products:
    """The rows the benchmark table holds, and seeded MERGE sources built from them."""

    def __init__(self, seed: int) -> None:
        self.gen = EcommerceGenerator(seed)
        self.rows: dict[int, dict[str, Any]] = {}

    def new(self, n: int) -> list[dict[str, Any]]:
        rows = self.gen.products(n)
        self.rows.update((r["id"], r) for r in rows)
        return rows

    def merge_source(self, n: int) -> list[dict[str, Any]]:
        """``n`` rows: ~90 % changed existing rows (random keys), the rest new rows."""
        inserts = max(1, n // 10)
        keys = self.gen.random.sample(list(self.rows), min(n - inserts, len(self.rows)))
        changed = [{**self.rows[k], **self.gen.changes("products", self.rows[k])} for k in keys]
        self.rows.update((r["id"], r) for r in changed)
        return changed + self.new(n - len(changed))


def _merge_series(location: DeltaLocation, data: _Products, count: int, size: int) -> dict:
    """``count`` MERGEs of ``size`` source rows, timed one by one (generation not timed)."""
    table_rows = len(data.rows)
    latencies: list[float] = []
    change_rows = written = 0
    for _ in range(count):
        source = data.merge_source(size)
        seconds, (_, metrics) = _timed(lambda s=source: tables.merge_rows(location, _KEY, s))
        latencies.append(seconds)
        change_rows += 2 * metrics.get("num_target_rows_updated", 0)
        change_rows += metrics.get("num_target_rows_inserted", 0)
        written += metrics.get("num_output_rows", 0)
    total = sum(latencies)
    return {
        "merges": count,
        "source_rows": size,
        "table_rows_before": table_rows,
        "seconds": total,
        "rows_per_second": _rate(count * size, total),
        "merges_per_second": _rate(count, total),
        "p50": statistics.median(latencies),
        "max": max(latencies),
        "change_rows": change_rows,
        "rows_written_per_merge": written / count,
    }


def _read_variant(read: Callable[[], pa.Table], repeat: int) -> dict[str, Any]:
    """Best of ``repeat`` reads (the first warms the OS file cache like any later one)."""
    times, rows = [], 0
    for _ in range(repeat):
        seconds, table = _timed(read)
        times.append(seconds)
        rows = table.num_rows
    best = min(times)
    return {"seconds": best, "rows": rows, "rows_per_second": _rate(rows, best)}


def _cdf_reads(location: DeltaLocation, repeat: int) -> dict[str, Any]:
    latest = open_table(location).version()
    history = commit_timestamps(location)
    first_ms, last_ms = min(history.values()), max(history.values())
    results = {
        "versions": latest + 1,
        "load_cdf": _read_variant(
            lambda: pa.table(open_table(location).load_cdf(starting_version=0)), repeat
        ),
        "load_cdf_by_timestamp": _read_variant(
            lambda: read_feed(
                location, FeedRange(starting_timestamp=first_ms, ending_timestamp=last_ms)
            ),
            repeat,
        ),
        "read_feed": _read_variant(lambda: read_feed(location, FeedRange(0, latest)), repeat),
    }
    feed = read_feed(location, FeedRange(0, latest))
    seconds, events = _timed(lambda: feed_to_events(feed, _KEY, table_uri=location.uri))
    results["normalise"] = {
        "seconds": seconds,
        "rows": feed.num_rows,
        "events": len(events),
        "rows_per_second": _rate(feed.num_rows, seconds),
    }
    return results


def _consumer(location: DeltaLocation, checkpoint: Path, versions: int) -> dict[str, Any]:
    consumer = CdfConsumer(location, _KEY, checkpoint)
    counted = [0]

    def handle(batch: Any) -> None:
        counted[0] += len(batch.events)

    seconds, batches = _timed(lambda: consumer.run_to_end(handle, max_versions=versions))
    return {
        "versions_per_batch": versions,
        "batches": len(batches),
        "events": counted[0],
        "seconds": seconds,
        "events_per_second": _rate(counted[0], seconds),
    }


def run(
    *,
    rows: int = FULL["rows"],
    merges: int = FULL["merges"],
    merge_rows: int = FULL["merge_rows"],
    small_merges: int = FULL["small_merges"],
    small_merge_rows: int = FULL["small_merge_rows"],
    consumer_versions: int = FULL["consumer_versions"],
    repeat: int = 3,
    seed: int = 42,
    workdir: str | Path | None = None,
) -> dict[str, Any]:
    """Measure MERGE, CDF read and consumer throughput on one table; return a dict.

    Keys: ``parameters``, ``append`` (seconds, rows_per_second), ``merge`` (``large`` and
    ``small``: seconds, rows_per_second, merges_per_second, p50, max, change_rows), ``cdf``
    (versions; ``load_cdf``, ``load_cdf_by_timestamp``, ``read_feed``: seconds, rows,
    rows_per_second; ``normalise``: also events), ``consumer`` (batches, events, events/s).
    """
    sizes = {
        "rows": rows,
        "merges": merges,
        "merge_rows": merge_rows,
        "small_merges": small_merges,
        "small_merge_rows": small_merge_rows,
        "consumer_versions": consumer_versions,
        "repeat": repeat,
    }
    too_small = {name: value for name, value in sizes.items() if value < 1}
    if too_small or merge_rows < 2 or small_merge_rows < 2:
        raise ValueError(
            f"every size must be >= 1 and merge sizes >= 2 (updates + inserts), got {sizes}"
        )
    data = _Products(seed)
    with tempfile.TemporaryDirectory(prefix="delta-bench-", dir=workdir) as tmp:
        location = DeltaLocation.local(Path(tmp) / "products")
        tables.create_cdf_table(location, tables.ARROW_SCHEMAS["products"])
        initial = data.new(rows)
        append_seconds, _ = _timed(lambda: tables.append_rows(location, initial))
        large = _merge_series(location, data, merges, merge_rows)
        small = _merge_series(location, data, small_merges, small_merge_rows)
        cdf = _cdf_reads(location, repeat)
        consumer = _consumer(location, Path(tmp) / "checkpoint.json", consumer_versions)
    return {
        "parameters": {**sizes, "seed": seed},
        "append": {"seconds": append_seconds, "rows_per_second": _rate(rows, append_seconds)},
        "merge": {"large": large, "small": small},
        "cdf": cdf,
        "consumer": consumer,
    }


def format_report(result: dict[str, Any]) -> str:
    """The result of :func:`run` as a plain-text table."""
    p, cdf = result["parameters"], result["cdf"]
    lines = [
        f"Delta Lake Change Data Feed (delta-rs) — table of {p['rows']:,} products, "
        f"append {result['append']['rows_per_second']:,.0f} rows/s",
        "",
        "MERGE, ~90 % updates of random keys + 10 % inserts (rows/s = source rows per second;",
        "written/merge = rows each MERGE rewrote: random keys touch every data file)",
        f"{'series':<22}{'table rows':>11}{'seconds':>9}{'rows/s':>10}{'merges/s':>10}"
        f"{'p50 s':>8}{'max s':>8}{'change rows':>13}{'written/merge':>15}",
    ]
    for name, m in result["merge"].items():
        label = f"{m['merges']} x {m['source_rows']:,} ({name})"
        lines.append(
            f"{label:<22}{m['table_rows_before']:>11,}{m['seconds']:>9.2f}"
            f"{m['rows_per_second']:>10,.0f}{m['merges_per_second']:>10.1f}{m['p50']:>8.3f}"
            f"{m['max']:>8.3f}{m['change_rows']:>13,}{m['rows_written_per_merge']:>15,.0f}"
        )
    lines += [
        "",
        f"CDF read of versions 0..{cdf['versions'] - 1} (best of {p['repeat']})",
        f"{'read':<37}{'seconds':>9}{'change rows':>13}{'rows/s':>12}",
    ]
    labels = {
        "load_cdf": "load_cdf by version (delta-rs only)",
        "load_cdf_by_timestamp": "read_feed by timestamp",
        "read_feed": "read_feed by version (log check)",
        "normalise": "feed_to_events (normalise)",
    }
    for name, label in labels.items():
        r = cdf[name]
        lines.append(
            f"{label:<37}{r['seconds']:>9.3f}{r['rows']:>13,}{r['rows_per_second']:>12,.0f}"
        )
    c = result["consumer"]
    lines += [
        "",
        f"CdfConsumer from version 0, {c['versions_per_batch']} versions per batch: "
        f"{c['batches']} batches, {c['events']:,} events in {c['seconds']:.2f}s = "
        f"{c['events_per_second']:,.0f} events/s (checkpoint fsync'd per batch)",
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: run the benchmark and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (a smoke run)")
    for name, default in FULL.items():
        flag = "--" + name.replace("_", "-")
        parser.add_argument(flag, type=int, default=None, help=f"default {default:,}")
    parser.add_argument("--repeat", type=int, default=3, help="reads per CDF variant (best kept)")
    parser.add_argument("--seed", type=int, default=42, help="generator seed")
    args = parser.parse_args(argv)
    base = QUICK if args.quick else FULL
    sizes = {n: getattr(args, n) if getattr(args, n) is not None else v for n, v in base.items()}
    print(format_report(run(**sizes, repeat=args.repeat, seed=args.seed)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
