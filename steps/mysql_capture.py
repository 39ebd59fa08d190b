"""Steps for features/mysql/binlog.feature: starting an approach, stopping and restarting it.

Both approaches are :class:`~cdc_support.mysql.approach.BinlogApproach`\\ es, so one Scenario
Outline states a rule once and runs it per approach (the ``<approach>`` column: "Debezium" or
"the binlog reader"). The fixtures that register connectors and make readers are passed in.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

import pytest
from pytest_bdd import given, parsers, when

from cdc_support.mysql.approach import EVENT_TIMEOUT, BinlogApproach
from cdc_support.mysql.binlog_capture import BinlogReaderApproach, ReaderRestart
from cdc_support.mysql.debezium import DebeziumBinlogApproach
from cdc_support.mysql.source_table import MySqlSourceTable
from cdc_support.workload import EcommerceGenerator
from pytest_cdc.fixtures.stack import ScenarioFixtures
from pytest_cdc.report import evidence


def _debezium(table: MySqlSourceTable, fixtures: ScenarioFixtures) -> BinlogApproach:
    stack = fixtures.get("cdc_stack")
    return DebeziumBinlogApproach(
        table.name,
        table.key,
        register=fixtures.get("mysql_connector_factory"),
        open_reader=fixtures.get("kafka_reader_factory"),
        kafka_bootstrap=stack.kafka_bootstrap,
    )


def _binlog_reader(table: MySqlSourceTable, fixtures: ScenarioFixtures) -> BinlogApproach:
    return BinlogReaderApproach(
        table.name, table.key, make_reader=fixtures.get("binlog_reader_factory")
    )


APPROACHES: dict[str, Callable[[MySqlSourceTable, ScenarioFixtures], BinlogApproach]] = {
    "Debezium": _debezium,
    "the binlog reader": _binlog_reader,
}


@given(parsers.parse("{approach} captures the MariaDB table"), target_fixture="capture")
@when(parsers.parse("{approach} captures the MariaDB table"), target_fixture="capture")
def approach_captures(
    approach: str, mysql_table: MySqlSourceTable, cdc_fixtures: ScenarioFixtures
) -> BinlogApproach:
    """Start the approach on the scenario's table and wait until it is streaming."""
    if approach not in APPROACHES:
        raise pytest.UsageError(
            f"unknown approach {approach!r} in the feature; use one of {tuple(APPROACHES)}"
        )
    capture = APPROACHES[approach](mysql_table, cdc_fixtures)
    cdc_fixtures.at_teardown(capture.close)
    capture.start()
    evidence.attach_json(f"{approach} on {mysql_table.name}", capture.describe())
    return capture


@when(
    parsers.parse(
        "a workload of {count:d} operations with seed {seed:d} runs while the binlog reader is "
        "stopped after operation {stop_at:d} and started again after operation {restart_at:d}"
    ),
    target_fixture="reader_restart",
)
def workload_with_reader_restart(
    mysql_table: MySqlSourceTable,
    capture: BinlogApproach,
    count: int,
    seed: int,
    stop_at: int,
    restart_at: int,
) -> ReaderRestart:
    """Stop the reader once it delivered op ``stop_at``; write on; start a new reader on the
    same position file at op ``restart_at`` (as a restarted process would); finish."""
    assert isinstance(capture, BinlogReaderApproach), "this scenario is about the binlog reader"
    assert 0 < stop_at < restart_at < count, "need 0 < stop < restart < count"
    gen = EcommerceGenerator(seed)
    ops = mysql_table.run_workload(gen, stop_at)
    capture.wait_count(stop_at, timeout=EVENT_TIMEOUT)
    capture.stop()
    first_delivered = len(capture.delivered())
    stopped_at = capture.position()
    ops += mysql_table.run_workload(gen, restart_at - stop_at)
    capture.start()
    ops += mysql_table.run_workload(gen, count - restart_at)
    events = capture.wait_count(first_delivered + count - stop_at, timeout=EVENT_TIMEOUT)
    evidence.attach_json(
        "reader restart",
        {
            "first reader delivered": first_delivered,
            "position saved at stop": str(stopped_at),
            "second reader started at": str(capture.reader.started_at),
            "second reader delivered": len(events) - first_delivered,
            "workload": dict(Counter(op.op for op in ops)),
        },
    )
    return ReaderRestart(ops, events)
