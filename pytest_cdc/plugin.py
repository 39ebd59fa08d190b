"""pytest_cdc: the cdc-spec pytest plugin (loaded through the `pytest11` entry point).

Hooks only. Options and ini keys live in `options`, the fixtures in the `fixtures` package
(loaded through `pytest_plugins`), the fixture factories users call in `factories`, the stack
backends in `backends` and `stack`, and feature-file collection in `collect`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pytest_cdc import signals
from pytest_cdc.collect import collect_feature_file
from pytest_cdc.options import add_options
from pytest_cdc.report import failure_logs, labels
from pytest_cdc.stack.shared import SHARED_DIR_KEY, SharedStack, distribute_by_file
from pytest_cdc.state import STATE_KEY, get_state, init_state, progress_writer

pytest_plugins = [
    "pytest_cdc.fixtures.stack",
    "pytest_cdc.fixtures.postgres",
    "pytest_cdc.fixtures.mysql",
    "pytest_cdc.fixtures.capture",
    "pytest_cdc.fixtures.lakehouse",
    "pytest_cdc.fixtures.sinks",
    "pytest_cdc.fixtures.readers",
    "pytest_cdc.fixtures.faults",
]

MARKERS = {
    "debezium": "uses Kafka Connect with a Debezium connector",
    "postgres": "needs the stack's PostgreSQL server",
    "mysql": "needs the stack's MySQL/MariaDB server",
    "slow": "runs a workload of a thousand operations or more",
    "fault": "kills or restarts a stack component: needs a stack this run started (no -n)",
}


def pytest_addoption(parser: pytest.Parser) -> None:
    add_options(parser)


def pytest_configure(config: pytest.Config) -> None:
    for name, description in MARKERS.items():
        config.addinivalue_line("markers", f"{name}: {description}")
    labels.register_markers(config)
    init_state(config)
    signals.install(config, progress_writer(config))
    distribute_by_file(config)


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    """pytest-xdist controller: tell each worker where to ask for the one shared stack."""
    node.workerinput[SHARED_DIR_KEY] = str(get_state(node.config).serve_workers())


def pytest_unconfigure(config: pytest.Config) -> None:
    signals.uninstall(config)


def pytest_report_header(config: pytest.Config) -> list[str]:
    return get_state(config).header()


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> Any:
    return collect_feature_file(file_path, parent)


@pytest.hookimpl(tryfirst=True)
def pytest_bdd_apply_tag(tag: str, function: Any) -> Any:
    return labels.apply_tag(tag, function)


@pytest.hookimpl(wrapper=True)
def pytest_fixture_setup(fixturedef: pytest.FixtureDef[Any], request: pytest.FixtureRequest) -> Any:
    """Once ``cdc_stack`` is known: the harness's JSON log goes to its log dir."""
    value = yield
    failure_logs.stack_known(request.config, fixturedef.argname, value)
    return value


def pytest_bdd_before_scenario(request: pytest.FixtureRequest) -> None:
    failure_logs.scenario_started(request.node)


@pytest.hookimpl(wrapper=True, trylast=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """A failed scenario gets its logs' last lines; trylast: inside allure's wrapper, which
    writes the scenario's result after the teardown report."""
    report = yield
    failure_logs.after_report(item, report)
    return report


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session) -> None:
    failure_logs.stop_harness_log(session.config)  # before the stack (and its log dir) goes
    state = session.config.stash.get(STATE_KEY, None)
    if state is None:
        return
    stack = state.started
    if stack is not None and not isinstance(stack, SharedStack):  # the controller writes it
        labels.write_environment(session.config, stack)
    state.close()
    if state.stop_error and session.exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED  # the stack did not stop cleanly
