"""The schema changes the pipeline features apply mid-stream, and the writes around them.

Every case starts from the same ``accounts`` table and changes one column of it::

    id integer PRIMARY KEY, qty integer, note varchar(20), price numeric(8,2),
    legacy_code varchar(40)

===========================  =====================================  ==========================
case                         PostgreSQL                             MariaDB
===========================  =====================================  ==========================
legacy_code is dropped       DROP COLUMN legacy_code                DROP COLUMN legacy_code
qty becomes bigint           ALTER COLUMN qty TYPE bigint           MODIFY qty BIGINT
note becomes text            ALTER COLUMN note TYPE text            MODIFY note TEXT
price becomes numeric(12,2)  ALTER COLUMN price TYPE numeric(12,2)  MODIFY price DECIMAL(12,2)
===========================  =====================================  ==========================

The writes (:func:`writes_before`, :func:`writes_after`) are single-row transactions: 10 rows
exist before capture starts; 5 inserts and an update come before the change; after it, 5
inserts (the first two, ids 16 and 17, hold values only the new shape holds: a quantity above
2^31, a 300-character note, a price with 10 digits before the point), 2 updates of rows
written before the change, and a delete.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

__all__ = [
    "BIG_KEYS",
    "CASES",
    "KEY",
    "SEEDED",
    "TABLE",
    "Case",
    "Write",
    "create_table",
    "ordinary_row",
    "writes_after",
    "writes_before",
]

TABLE = "accounts"
KEY = ("id",)
SEEDED = 10
BIG_KEYS = (16, 17)
"""The rows inserted after the change with values only the new shape holds."""

_CREATE = {
    "PostgreSQL": (
        'CREATE TABLE "accounts" (id integer PRIMARY KEY, qty integer, note varchar(20), '
        "price numeric(8,2), legacy_code varchar(40))"
    ),
    "MariaDB": (
        "CREATE TABLE `accounts` (id INT PRIMARY KEY, qty INT, note VARCHAR(20), "
        "price DECIMAL(8,2), legacy_code VARCHAR(40))"
    ),
}


@dataclass(frozen=True)
class Case:
    """One schema change: the column, the statement per database, and the values after it
    that only the new shape holds (none for a dropped column)."""

    name: str
    column: str
    ddl: Mapping[str, str]
    before: str
    after: str
    big_values: tuple[Any, ...] = ()
    same_connect_type: bool = False
    """Whether Debezium's field type stays the same (a string stays a string)."""

    @property
    def drops(self) -> bool:
        """Whether the column is gone after the change."""
        return not self.big_values

    def __repr__(self) -> str:
        return f"Case({self.name}: {self.column} {self.before} -> {self.after})"


CASES: dict[str, Case] = {
    case.name: case
    for case in (
        Case(
            "legacy_code is dropped",
            "legacy_code",
            {
                "PostgreSQL": 'ALTER TABLE "accounts" DROP COLUMN legacy_code',
                "MariaDB": "ALTER TABLE `accounts` DROP COLUMN legacy_code",
            },
            "varchar(40)",
            "(dropped)",
        ),
        Case(
            "qty becomes bigint",
            "qty",
            {
                "PostgreSQL": 'ALTER TABLE "accounts" ALTER COLUMN qty TYPE bigint',
                "MariaDB": "ALTER TABLE `accounts` MODIFY qty BIGINT",
            },
            "integer",
            "bigint",
            (3_000_000_000, -(2**40)),
        ),
        Case(
            "note becomes text",
            "note",
            {
                "PostgreSQL": 'ALTER TABLE "accounts" ALTER COLUMN note TYPE text',
                "MariaDB": "ALTER TABLE `accounts` MODIFY note TEXT",
            },
            "varchar(20)",
            "text",
            ("n" * 300, "é" * 120),
            same_connect_type=True,
        ),
        Case(
            "price becomes numeric(12,2)",
            "price",
            {
                "PostgreSQL": 'ALTER TABLE "accounts" ALTER COLUMN price TYPE numeric(12,2)',
                "MariaDB": "ALTER TABLE `accounts` MODIFY price DECIMAL(12,2)",
            },
            "numeric(8,2)",
            "numeric(12,2)",
            (Decimal("1234567890.12"), Decimal("-9999999999.99")),
        ),
    )
}


def create_table(source: str) -> str:
    """The CREATE TABLE statement of ``accounts`` in ``source`` (PostgreSQL or MariaDB)."""
    if source not in _CREATE:
        raise ValueError(f"unknown source {source!r}; use one of {sorted(_CREATE)}")
    return _CREATE[source]


def ordinary_row(key: int, *, dropped: str | None = None) -> dict[str, Any]:
    """A row whose values fit the table before and after any change."""
    row = {
        "id": key,
        "qty": key * 10,
        "note": f"note {key}",
        "price": Decimal(f"{key}.25"),
        "legacy_code": f"L{key}",
    }
    if dropped:
        del row[dropped]
    return row


@dataclass(frozen=True)
class Write:
    """One single-row transaction: insert (``values`` the row), update or delete of ``key``."""

    op: str
    key: int
    values: dict[str, Any] = field(default_factory=dict)


def writes_before() -> list[Write]:
    """After the seeded rows, before the change: 5 inserts and an update."""
    writes = [Write("insert", k, ordinary_row(k)) for k in range(11, 16)]
    return [*writes, Write("update", 1, {"qty": 11, "note": "updated before"})]


def writes_after(case: Case) -> list[Write]:
    """After the change: 5 inserts (the first ones with the big values), 2 updates of older
    rows with ordinary values, and a delete."""
    dropped = case.column if case.drops else None
    writes = []
    for index, key in enumerate(range(16, 21)):
        row = ordinary_row(key, dropped=dropped)
        if index < len(case.big_values):
            row[case.column] = case.big_values[index]
        writes.append(Write("insert", key, row))
    writes += [
        Write("update", 2, {"qty": 22, "note": "updated after"}),
        Write("update", 3, {"price": Decimal("33.75")}),
        Write("delete", 4),
    ]
    return writes
