"""A scenario that fails carries the last lines of every log of the run in its Allure result:
the harness's, its sink worker's, the collector's and Prometheus' (the stack's log dir), and
each component's (``Stack.logs``); a scenario that passes carries none.

Runs a small feature in a separate pytest on a native stack of its own, with ``--alluredir``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

CONFTEST = """
from confluent_kafka.admin import AdminClient
from pytest_bdd import given, then

from cdc_support.sinks.dlq import ensure_topic


@given("a sink worker on a topic of its own", target_fixture="worker")
def worker(cdc_stack, sink_worker_factory, cdc_scenario_name):
    topic = f"{cdc_scenario_name}.customers"
    ensure_topic(AdminClient({"bootstrap.servers": cdc_stack.kafka_bootstrap}), topic)
    return sink_worker_factory(topic)


@then("the scenario fails")
def fails(worker):
    assert False, "failing on purpose"


@then("the scenario passes")
def passes(worker):
    assert worker.running()
"""

FEATURE = """Feature: Failure logs
  Scenario: A sink scenario that fails
    Given a sink worker on a topic of its own
    Then the scenario fails

  Scenario: A sink scenario that passes
    Given a sink worker on a topic of its own
    Then the scenario passes
"""


def _attachments(alluredir: Path) -> dict[str, dict[str, str]]:
    """Scenario name -> {attachment name: its text}."""
    found: dict[str, dict[str, str]] = {}
    for path in alluredir.glob("*-result.json"):
        result: dict[str, Any] = json.loads(path.read_text())
        found[result["name"]] = {
            a["name"]: (alluredir / a["source"]).read_text(errors="replace")
            for a in result.get("attachments", [])
        }
    return found


OWN_ENV = {k: v for k, v in os.environ.items() if not k.startswith(("CDC_", "PYTEST_"))}
"""The run's own environment: not an xdist worker's (PYTEST_XDIST_WORKER names its log)."""


def test_a_failing_scenario_carries_the_tails_of_every_log(tmp_path: Path, run_tmpdir) -> None:
    project = tmp_path / "project"
    project.mkdir()
    (project / "conftest.py").write_text(CONFTEST)
    (project / "logs.feature").write_text(FEATURE)
    (project / "pytest.ini").write_text("[pytest]\ncdc_collect_features = true\n")
    alluredir = tmp_path / "allure-results"
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--cdc-backend=native",
         f"--alluredir={alluredir}", "logs.feature"],
        cwd=project,
        env={**OWN_ENV, "CDC_STATE_DIR": str(tmp_path / "state"), "TMPDIR": str(run_tmpdir)},
        capture_output=True,
        text=True,
        timeout=900,
    )  # fmt: skip
    output = run.stdout + run.stderr
    assert "1 failed, 1 passed" in output, output[-3000:]
    found = _attachments(alluredir)
    assert not [n for n in found["A sink scenario that passes"] if n.startswith("log: ")], found
    failed = found["A sink scenario that fails"]
    names = [n for n in failed if n.startswith("log: ")]
    # the native stack's components log into the log dir: attached as files, not again
    components = ("harness", "collector", "prometheus", "postgres", "mariadb", "kafka", "connect")
    expected = {f"log: {c}.log" for c in components}
    assert expected <= set(names), names
    (sink_log,) = [n for n in names if n.startswith("log: sink-cdc_a_sink_scenario_that_fails")]

    sink_lines = [json.loads(line) for line in failed[sink_log].splitlines()]
    assert sink_lines and {line["component"] for line in sink_lines} == {"sink"}
    topic = sink_lines[0]["topic"]
    assert topic.startswith("cdc_a_sink_scenario_that_fails") and topic.endswith(".customers")
    harness = [json.loads(line) for line in failed["log: harness.log"].splitlines()]
    started = [h for h in harness if h.get("topic") == topic and " started (" in h["message"]]
    assert len(started) == 1, harness
    for name in names:
        assert len(failed[name].splitlines()) <= 40, name
        assert failed[name].strip(), f"{name} is empty"
