"""The sequenced workload against the stack's real PostgreSQL and MariaDB, restarted or killed
with SIGKILL mid-run: it goes on, and its log is exactly what the table holds.

Faulting needs a stack this run started: under ``pytest -n`` the stack is shared by the
workers and ``cdc_faultable_stack`` skips (run this file without ``-n``).
"""

from __future__ import annotations

import pytest

from cdc_support.faults.workload import (
    MySqlWriter,
    PostgresWriter,
    SequencedWorkload,
    SequencedWriter,
    plan_operations,
)
from cdc_support.waiting import wait_until
from pytest_cdc.stack import Stack

COUNT, SEED, FAULT_AT = 20_000, 16, 5_000

SOURCES = [
    pytest.param("postgres", marks=pytest.mark.postgres, id="postgres"),
    pytest.param("mariadb", marks=pytest.mark.mysql, id="mariadb"),
]


def _writer(source: str, request: pytest.FixtureRequest) -> SequencedWriter:
    if source == "postgres":
        return PostgresWriter(request.getfixturevalue("pg_database").dsn)
    return MySqlWriter(request.getfixturevalue("mysql_database").admin)


def _fault(stack: Stack, source: str, fault: str) -> None:
    component = "postgres" if source == "postgres" else stack.endpoints.mysql_flavor
    if fault == "kill":
        stack.kill(component)
    stack.restart(component)  # after a kill: starts it again


@pytest.mark.slow
@pytest.mark.fault
@pytest.mark.parametrize("fault", ["restart", "kill"])
@pytest.mark.parametrize("source", SOURCES)
def test_the_workload_survives_its_database_dying_and_logs_exactly_what_committed(
    cdc_faultable_stack: Stack, source: str, fault: str, request: pytest.FixtureRequest
) -> None:
    writer = _writer(source, request)
    writer.create()
    workload = SequencedWorkload(writer, COUNT, SEED).start()
    try:
        wait_until(
            lambda: workload.done,
            done=workload.passed(FAULT_AT),
            timeout=60,
            expected=f"{FAULT_AT} operations committed",
            describe=lambda done: f"{done} committed",
        )
        _fault(cdc_faultable_stack, source, fault)
        assert workload.done < COUNT, "the fault came after the last operation: too late"
        workload.join(timeout=180)
    finally:
        workload.stop()

    plan = plan_operations(COUNT, SEED)
    assert [(op.seq, op.op, op.key) for op in workload.ops] == [
        (p.seq, p.op, (p.id,)) for p in plan
    ], "every operation logged once, in order, as planned"
    assert workload.outages, "the workload never saw the database go away"
    for failed, back in workload.outages:
        assert failed <= back
    rows = writer.rows()
    assert rows == workload.expected_rows(), "the log says what the table holds"
    assert len(rows) == sum(1 for p in plan if p.op == "c") - sum(1 for p in plan if p.op == "d")
    print(
        f"{workload!r}: {workload.seconds:.1f}s, outages "
        f"{[round(back - failed, 2) for failed, back in workload.outages]}s, "
        f"unknown outcomes (seq, committed): {workload.unknown_outcomes}"
    )
