"""The run's logs: the harness's own JSON-lines log in the stack's log dir, and the last lines
of every component's log attached to a scenario that failed.

The scenario's stack is the value of its ``cdc_stack`` fixture. Once it is known, the
``cdc_support`` and ``pytest_cdc`` loggers also write ``<log_dir>/harness.log``
(``harness-<gwN>.log`` on a pytest-xdist worker) at INFO; the terminal shows what it showed
before. A scenario that fails gets, as Allure attachments, the last :data:`TAIL_LINES` lines of:
each file in the log dir (this process's harness log; of the ``sink-*.log`` files, those of the
sink workers this scenario started), then each component's log through ``Stack.logs`` when the
stack was started here. A log that cannot be read says why in its attachment.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from pathlib import Path

import pytest

from cdc_support.logs import JsonLogging, configure_json_logging
from pytest_cdc.report.evidence import attach_text
from pytest_cdc.stack import Stack

__all__ = [
    "HARNESS_LOGGERS",
    "TAIL_LINES",
    "after_report",
    "attach_failure_logs",
    "failure_logs",
    "harness_log_name",
    "in_scenario",
    "note_log_file",
    "scenario_started",
    "stack_known",
    "stop_harness_log",
]

TAIL_LINES = 40
HARNESS_LOGGERS = ("cdc_support", "pytest_cdc")
STACK_FIXTURE = "cdc_stack"
_STACK = pytest.StashKey[Stack]()
_HARNESS = pytest.StashKey[JsonLogging]()
_NOTED = pytest.StashKey[list[Path]]()
_SCENARIO = pytest.StashKey[bool]()
"""Set when pytest-bdd started the item's scenario: Allure has a test case to attach to."""
_FAILED = pytest.StashKey[bool]()


def in_scenario(item: pytest.Item) -> bool:
    """Whether ``item`` is a pytest-bdd scenario (Allure has a test case to attach to)."""
    return item.stash.get(_SCENARIO, False)


def harness_log_name(config: pytest.Config) -> str:
    """``harness.log``, or ``harness-<gwN>.log`` on a pytest-xdist worker (known from the
    session, not the environment: a pytest a worker runs as a subprocess inherits that)."""
    worker = getattr(config, "workerinput", {}).get("workerid")
    return f"harness-{worker}.log" if worker else "harness.log"


def stack_known(config: pytest.Config, argname: str, value: object) -> None:
    """After a fixture's setup: remember the ``cdc_stack`` value and start the harness log in
    its log dir (once per session)."""
    if argname != STACK_FIXTURE or not isinstance(value, Stack) or _STACK in config.stash:
        return
    config.stash[_STACK] = value
    log_dir = value.endpoints.log_dir
    if log_dir:
        path = Path(log_dir) / harness_log_name(config)
        config.stash[_HARNESS] = configure_json_logging(
            path, "harness", "INFO", loggers=HARNESS_LOGGERS
        )


def stop_harness_log(config: pytest.Config) -> None:
    """At the session's end: remove the harness log's handler."""
    harness = config.stash.get(_HARNESS, None)
    if harness is not None:
        del config.stash[_HARNESS]
        harness.close()


def note_log_file(node: pytest.Item, path: Path) -> None:
    """A log this test wrote in the log dir (a sink worker's): attached if the test fails."""
    node.stash.setdefault(_NOTED, []).append(Path(path))


def tail(path: Path, lines: int = TAIL_LINES) -> str:
    """The last ``lines`` lines of a file, or one line saying why there are none."""
    try:
        with path.open(errors="replace") as fh:
            return "".join(deque(fh, maxlen=lines)) or f"({path} is empty)"
    except OSError as exc:
        return f"(no log to show: {path}: {exc.strerror or exc})"


def _log_files(log_dir: Path, noted: list[Path], harness: str) -> list[Path]:
    """The log dir's files for this test: its harness log, the sink logs it noted, the rest."""
    try:
        present = sorted(p for p in log_dir.iterdir() if p.is_file())
    except OSError:
        present = []
    own_harness = log_dir / harness
    noted_here = [p for p in noted if p.parent == log_dir]
    chosen = [own_harness] if own_harness in present else []
    chosen += [p for p in noted_here if p not in chosen]
    chosen += [p for p in present if not p.name.startswith(("harness", "sink-"))]
    return chosen


def failure_logs(
    stack: Stack, noted: Sequence[Path] = (), lines: int = TAIL_LINES, harness: str = "harness.log"
) -> list[tuple[str, str]]:
    """(attachment name, text) for each log of ``stack`` a failed test shows; a log that is
    missing or cannot be read is a line saying so. A component whose ``Stack.logs`` is a file
    of the log dir (the same lines) is shown once."""
    found: list[tuple[str, str]] = []
    if stack.endpoints.log_dir:
        log_dir = Path(stack.endpoints.log_dir)
        if not log_dir.is_dir():
            found.append(("log dir", f"(no log to show: {log_dir} does not exist)"))
        for path in _log_files(log_dir, list(noted), harness):
            found.append((f"log: {path.name}", tail(path, lines)))
    shown = {text.rstrip() for _, text in found}
    if stack.started_here:
        for component in stack.components:
            try:
                text = stack.logs(component, lines)
            except Exception as exc:  # never fail the teardown over a log
                text = f"(no log to show: {type(exc).__name__}: {exc})"
            if text.rstrip() not in shown:
                found.append((f"log: {component} (stack)", text or "(empty)"))
    return found


def attach_failure_logs(item: pytest.Item) -> None:
    """Attach the tails of the logs of the scenario's stack (nothing when it has none)."""
    stack = item.config.stash.get(_STACK, None)
    if stack is None:
        return
    try:
        logs = failure_logs(
            stack, item.stash.get(_NOTED, []), harness=harness_log_name(item.config)
        )
    except Exception as exc:  # the report must not break the run
        logs = [("logs", f"(could not collect the logs: {type(exc).__name__}: {exc})")]
    for name, text in logs:
        attach_text(name, text)


def scenario_started(item: pytest.Item) -> None:
    """pytest-bdd started the scenario (and allure-pytest-bdd its test case)."""
    item.stash[_SCENARIO] = True


def after_report(item: pytest.Item, report: pytest.TestReport) -> None:
    """After each phase's report: at the end of a scenario that failed in any phase, with an
    Allure results dir, attach the logs (before Allure writes the scenario's result)."""
    if report.failed:
        item.stash[_FAILED] = True
    if report.when != "teardown" or not item.stash.get(_FAILED, False):
        return
    if in_scenario(item) and getattr(item.config.option, "allure_report_dir", None):
        attach_failure_logs(item)
