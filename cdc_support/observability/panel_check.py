"""The dashboard checked against a real run: every PromQL panel answers, every LogQL label exists.

Grafana and Loki cannot run here, so the dashboard is checked the way they would use it:
each Prometheus query (variables at their "All" values) is asked of the run's Prometheus and
must return a series with a finite value; each label a Loki query selects by must be one
Promtail sets, read from a key that the run's JSON log lines carry.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from cdc_support.observability.dashboard import PanelQuery, logql_labels
from cdc_support.observability.prometheus import PrometheusClient, PrometheusError


@dataclass(frozen=True)
class PanelAnswer:
    """What one panel query returned: how many series, how many with a finite value."""

    panel: str
    query: str
    series: int
    finite: int
    error: str = ""

    @property
    def ok(self) -> bool:
        return self.finite > 0 and not self.error


def ask_prometheus(client: PrometheusClient, queries: Iterable[PanelQuery]) -> list[PanelAnswer]:
    """Each Prometheus query of the dashboard, asked now."""
    answers = []
    for query in queries:
        if query.datasource != "prometheus":
            continue
        try:
            samples = client.query(query.query)
        except PrometheusError as exc:
            answers.append(PanelAnswer(query.panel, query.query, 0, 0, str(exc)))
            continue
        finite = sum(1 for s in samples if math.isfinite(s.value))
        answers.append(PanelAnswer(query.panel, query.query, len(samples), finite))
    return answers


def json_log_keys(log_dir: Path) -> dict[str, set[str]]:
    """Log file name -> the keys of its JSON lines (lines that are not JSON are skipped)."""
    found: dict[str, set[str]] = {}
    for path in sorted(log_dir.glob("*.log")):
        keys: set[str] = set()
        with open(path, errors="replace") as lines:
            for line in lines:
                try:
                    record = json.loads(line)
                except ValueError:
                    continue
                if isinstance(record, dict):
                    keys.update(record)
        found[path.name] = keys
    return found


def missing_log_labels(
    queries: Iterable[PanelQuery],
    label_keys: Mapping[str, str | None],
    keys_by_file: Mapping[str, set[str]],
) -> dict[str, str]:
    """Label -> why it cannot be served, for every label a LogQL query uses: not set by
    Promtail (``label_keys``: label -> JSON key, None for static labels), or a JSON key no
    log line of the run carries."""
    present = set().union(*keys_by_file.values()) if keys_by_file else set()
    missing = {}
    for query in queries:
        if query.datasource != "loki":
            continue
        for label in logql_labels(query.query):
            if label not in label_keys:
                missing[label] = f"Promtail sets no label {label!r} (panel {query.panel!r})"
            elif label_keys[label] is not None and label_keys[label] not in present:
                key = label_keys[label]
                missing[label] = f"no JSON log line has the key {key!r} (panel {query.panel!r})"
    return missing
