"""Steps for features/observability/pipeline_metrics.feature: the pipeline's series in the
stack's Prometheus, while a workload runs and while the sink worker is stopped.

The source table, its connector and the sink worker come from the pipelines steps
(steps/pipelines_sources.py, steps/pipelines_sinks.py); these sentences read Prometheus
through :class:`cdc_support.observability.pipeline.PipelineSeries`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from pytest_bdd import parsers, then, when

from cdc_support.checks.plots import Panel, time_series_png
from cdc_support.observability.dashboard import (
    PROMTAIL,
    load_dashboard,
    panel_queries,
    promtail_labels,
    read_yaml,
)
from cdc_support.observability.panel_check import (
    ask_prometheus,
    json_log_keys,
    missing_log_labels,
)
from cdc_support.observability.pipeline import PipelineSeries, Window
from cdc_support.observability.prometheus import PrometheusClient, Series, describe_samples
from cdc_support.source_table import SourceTable
from cdc_support.waiting import wait_until
from pytest_cdc.report import evidence
from pytest_cdc.stack import Stack
from steps.pipelines import CapturedTable, Sink
from steps.pipelines_sinks import wait_and_read
from steps.pipelines_sources import run_recorded_workload

SCRAPE_MARGIN = 3.0
"""Seconds after the workload still in the window: the last scrapes of its effects."""
SETTLE_TIMEOUT = 60.0
CONNECTOR_LAG_LOW_MS = 10_000
"""The connector's lag while only the sink is stopped: well under what a stall would show."""
DEBEZIUM_OPS = {"insert": "create", "update": "update", "delete": "delete"}


@dataclass(frozen=True)
class Watched:
    """A pipeline's series and the window of the workload that ran through it."""

    series: PipelineSeries
    window: Window
    expected_ops: dict[str, int]
    """Debezium op -> how many the workload wrote."""


def _pipeline(captured: CapturedTable, sink: Sink) -> PipelineSeries:
    config = captured.connector.config
    return PipelineSeries(
        server=config["topic.prefix"],
        group=sink.worker.config.group,
        instance=sink.worker.name,
        slot=config.get("slot.name", ""),
    )


def _run_workload(source: SourceTable, count: int, seed: int) -> dict[str, int]:
    """The workload's operation counts, by Debezium's names (create/update/delete)."""
    counts = run_recorded_workload(source, count, seed)
    return {DEBEZIUM_OPS[kind]: n for kind, n in counts.items()}


@when(
    parsers.parse(
        "a workload of {count:d} operations with seed {seed:d} runs against the source table, "
        "watched by Prometheus"
    ),
    target_fixture="watched",
)
def watched_workload(
    captured_table: CapturedTable,
    sink: Sink,
    cdc_prometheus: PrometheusClient,
    count: int,
    seed: int,
) -> Watched:
    """Once Prometheus scrapes the sink worker, run the workload and wait until the sink
    applied it; the window spans both."""
    pipeline = _pipeline(captured_table, sink)
    cdc_prometheus.wait_for(
        pipeline.queries["sink commits"],
        timeout=SETTLE_TIMEOUT,
        expected=f"Prometheus to scrape the sink worker {pipeline.instance} before the workload",
    )
    start = time.time()
    expected = _run_workload(captured_table.table, count, seed)
    wait_and_read(sink, captured_table.table)
    window = Window(start, time.time() + SCRAPE_MARGIN)
    return Watched(pipeline, window, expected)


def _points(series: list[Series]) -> int:
    return sum(len(s.points) for s in series)


@then(
    "Prometheus recorded, during the workload, the connector's lag and the events it saw by "
    "operation, the slot's lag and the sink's consumer lag and commit latency"
)
def recorded_during_workload(watched: Watched, cdc_prometheus: PrometheusClient) -> None:
    """Each key series has a point per second or so; the events seen match the workload."""
    pipeline = watched.series
    seen = cdc_prometheus.wait_for(
        pipeline.queries["events seen by operation"],
        done=lambda samples: (
            {s.labels.get("op"): s.value for s in samples}
            == {**dict.fromkeys(("create", "update", "delete"), 0), **watched.expected_ops}
        ),
        timeout=SETTLE_TIMEOUT,
        expected=f"the streaming events by op to equal the workload's {watched.expected_ops}",
    )
    recorded = pipeline.over(cdc_prometheus, watched.window)
    summary = {title: {"series": len(s), "points": _points(s)} for title, s in recorded.items()}
    evidence.attach_json(
        "series recorded during the workload",
        {
            "window seconds": round(watched.window.seconds, 1),
            "queries": pipeline.queries,
            "recorded": summary,
            "events seen by op": describe_samples(seen),
        },
    )
    least = int(watched.window.seconds / 2)
    thin = {title: s["points"] for title, s in summary.items() if s["points"] < least}
    assert not thin, f"fewer than {least} points in {watched.window.seconds:.0f} s: {thin}"
    lag = recorded["sink consumer lag (records)"]
    assert max(max(s.values) for s in lag) > 0, "the sink's consumer lag never rose above 0"
    commits = recorded["sink commits"]
    assert max(s.values[-1] - s.values[0] for s in commits) > 0, "no sink commit was recorded"


@then("the dashboard's key panels over the workload are attached as plots")
def key_panels_plotted(watched: Watched, cdc_prometheus: PrometheusClient) -> None:
    """One PNG: the key series over the workload, seconds from its start."""
    recorded = watched.series.over(cdc_prometheus, watched.window)
    panels = []
    for title, series in recorded.items():
        lines = {
            _legend(s): ([t - watched.window.start for t, _ in s.points], s.values) for s in series
        }
        panels.append(Panel(ylabel=title.split("(")[-1].rstrip(")"), series=lines, title=title))
    evidence.attach_png(
        "key panels during the workload",
        time_series_png(panels, title="the pipeline in Prometheus, during the workload"),
    )


def _legend(series: Series) -> str:
    keys = ("op", "slot", "group", "instance", "server")
    shown = [f"{k}={series.labels[k]}" for k in keys if k in series.labels]
    return ", ".join(shown[:2]) or "value"


@then(
    "every panel of the CDC pipeline dashboard returns at least one series from this run's "
    "Prometheus"
)
def every_panel_answers(cdc_prometheus: PrometheusClient, cdc_stack: Stack) -> None:
    """Each PromQL query (variables at "All") returns a finite series; each LogQL label is set
    by Promtail from a key the run's JSON log lines carry."""
    queries = panel_queries(load_dashboard())
    answers = wait_until(
        lambda: ask_prometheus(cdc_prometheus, queries),
        done=lambda answers: all(a.ok for a in answers),
        timeout=SETTLE_TIMEOUT,
        interval=1.0,
        expected="a finite series from every Prometheus panel of the dashboard",
        describe=lambda answers: "; ".join(
            f"{a.panel}: {a.error or f'{a.series} series, {a.finite} finite'}"
            for a in answers
            if not a.ok
        ),
    )
    evidence.attach_json(
        "dashboard panels asked of this run's Prometheus", [vars(a) for a in answers]
    )
    assert cdc_stack.endpoints.log_dir, "this stack names no log_dir: its logs cannot be checked"
    log_dir = Path(cdc_stack.endpoints.log_dir)
    keys = json_log_keys(log_dir)
    missing = missing_log_labels(queries, promtail_labels(read_yaml(PROMTAIL)), keys)
    evidence.attach_json(
        "JSON log keys of this run", {name: sorted(found) for name, found in keys.items()}
    )
    assert not missing, f"the logs panels read labels this run's logs cannot give: {missing}"


@when(
    parsers.parse(
        "the sink worker is stopped and a workload of {count:d} operations with seed {seed:d} "
        "runs against the source table"
    ),
    target_fixture="watched",
)
def stopped_sink_workload(
    captured_table: CapturedTable,
    sink: Sink,
    cdc_prometheus: PrometheusClient,
    count: int,
    seed: int,
) -> Watched:
    """Wait until the group has committed everything, stop the worker, run the workload."""
    pipeline = _pipeline(captured_table, sink)
    _wait_consumer_lag(cdc_prometheus, pipeline, lambda lag: lag == 0, "0 before the stop")
    sink.worker.stop()
    start = time.time()
    expected = _run_workload(captured_table.table, count, seed)
    return Watched(pipeline, Window(start, time.time()), expected)


def _wait_consumer_lag(
    client: PrometheusClient, pipeline: PipelineSeries, done: Callable[[float], bool], what: str
) -> float:
    """Poll the group's lag until ``done(lag)``; the lag then."""
    samples = client.wait_for(
        pipeline.queries["sink consumer lag (records)"],
        done=lambda samples: bool(samples) and done(samples[0].value),
        timeout=SETTLE_TIMEOUT,
        expected=f"the consumer lag of group {pipeline.group} at {what}",
    )
    return samples[0].value


@then(
    parsers.parse(
        "Prometheus shows the sink's consumer lag grown by at least the {count:d} operations, "
        "while the connector's lag stays low"
    )
)
def consumer_lag_grown(watched: Watched, cdc_prometheus: PrometheusClient, count: int) -> None:
    """Every operation is a record the stopped group has not committed."""
    lag = _wait_consumer_lag(
        cdc_prometheus, watched.series, lambda lag: lag >= count, f"{count} or more"
    )
    connector = watched.series.connector_lag(cdc_prometheus)
    evidence.attach_json(
        "lags with the sink stopped",
        {"consumer lag (records)": lag, "connector lag": describe_samples(connector)},
    )
    assert connector, f"no lag series for connector {watched.series.server}"
    assert connector[0].value < CONNECTOR_LAG_LOW_MS, (
        f"the connector's lag is {connector[0].value:.0f} ms: the stall should be the sink's only"
    )


@when("the sink worker is started again")
def sink_started_again(sink: Sink) -> None:
    """The same worker, same group: it resumes from its committed offsets."""
    sink.worker.start()


@then("Prometheus shows the sink's consumer lag back at 0")
def consumer_lag_back(watched: Watched, cdc_prometheus: PrometheusClient) -> None:
    """The worker caught up and committed its group's offsets."""
    _wait_consumer_lag(cdc_prometheus, watched.series, lambda lag: lag == 0, "0 after the restart")
    window = Window(watched.window.start, time.time())
    series = cdc_prometheus.query_range(
        watched.series.queries["sink consumer lag (records)"],
        start=window.start,
        end=window.end,
        step=1.0,
    )
    evidence.attach_png(
        "consumer lag: sink stopped, then started again",
        time_series_png(
            [
                Panel(
                    ylabel="records",
                    series={
                        _legend(s): ([t - window.start for t, _ in s.points], s.values)
                        for s in series
                    },
                )
            ],
            title=f"consumer lag of group {watched.series.group}",
        ),
    )
