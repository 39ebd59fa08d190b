"""The SourceTable protocol's shared pieces: row statements, counts, a background workload."""

from __future__ import annotations

import ast
import threading
from pathlib import Path
from typing import Any

import pytest

from cdc_support.mysql.source_table import MySqlSourceTable
from cdc_support.postgres.source_table import PostgresTable
from cdc_support.source_table import BackgroundWorkload, SourceTable, WriteLog, tally
from cdc_support.waiting import wait_until
from cdc_support.workload import EcommerceGenerator, Operation

ROOT = Path(__file__).resolve().parents[2]


class FakeTable(WriteLog):
    """Records statements instead of running them; a workload appends inserts."""

    label = "Fake"
    name = "customers"
    key = ("id",)
    precise_commit_times = True

    def __init__(self, *, fail_after: int | None = None) -> None:
        super().__init__()
        self.statements: list[tuple[str, tuple[Any, ...]]] = []
        self.fail_after = fail_after
        self.passed_hold = threading.Event()

    def execute(self, statement: str, args: tuple[Any, ...] = ()) -> None:
        self.statements.append((statement, args))

    def quote(self, identifier: str) -> str:
        return f"[{identifier}]"

    def create(self) -> None:
        self.execute("CREATE")

    def seed(self, count: int, seed: int) -> list[dict[str, Any]]:
        self.seeded = count
        return []

    def run_workload(self, gen: EcommerceGenerator, count: int) -> list[Operation]:
        if self.fail_after is not None and len(self.workload) >= self.fail_after:
            raise RuntimeError("the database went away")
        ops = [
            Operation("insert", self.name, (len(self.workload) + i,), None) for i in range(count)
        ]
        self.workload.extend(ops)
        return ops

    def rows(self) -> dict[tuple[Any, ...], dict[str, Any]]:
        return {}

    def add_column(self, column: str) -> None:
        self.execute(f"ALTER {column}")


def test_row_statements_quote_identifiers_and_count_as_change_events() -> None:
    table = FakeTable()
    table.seed(3, seed=1)
    table.insert_row({"id": 7, "email": "a@b"})
    table.update_row((7,), {"loyalty_tier": "gold"})
    assert table.statements == [
        ("INSERT INTO [customers] ([id], [email]) VALUES (%s, %s)", (7, "a@b")),
        ("UPDATE [customers] SET [loyalty_tier] = %s WHERE [id] = %s", ("gold", 7)),
    ]
    table.run_workload(EcommerceGenerator(1), 4)
    assert table.change_events == 3 + 4 + 2
    assert repr(table) == "Fake customers table"


def test_both_databases_implement_the_protocol_with_their_own_quoting() -> None:
    pg = PostgresTable(None, "customers")  # type: ignore[arg-type]
    my = MySqlSourceTable(None, "customers")  # type: ignore[arg-type]
    assert isinstance(pg, SourceTable) and isinstance(my, SourceTable)
    assert (pg.quote("a"), my.quote("a")) == ('"a"', "`a`")
    assert (pg.precise_commit_times, my.precise_commit_times) == (True, False)
    assert (repr(pg), repr(my)) == ("PostgreSQL customers table", "MariaDB customers table")


def _table_facades(path: Path) -> list[str]:
    """Classes of ``path`` that read a table's rows and keep or run its workload."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ClassDef):
            members = {
                getattr(item, "name", None) or getattr(getattr(item, "target", None), "id", None)
                for item in node.body
            }
            if "rows" in members and members & {"workload", "run_workload"}:
                found.append(node.name)
    return found


def test_one_source_table_class_per_database_and_none_in_the_steps() -> None:
    paths = [*(ROOT / "cdc_support").rglob("*.py"), *(ROOT / "steps").glob("*.py")]
    facades = {
        f"{path.relative_to(ROOT).as_posix()}:{name}"
        for path in paths
        if path != ROOT / "cdc_support" / "source_table.py"  # the protocol itself
        for name in _table_facades(path)
    }
    assert facades == {
        "cdc_support/postgres/source_table.py:PostgresTable",
        "cdc_support/mysql/source_table.py:MySqlSourceTable",
    }


def test_tally_counts_operations_by_kind() -> None:
    ops = [
        Operation(k, "customers", (i,), None) for i, k in enumerate(["insert", "insert", "delete"])
    ]
    assert tally(ops) == {"insert": 2, "delete": 1}


def test_a_background_workload_holds_until_released_then_finishes() -> None:
    table = FakeTable()
    workload = BackgroundWorkload(
        table, EcommerceGenerator(1), 100, hold_at=40, hold_timeout=30, step=20
    ).start()
    wait_until(
        lambda: workload.done,
        done=workload.passed(40),
        timeout=10,
        interval=0.01,
        expected="the writer to reach operation 40",
    )
    assert workload.done == 40, "the writer must wait at hold_at until released"
    assert not workload.passed(60)(workload.done)
    assert workload.passed(40)(workload.done)
    workload.join(timeout=10)
    assert workload.done == 100 and len(table.workload) == 100


def test_a_failure_in_the_writer_is_raised_by_join() -> None:
    table = FakeTable(fail_after=20)
    workload = BackgroundWorkload(
        table, EcommerceGenerator(1), 100, hold_at=90, hold_timeout=30, step=10
    ).start()
    with pytest.raises(RuntimeError, match="went away"):
        workload.join(timeout=10)
    assert workload.done == 20


def test_a_writer_never_released_times_out_with_a_message() -> None:
    workload = BackgroundWorkload(
        FakeTable(), EcommerceGenerator(1), 50, hold_at=10, hold_timeout=0.05, step=10
    ).start()
    workload._thread.join(timeout=10)
    with pytest.raises(TimeoutError, match=r"waited 0\.05s at operation 10"):
        workload.join(timeout=10)
