"""pytest_cdc: the cdc-spec pytest plugin (loaded through the `pytest11` entry point).

Options and ini keys live in `options`, fixtures in `fixtures`, the stack backends in
`backends` and `stack`, and feature-file collection in `collect`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pytest_cdc import signals
from pytest_cdc.collect import collect_feature_file
from pytest_cdc.fixtures import (  # noqa: F401 - re-exported so pytest registers them
    cdc_scenario_name,
    cdc_stack,
    connect_client,
    debezium_connector_factory,
    kafka_reader_factory,
    pg_conn,
    pg_database,
)
from pytest_cdc.lookup import cdc_fixtures  # noqa: F401 - re-exported
from pytest_cdc.mysql_fixtures import (  # noqa: F401 - re-exported so pytest registers them
    binlog_reader_factory,
    mysql_conn,
    mysql_connector_factory,
    mysql_database,
)
from pytest_cdc.options import add_options
from pytest_cdc.pg_approach_fixtures import (  # noqa: F401 - re-exported so pytest registers them
    logical_decoding_factory,
    pg_approach_outcomes,
    pg_capture_factory,
    pg_database_factory,
)
from pytest_cdc.report import labels
from pytest_cdc.sink_fixtures import sink_worker_factory  # noqa: F401 - re-exported
from pytest_cdc.state import STATE_KEY, get_state, init_state, progress_writer

MARKERS = {
    "debezium": "uses Kafka Connect with a Debezium connector",
    "postgres": "needs the stack's PostgreSQL server",
    "mysql": "needs the stack's MySQL/MariaDB server",
    "slow": "runs a workload of a thousand operations or more",
}


def pytest_addoption(parser: pytest.Parser) -> None:
    add_options(parser)


def pytest_configure(config: pytest.Config) -> None:
    for name, description in MARKERS.items():
        config.addinivalue_line("markers", f"{name}: {description}")
    labels.register_markers(config)
    init_state(config)
    signals.install(config, progress_writer(config))


def pytest_unconfigure(config: pytest.Config) -> None:
    signals.uninstall(config)


def pytest_report_header(config: pytest.Config) -> str:
    return get_state(config).header()


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> Any:
    return collect_feature_file(file_path, parent)


@pytest.hookimpl(tryfirst=True)
def pytest_bdd_apply_tag(tag: str, function: Any) -> Any:
    return labels.apply_tag(tag, function)


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session) -> None:
    state = session.config.stash.get(STATE_KEY, None)
    if state is None:
        return
    stack = state.started
    if stack is not None:
        labels.write_environment(session.config, stack)
    state.close()
