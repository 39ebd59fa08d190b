"""A failing scenario carries the last lines of every component's log as Allure attachments;
a passing one carries none; the harness writes JSON lines to the stack's log dir.

The pytester project gives ``cdc_stack`` a stack of its own making: its log dir is a folder
with a few component logs, and its components' ``Stack.logs`` answer (one of them fails, as a
log that cannot be read does). No service is started.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

pytest_plugins = ["pytester"]

CONFTEST = """
import logging
from pathlib import Path

import pytest
from pytest_bdd import given, then

from cdc_support.endpoints import Endpoints
from pytest_cdc.report.failure_logs import note_log_file
from pytest_cdc.stack import Stack, StackInfo

LOG_DIR = Path(__file__).parent / "stack-logs"
log = logging.getLogger("pytest_cdc.demo")


class LogStack(Stack):
    def __init__(self):
        self.endpoints = Endpoints(
            "postgresql://u:p@127.0.0.1:1/postgres", "127.0.0.1:2", "http://127.0.0.1:3",
            log_dir=str(LOG_DIR), collector_url="http://127.0.0.1:4",
            prometheus_url="http://127.0.0.1:5",
        )
        self.info = StackInfo("demo", "conftest")

    def logs(self, component, lines=50):
        if component == "kafka":
            raise FileNotFoundError("kafka.log is gone")
        if component == "collector":  # the same file as the log dir's collector.log
            return "".join((LOG_DIR / "collector.log").read_text().splitlines(True)[-lines:])
        return "".join(f"{component} line {n}\\n" for n in range(1, 101)[-lines:])

    def restart(self, component): ...
    def kill(self, component): ...
    def close(self): ...


@pytest.fixture(scope="session")
def cdc_stack():
    return LogStack()


@given("a step that logs")
def step_logs(cdc_stack, request):
    log.info("info from a step", extra={"topic": "shop.public.t"})
    log.warning("warning from a step")
    sink_log = LOG_DIR / f"sink-{request.node.name}.log"
    sink_log.write_text(f"sink of {request.node.name}\\n")
    note_log_file(request.node, sink_log)
    note_log_file(request.node, LOG_DIR / "sink-never-started.log")


@then("it fails")
def fails():
    assert False, "the scenario failed"


@then("it passes")
def passes():
    pass


def pytest_unconfigure(config):
    log.warning("after the session: not in the harness log")
"""

FEATURE = """Feature: Logs
  Scenario: Fails
    Given a step that logs
    Then it fails

  Scenario: Passes
    Given a step that logs
    Then it passes
"""


def _project(pytester: pytest.Pytester) -> Path:
    pytester.makeini("[pytest]\ncdc_collect_features = true\n")
    pytester.makefile(".feature", logs=FEATURE)
    pytester.makeconftest(CONFTEST)
    log_dir = pytester.path / "stack-logs"
    log_dir.mkdir()
    (log_dir / "collector.log").write_text("".join(f"collector {n}\n" for n in range(1, 51)))
    (log_dir / "prometheus.log").write_text("")
    (log_dir / "sink-of-another-scenario.log").write_text("not this scenario's\n")
    (log_dir / "harness-gw9.log").write_text("another xdist worker's\n")
    return log_dir


def _results(alluredir: Path) -> dict[str, dict[str, str]]:
    """ "<feature file>:<scenario>" -> {attachment name: its text}."""
    found: dict[str, dict[str, str]] = {}
    for path in alluredir.glob("*-result.json"):
        result: dict[str, Any] = json.loads(path.read_text())
        feature_file, _, scenario = result["fullName"].rpartition("/")[2].partition(":")
        found[f"{feature_file}:{scenario}"] = {
            a["name"]: (alluredir / a["source"]).read_text() for a in result.get("attachments", [])
        }
    return found


def test_a_failing_scenario_gets_every_logs_tail_and_a_passing_one_none(
    pytester: pytest.Pytester,
) -> None:
    log_dir = _project(pytester)
    alluredir = pytester.path / "allure-results"
    result = pytester.runpytest_subprocess(f"--alluredir={alluredir}", "logs.feature")
    result.assert_outcomes(passed=1, failed=1)
    results = _results(alluredir)
    assert sorted(results) == ["logs.feature:Fails", "logs.feature:Passes"]
    assert not [n for n in results["logs.feature:Passes"] if n.startswith("log: ")], results
    failed = results["logs.feature:Fails"]
    logs = [name for name in failed if name.startswith("log: ")]
    assert logs == [
        "log: harness.log",
        "log: sink-test_fails.log",
        "log: sink-never-started.log",
        "log: collector.log",
        "log: prometheus.log",
        "log: postgres (stack)",
        "log: kafka (stack)",
        "log: connect (stack)",
        "log: prometheus (stack)",
    ]
    assert failed["log: collector.log"].splitlines() == [f"collector {n}" for n in range(11, 51)]
    assert failed["log: postgres (stack)"].splitlines()[0] == "postgres line 61"
    assert failed["log: sink-test_fails.log"] == "sink of test_fails\n"
    assert "sink-never-started.log" in failed["log: sink-never-started.log"]
    assert failed["log: sink-never-started.log"].startswith("(no log to show: ")
    assert failed["log: prometheus.log"].endswith("is empty)")
    assert failed["log: kafka (stack)"] == (
        "(no log to show: FileNotFoundError: kafka.log is gone)"
    )
    harness = [json.loads(line) for line in failed["log: harness.log"].splitlines()]
    info = next(h for h in harness if h["message"] == "info from a step")
    assert (info["component"], info["logger"], info["level"]) == (
        "harness",
        "pytest_cdc.demo",
        "INFO",
    )
    assert info["topic"] == "shop.public.t"
    # the whole session's harness log: both scenarios, nothing after the session ended
    written = [json.loads(x)["message"] for x in (log_dir / "harness.log").read_text().splitlines()]
    assert written == ["info from a step", "warning from a step"] * 2


def test_the_terminal_shows_what_it_showed_before(pytester: pytest.Pytester) -> None:
    """INFO goes to the harness log only; pytest's captured log still shows WARNING and up."""
    _project(pytester)
    result = pytester.runpytest_subprocess("logs.feature")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*Captured log call*", "WARNING *warning from a step*"])
    result.stdout.no_fnmatch_line("*info from a step*")
    result.stdout.no_fnmatch_line('*"component"*')


def test_each_xdist_worker_writes_its_own_harness_log(pytester: pytest.Pytester) -> None:
    log_dir = _project(pytester)
    pytester.makefile(".feature", other=FEATURE.replace("Feature: Logs", "Feature: Other"))
    alluredir = pytester.path / "allure-results"
    result = pytester.runpytest_subprocess(
        "-n", "2", f"--alluredir={alluredir}", "logs.feature", "other.feature"
    )
    result.assert_outcomes(passed=2, failed=2)
    assert sorted(p.name for p in log_dir.glob("harness*.log")) == [
        "harness-gw0.log",
        "harness-gw1.log",
        "harness-gw9.log",
    ]
    failed = [r for r in _results(alluredir).values() if "log: collector.log" in r]
    assert len(failed) == 2
    harness_logs = [[n for n in r if n.startswith("log: harness")] for r in failed]
    assert sorted(harness_logs) == [["log: harness-gw0.log"], ["log: harness-gw1.log"]]
