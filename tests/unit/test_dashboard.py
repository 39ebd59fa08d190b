"""The "CDC pipeline" dashboard (docker/observability/grafana/dashboards/cdc-pipeline.json) reads
only the metrics of the issue 15 contract and the log labels Promtail sets from the JSON logs;
every panel says where it reads, what and in which unit."""

from __future__ import annotations

import json
import logging
import re

import pytest

from cdc_support.logs import CONTEXT_KEYS, LOG_KEYS, JsonFormatter
from cdc_support.observability.dashboard import (
    KNOWN_METRICS,
    PROMTAIL,
    load_dashboard,
    logql_labels,
    metric_names,
    panel_queries,
    panels,
    promtail_labels,
    read_yaml,
    substitute,
    variable_defaults,
)
from cdc_support.sinks.metrics import SinkMetrics

RFC3339 = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)")
"""What Promtail's timestamp stage parses as RFC3339Nano (fractional seconds optional)."""
REQUIRED_METRICS = {
    "debezium_streaming_milliseconds_behind_source",
    "debezium_streaming_events_seen_total",
    "debezium_streaming_queue_remaining_capacity",
    "cdc_pg_slot_retained_wal_bytes",
    "cdc_pg_slot_confirmed_lag_bytes",
    "cdc_kafka_consumer_group_lag_messages",
    "cdc_sink_commit_latency_seconds_bucket",
    "cdc_sink_end_to_end_lag_seconds_bucket",
    "cdc_sink_dead_letters_total",
    "kafka_connect_connector_status",
    "kafka_connect_task_status",
}
"""What issue 15 asks the dashboard to show."""


@pytest.fixture(scope="module")
def dashboard() -> dict:
    return load_dashboard()


def test_the_dashboard_has_a_uid_a_title_and_panels(dashboard: dict) -> None:
    assert dashboard["uid"] == "cdc-pipeline"
    assert dashboard["title"] == "CDC pipeline"
    assert len(list(panels(dashboard))) >= 10


def test_every_panel_has_a_datasource_a_query_and_a_unit(dashboard: dict) -> None:
    for panel in panels(dashboard):
        title = panel.get("title")
        assert title, panel
        assert panel["datasource"]["type"] in ("prometheus", "loki"), title
        assert panel["datasource"]["uid"].startswith("${"), f"{title}: use the variable"
        assert panel["targets"] and all(t["expr"].strip() for t in panel["targets"]), title
        if panel["type"] != "logs":  # a logs panel shows lines: no unit applies
            assert panel["fieldConfig"]["defaults"]["unit"], title


def test_promql_reads_only_the_metrics_of_the_contract(dashboard: dict) -> None:
    read: set[str] = set()
    for query in panel_queries(dashboard):
        if query.datasource == "prometheus":
            names = metric_names(query.query)
            assert names, f"{query.panel}: no metric in {query.query}"
            assert names <= KNOWN_METRICS, f"{query.panel}: {names - KNOWN_METRICS}"
            read |= names
    assert read >= REQUIRED_METRICS, f"no panel shows {REQUIRED_METRICS - read}"


def test_the_known_sink_metrics_are_the_ones_a_sink_worker_exposes() -> None:
    suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count")}
    exposed = {
        family.name + suffix  # families with labels have no sample before their first child
        for family in SinkMetrics().registry.collect()
        for suffix in suffixes.get(family.type, ("",))
    }
    known = {name for name in KNOWN_METRICS if name.startswith("cdc_sink_")}
    assert known == exposed


def test_every_logql_label_is_one_promtail_sets(dashboard: dict) -> None:
    set_by_promtail = set(promtail_labels(read_yaml(PROMTAIL)))
    logql = [q for q in panel_queries(dashboard) if q.datasource == "loki"]
    assert any(q.panel_type == "logs" for q in logql), "the dashboard has no logs panel"
    for query in logql:
        used = logql_labels(query.query)
        assert used, f"{query.panel}: {query.query} selects no stream by label"
        assert used <= set_by_promtail, f"{query.panel}: {used - set_by_promtail}"


def _log_line(**context: str) -> dict[str, str]:
    """One line as the project's JSON logs write it (cdc_support.logs)."""
    record = logging.makeLogRecord(
        {"name": "cdc.test", "levelname": "INFO", "msg": "streaming started", **context}
    )
    return json.loads(JsonFormatter("connect").format(record))


def test_promtail_labels_are_few_and_read_from_keys_of_the_json_log_lines() -> None:
    labels = promtail_labels(read_yaml(PROMTAIL))
    assert set(labels) == {"job", "level", "component", "connector"}
    line = _log_line(connector="cdc-shop-1a2b", topic="shop.public.customers", table="customers")
    assert list(line) == [*LOG_KEYS, *CONTEXT_KEYS]
    for label, key in labels.items():
        assert key is None or key in line, f"label {label} reads {key!r}, not a log key"
    assert "connector" not in _log_line(), "connector is a label only on lines that name one"


def test_promtail_reads_the_timestamp_of_the_json_log_lines() -> None:
    stages = read_yaml(PROMTAIL)["scrape_configs"][0]["pipeline_stages"]
    (timestamp,) = [stage["timestamp"] for stage in stages if "timestamp" in stage]
    assert timestamp["format"] == "RFC3339Nano"
    assert RFC3339.fullmatch(_log_line()[timestamp["source"]]), _log_line()


def test_promtail_labels_follow_the_pipeline() -> None:
    config = {
        "scrape_configs": [
            {
                "static_configs": [{"labels": {"job": "x", "__path__": "/l/*.log"}}],
                "pipeline_stages": [
                    {"json": {"expressions": {"level": "", "who": "component"}}},
                    {"labels": {"level": "", "component": "who"}},
                    {"static_labels": {"env": "dev"}},
                    {"labeldrop": ["job"]},
                ],
            }
        ]
    }
    assert promtail_labels(config) == {
        "filename": None,
        "level": "level",
        "component": "component",
        "env": None,
    }


def test_queries_are_substituted_by_the_given_variables(dashboard: dict) -> None:
    defaults = variable_defaults(dashboard)
    assert defaults["__rate_interval"] == "1m"
    assert defaults["connector"] == ".+"
    for query in panel_queries(dashboard):
        assert "$" not in query.query and "[[" not in query.query, query
    named = panel_queries(dashboard, {**defaults, "connector": "cdc-shop"})
    assert any('connector=~"cdc-shop"' in q.query for q in named)


def test_substitute_reads_every_variable_form_and_names_a_missing_one() -> None:
    values = {"a": "1m", "b": ".+"}
    assert substitute('x{l=~"$b"}[$a] ${a} ${b:regex} [[a]]', values) == ('x{l=~".+"}[1m] 1m .+ 1m')
    with pytest.raises(ValueError, match=r"\$c"):
        substitute("rate(x[$c])", values)


@pytest.mark.parametrize(
    ("promql", "names"),
    [
        (
            'histogram_quantile(0.95, sum by (le, instance) (rate(m_bucket{job="sink"}[1m])))',
            {"m_bucket"},
        ),
        ("sum without (op) (rate(a_total[5m] offset 1m)) / on (server) b", {"a_total", "b"}),
        ('max by (status) (s{connector=~".+"} == 1) or vector(0)', {"s"}),
        ("a:recorded:rate5m > bool 0 unless c", {"a:recorded:rate5m", "c"}),
    ],
)
def test_metric_names_of_a_promql_expression(promql: str, names: set[str]) -> None:
    assert metric_names(promql) == names


@pytest.mark.parametrize(
    ("logql", "labels"),
    [
        ('{component=~"sink|connect", level!="DEBUG"} |= "error" | json', {"component", "level"}),
        (
            'sum by (component, level) (count_over_time({job="cdc-spec"} | json [1m]))',
            {"component", "level", "job"},
        ),
        ('{a="x"} | line_format "{{.message}} {b=\\"y\\"}"', {"a"}),
    ],
)
def test_logql_labels_of_a_query(logql: str, labels: set[str]) -> None:
    assert logql_labels(logql) == labels
