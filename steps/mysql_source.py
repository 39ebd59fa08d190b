"""Steps for features/mysql/binlog.feature: the MariaDB table and what is written to it."""

from __future__ import annotations

from typing import Any

from pytest_bdd import given, parsers, when

from cdc_support.mysql.source_table import MySqlSourceTable
from cdc_support.source_table import tally
from cdc_support.workload import EcommerceGenerator, Operation
from pytest_cdc.report import evidence

MARKER_KEY = 999


def customer(seed: int, key: int, **extra: Any) -> dict[str, Any]:
    """Generated customer ``key`` (seeded), with extra columns."""
    return {**EcommerceGenerator(seed).customer(key=key), **extra}


@given(parsers.parse("a {table} table in a fresh MariaDB database"), target_fixture="mysql_table")
def fresh_mysql_table(table: str, mysql_conn: Any) -> MySqlSourceTable:
    """Create the table in this scenario's own MariaDB database (admin connection)."""
    mysql_table = MySqlSourceTable(mysql_conn, table, label="MariaDB")
    mysql_table.create()
    return mysql_table


@given(
    parsers.parse("{count:d} customers already in the MariaDB table, generated with seed {seed:d}")
)
def seed_mysql_rows(mysql_table: MySqlSourceTable, count: int, seed: int) -> None:
    """Insert generated customers in one transaction, before any capture starts."""
    assert mysql_table.name == "customers", f"the scenario's table is {mysql_table.name}"
    rows = mysql_table.seed(count, seed)
    evidence.attach_html(
        "first generated customers", evidence.table_html(f"customers (seed {seed})", rows[:10])
    )


@when("one more customer is inserted into the MariaDB table", target_fixture="marker_key")
def insert_marker(mysql_table: MySqlSourceTable) -> tuple[int]:
    """A row written after capture started: everything before it has been delivered by then."""
    mysql_table.insert_row(customer(2002, MARKER_KEY))
    return (MARKER_KEY,)


@when(
    "customer 1 is inserted into the MariaDB table, renamed, then deleted",
    target_fixture="story",
)
def insert_rename_delete(mysql_table: MySqlSourceTable) -> dict[str, Any]:
    """Three single-statement transactions on one row."""
    row = customer(1001, 1)
    mysql_table.insert_row(row)
    new_name = row["full_name"] + " Jr."
    mysql_table.execute("UPDATE customers SET full_name = %s WHERE id = 1", (new_name,))
    mysql_table.execute("DELETE FROM customers WHERE id = 1")
    return {"key": (1,), "inserted": row, "new_name": new_name}


@when(parsers.parse("{count:d} customers are inserted into the MariaDB table"))
def insert_customers(mysql_table: MySqlSourceTable, count: int) -> None:
    """Insert rows with keys 1..count, each its own transaction."""
    for k in range(1, count + 1):
        mysql_table.insert_row(customer(100 + k, k))


@when(parsers.parse("the column {column} is added to the MariaDB table"))
def add_column(mysql_table: MySqlSourceTable, column: str) -> None:
    """ALTER TABLE mid-stream (an implicit commit in MySQL/MariaDB)."""
    mysql_table.add_column(column)


@when(parsers.parse("{count:d} customers with a loyalty tier are inserted into the MariaDB table"))
def insert_customers_with_tier(mysql_table: MySqlSourceTable, count: int) -> None:
    """Insert rows with keys 101..100+count carrying the new column."""
    tiers = ("bronze", "silver", "gold")
    for k in range(1, count + 1):
        mysql_table.insert_row(customer(200 + k, 100 + k, loyalty_tier=tiers[k % 3]))


@when(
    parsers.parse(
        "a workload of {count:d} operations with seed {seed:d} runs against the MariaDB table"
    ),
    target_fixture="mysql_workload",
)
def run_mysql_workload(mysql_table: MySqlSourceTable, count: int, seed: int) -> list[Operation]:
    """Inserts, updates and deletes, each its own transaction (client commit time recorded)."""
    ops = mysql_table.run_workload(EcommerceGenerator(seed), count)
    evidence.attach_json("workload", {"operations": count, "by kind": tally(ops)})
    return ops
