"""A sink worker's labelled counters exist at 0 before their first event (dashboards need the
series), and the label values the worker uses are the known ones."""

from __future__ import annotations

import re
from pathlib import Path

from prometheus_client import generate_latest

from cdc_support.sinks import metrics as sink_metrics
from cdc_support.sinks.metrics import DEAD_LETTER_REASONS, ERROR_STAGES, SinkMetrics, parse_metrics

SINKS = Path(sink_metrics.__file__).parent


def test_every_reason_and_stage_is_exposed_at_zero_before_any_event():
    samples = parse_metrics(generate_latest(SinkMetrics().registry).decode())
    for reason in DEAD_LETTER_REASONS:
        assert samples[f'cdc_sink_dead_letters_total{{reason="{reason}"}}'] == 0
    for stage in ERROR_STAGES:
        assert samples[f'cdc_sink_errors_total{{stage="{stage}"}}'] == 0


def test_the_known_values_are_the_ones_the_worker_uses_and_the_docstring_lists():
    code = "\n".join(p.read_text() for p in SINKS.glob("*.py") if p.name != "metrics.py")
    stages = set(re.findall(r'errors\.labels\(stage="(\w+)"\)', code))
    assert stages == set(ERROR_STAGES)
    for reason in DEAD_LETTER_REASONS:
        assert f'"{reason}"' in code, reason
    doc = sink_metrics.__doc__ or ""
    for value in (*DEAD_LETTER_REASONS, *ERROR_STAGES):
        assert value in doc
