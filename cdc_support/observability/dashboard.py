"""The "CDC pipeline" Grafana dashboard as data: its panels, their queries, what they read.

``panel_queries`` lists each panel's title, datasource kind (``prometheus`` | ``loki``), unit and
query with the Grafana template variables substituted (``$__rate_interval`` -> ``1m``,
``$connector`` -> ``.+`` by default), so a run can ask its own Prometheus every panel's query.
``metric_names`` (PromQL) and ``logql_labels`` (LogQL) say what a query reads; the dashboard may
only read the metrics of ``KNOWN_METRICS`` and the log labels Promtail sets
(``promtail_labels`` reads them from docker/observability/promtail/promtail.yaml).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "DASHBOARD",
    "KNOWN_METRICS",
    "PanelQuery",
    "load_dashboard",
    "logql_labels",
    "metric_names",
    "panel_queries",
    "promtail_labels",
    "read_yaml",
    "substitute",
    "variable_defaults",
]

OBSERVABILITY = Path(__file__).resolve().parents[2] / "docker" / "observability"
"""The provisioning tree of a cdc-spec checkout (it is not part of the wheel)."""
DASHBOARD = OBSERVABILITY / "grafana" / "dashboards" / "cdc-pipeline.json"
PROMTAIL = OBSERVABILITY / "promtail" / "promtail.yaml"


def _histogram(name: str) -> tuple[str, ...]:
    return (f"{name}_bucket", f"{name}_sum", f"{name}_count")


KNOWN_METRICS: frozenset[str] = frozenset(
    (
        # Connect worker's JMX exporter: Debezium MBeans {connector_type, server}
        "debezium_streaming_milliseconds_behind_source",
        "debezium_streaming_events_seen_total",  # {op}
        "debezium_streaming_total_events_seen",
        "debezium_streaming_queue_remaining_capacity",
        "debezium_streaming_queue_total_capacity",
        "debezium_streaming_connected",
        "debezium_snapshot_running",
        "debezium_snapshot_completed",
        "debezium_snapshot_total_table_count",
        "debezium_snapshot_remaining_table_count",
        # ... and Kafka Connect's own
        "kafka_connect_connector_status",  # {connector, status}
        "kafka_connect_task_status",  # {connector, task, status}
        "kafka_connect_worker_connector_count",
        "kafka_connect_worker_task_count",
        # broker's JMX exporter {topic}
        "kafka_server_brokertopicmetrics_messagesin_total",
        "kafka_server_brokertopicmetrics_bytesin_total",
        # cdc-spec collector
        "cdc_pg_slot_retained_wal_bytes",  # {slot, database, plugin, active}
        "cdc_pg_slot_confirmed_lag_bytes",  # {slot, database}
        "cdc_pg_slot_active",
        "cdc_pg_wal_position_bytes",
        "cdc_mysql_binlog_file_number",
        "cdc_mysql_binlog_position_bytes",
        "cdc_mysql_binlog_total_bytes",
        "cdc_kafka_consumer_group_lag_messages",  # {group, topic, partition}
        "cdc_kafka_consumer_group_committed_offset",
        "cdc_kafka_topic_end_offset",
        "cdc_collector_source_up",  # {source}
        "cdc_collector_errors_total",
        # sink workers (cdc_support/sinks/metrics.py)
        "cdc_sink_events_consumed_total",
        "cdc_sink_events_applied_total",
        "cdc_sink_tombstones_total",
        "cdc_sink_keyless_tombstones_total",
        "cdc_sink_replayed_skipped_total",
        "cdc_sink_rows_upserted_total",
        "cdc_sink_rows_deleted_total",
        "cdc_sink_batches_committed_total",
        "cdc_sink_batches_skipped_total",
        "cdc_sink_unavailable_events_total",
        "cdc_sink_dead_letters_total",  # {reason}
        "cdc_sink_errors_total",  # {stage}
        *_histogram("cdc_sink_commit_latency_seconds"),
        *_histogram("cdc_sink_end_to_end_lag_seconds"),
        *_histogram("cdc_sink_maintenance_seconds"),  # {kind}
        "cdc_sink_last_commit_timestamp_seconds",
        "cdc_sink_assigned_partitions",
        # Prometheus itself, per target
        "up",
    )
)
"""Every series name a dashboard query may read (the issue 15 metrics contract)."""

BUILTIN_VARIABLES: dict[str, str] = {
    "__rate_interval": "1m",
    "__interval": "1m",
    "__range": "1m",
}
"""Grafana's own variables, as a run asks Prometheus (scrapes every second: 1m has samples)."""


@dataclass(frozen=True)
class PanelQuery:
    """One query of one panel."""

    panel: str
    """The panel's title."""
    ref_id: str
    datasource: str
    """The datasource kind: ``prometheus`` or ``loki``."""
    query: str
    """PromQL or LogQL, template variables substituted."""
    unit: str
    panel_type: str


def load_dashboard(path: Path = DASHBOARD) -> dict[str, Any]:
    """The dashboard JSON as a dict; FileNotFoundError naming the checkout when it is absent."""
    if not path.is_file():
        raise FileNotFoundError(
            f"no dashboard at {path}: the provisioning tree is in a cdc-spec checkout "
            "(docker/observability/), not in the installed package"
        )
    return json.loads(path.read_text(encoding="utf-8"))


def panels(dashboard: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    """Every panel, those inside collapsed rows included (rows themselves are not panels)."""
    for panel in dashboard.get("panels", []):
        if panel.get("type") == "row":
            yield from panel.get("panels", [])
        else:
            yield panel


def variable_defaults(dashboard: Mapping[str, Any]) -> dict[str, str]:
    """Grafana's builtins plus each template variable's "All" value (``.+`` unless given)."""
    values = dict(BUILTIN_VARIABLES)
    for variable in dashboard.get("templating", {}).get("list", []):
        if variable.get("type") != "datasource":
            values[variable["name"]] = variable.get("allValue") or ".+"
    return values


_VARIABLE = re.compile(
    r"\$\{(?P<braced>\w+)(?::\w+)?\}|\[\[(?P<bracketed>\w+)(?::\w+)?\]\]|\$(?P<plain>\w+)"
)


def substitute(query: str, variables: Mapping[str, str]) -> str:
    """``query`` with ``$name``, ``${name}``, ``${name:fmt}`` and ``[[name]]`` replaced;
    ValueError naming the variable when ``variables`` has no value for it."""

    def value(match: re.Match[str]) -> str:
        name = match["braced"] or match["bracketed"] or match["plain"]
        if name not in variables:
            raise ValueError(f"{query!r} uses ${name}: give it a value in the variables")
        return variables[name]

    return _VARIABLE.sub(value, query)


def panel_queries(
    dashboard: Mapping[str, Any], variables: Mapping[str, str] | None = None
) -> list[PanelQuery]:
    """Each panel's queries, substituted by ``variables`` (default: ``variable_defaults``)."""
    values = variable_defaults(dashboard) if variables is None else variables
    found = []
    for panel in panels(dashboard):
        unit = panel.get("fieldConfig", {}).get("defaults", {}).get("unit", "")
        for target in panel.get("targets", []):
            source = target.get("datasource") or panel.get("datasource") or {}
            found.append(
                PanelQuery(
                    panel=panel.get("title", ""),
                    ref_id=target.get("refId", ""),
                    datasource=source.get("type", ""),
                    query=substitute(target.get("expr", ""), values),
                    unit=unit,
                    panel_type=panel.get("type", ""),
                )
            )
    return found


_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)")
_TOKEN = re.compile(r"\d[\w.]*|[A-Za-z_:][\w:]*(?P<call>\s*\()?")
_PROMQL_WORDS = frozenset(
    {"and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring"}
    | {"group_left", "group_right", "inf", "nan", "start", "end"}
)


def metric_names(promql: str) -> set[str]:
    """The metric names a PromQL expression reads (not functions, labels or keywords)."""
    text = _STRING.sub('""', promql)
    text = re.sub(r"\{[^}]*\}", " ", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", " ", text)  # ranges and subqueries
    text = _GROUPING.sub(" ", text)
    names = set()
    for token in _TOKEN.finditer(text):
        word = token.group(0)
        if word[0].isdigit() or token["call"] or word.lower() in _PROMQL_WORDS:
            continue
        names.add(word)
    return names


_MATCHER = re.compile(r"([A-Za-z_]\w*)\s*(?:=~|!~|!=|=)")


def logql_labels(logql: str) -> set[str]:
    """The labels a LogQL query selects streams by or groups by (``by``/``without``)."""
    text = _STRING.sub('""', logql)
    labels: set[str] = set()
    for selector in re.findall(r"\{([^}]*)\}", text):
        labels.update(_MATCHER.findall(selector))
    for grouping in re.findall(r"\b(?:by|without)\s*\(([^)]*)\)", text):
        labels.update(name.strip() for name in grouping.split(",") if name.strip())
    return labels


def read_yaml(path: Path) -> Any:
    """A YAML file as dicts, lists and strings (every scalar a string; flow style allowed)."""
    import strictyaml  # pyiceberg's dependency; only the provisioning checks need it

    return strictyaml.dirty_load(path.read_text(encoding="utf-8"), allow_flow_style=True).data


def promtail_labels(config: Mapping[str, Any]) -> dict[str, str | None]:
    """The labels a Promtail configuration gives its log streams -> the JSON key each one is
    read from (None: a static label, or ``filename`` that Promtail adds to file targets)."""
    labels: dict[str, str | None] = {}
    for job in config.get("scrape_configs") or []:
        labels.update(_job_labels(job))
    return labels


def _job_labels(job: Mapping[str, Any]) -> dict[str, str | None]:
    labels: dict[str, str | None] = {}
    for static in job.get("static_configs") or []:
        static_labels = static.get("labels") or {}
        labels.update({k: None for k in static_labels if not k.startswith("__")})
        if "__path__" in static_labels:
            labels["filename"] = None
    extracted: dict[str, str] = {}
    for stage in job.get("pipeline_stages") or []:
        kind, spec = next(iter(stage.items()))
        if kind == "json":
            extracted.update({k: v or k for k, v in (spec.get("expressions") or {}).items()})
        elif kind == "labels":
            for name, source in (spec or {}).items():
                labels[name] = extracted.get(source or name, source or name)
        elif kind == "static_labels":
            labels.update({name: None for name in spec or {}})
        elif kind == "labeldrop":
            for name in spec or []:
                labels.pop(name, None)
    return labels
