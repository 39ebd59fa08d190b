"""What the rule scenarios of features/postgres/approaches.feature write, and watch.

:class:`Story` records the writes of one scenario on the customers table, in commit order;
:class:`Captured` is a started approach with its footprint (what starting it added to the
source catalog); :class:`LongTransaction` is a second session left open on purpose;
:func:`expected_kinds` reads a footprint sentence (``a table, 2 indexes``) into kinds.
"""

from __future__ import annotations

import re
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import psycopg

from cdc_support.events import ChangeEvent
from cdc_support.postgres.base import CaptureApproach
from cdc_support.postgres.catalog import (
    SCHEMA_KINDS,
    CatalogDiff,
    CatalogItem,
    catalog_diff,
    catalog_snapshot,
)
from cdc_support.postgres.loader import fetch_table
from cdc_support.postgres.tables import insert_rows
from cdc_support.workload import KEY_COLUMNS, EcommerceGenerator, Operation

__all__ = [
    "FOOTPRINT_KINDS",
    "Captured",
    "LongTransaction",
    "Story",
    "events_for",
    "expected_kinds",
]

TABLE = "customers"


@dataclass
class Story:
    """What the scenario wrote to the customers table, in commit order."""

    rule: str = ""
    operations: list[Operation] = field(default_factory=list)
    names: list[str] = field(default_factory=list)
    old_row: dict[str, Any] | None = None

    def insert(self, conn: psycopg.Connection[Any], key: int) -> dict[str, Any]:
        """Insert a generated customer ``key`` (seeded by its key); returns the row."""
        row = EcommerceGenerator(1000 + key).customer(key=key)
        insert_rows(conn, TABLE, [row])
        self.operations.append(Operation("insert", TABLE, (key,), row, time.time()))
        return row

    def rename(self, conn: psycopg.Connection[Any], key: int, name: str) -> None:
        """Set customer ``key``'s full_name."""
        conn.execute("UPDATE customers SET full_name = %s WHERE id = %s", (name, key))
        self.operations.append(Operation("update", TABLE, (key,), None, time.time()))
        self.names.append(name)

    def delete(self, conn: psycopg.Connection[Any], key: int) -> None:
        """Delete customer ``key`` (its old row is remembered as ``old_row``)."""
        self.old_row = current_row(conn, key)
        conn.execute("DELETE FROM customers WHERE id = %s", (key,))
        self.operations.append(Operation("delete", TABLE, (key,), self.old_row, time.time()))

    def committed_elsewhere(self, key: int) -> None:
        """Record an update of ``key`` that another session (a long transaction) committed."""
        self.operations.append(Operation("update", TABLE, (key,), None, time.time()))

    def next_key(self) -> int:
        """One more than the highest key written so far."""
        return max(o.key[0] for o in self.operations) + 1

    def __repr__(self) -> str:
        return f"{len(self.operations)} writes"


def current_row(conn: psycopg.Connection[Any], key: int) -> dict[str, Any]:
    """Customer ``key`` as it is now; fails if it is not in the table."""
    row = fetch_table(conn, TABLE, KEY_COLUMNS[TABLE]).get((key,))
    assert row is not None, f"customer {key} is not in the table"
    return row


def events_for(events: list[ChangeEvent], key: tuple[Any, ...]) -> list[ChangeEvent]:
    """The events of one key, in delivery order."""
    return [e for e in events if e.key == key]


@dataclass
class Captured:
    """A started approach, and what starting it added to the source database."""

    approach: CaptureApproach
    before: frozenset[CatalogItem]
    footprint: CatalogDiff

    @classmethod
    def start(cls, approach: CaptureApproach, conn: psycopg.Connection[Any]) -> Captured:
        """Start ``approach``; its footprint is the catalog of ``conn``'s database after
        minus before."""
        before = catalog_snapshot(conn)
        approach.start()
        return cls(approach, before, catalog_diff(before, catalog_snapshot(conn)))

    def wait_for_key(
        self, key: tuple[Any, ...], what: str, timeout: float = 60.0
    ) -> list[ChangeEvent]:
        """Wait until some event for ``key`` arrived; all events delivered by then."""
        return self.approach.wait_events(
            lambda events: any(e.key == key for e in events), expected=what, timeout=timeout
        )

    def left_behind(self, conn: psycopg.Connection[Any]) -> CatalogDiff:
        """The catalog now minus the one before the approach started."""
        return catalog_diff(self.before, catalog_snapshot(conn))

    def __repr__(self) -> str:
        return self.approach.name


class LongTransaction:
    """A second session on ``dsn`` whose transaction stays open until :meth:`commit`."""

    def __init__(self, dsn: str) -> None:
        self._conn = psycopg.connect(dsn, autocommit=False)

    def rename(self, key: int, name: str) -> None:
        """Update customer ``key``'s name inside the open transaction."""
        self._conn.execute("UPDATE customers SET full_name = %s WHERE id = %s", (name, key))

    def commit(self) -> None:
        """Commit what the transaction wrote."""
        self._conn.commit()

    def close(self) -> None:
        """Close the session (an uncommitted transaction is rolled back)."""
        self._conn.close()

    def __repr__(self) -> str:
        return "long transaction"


FOOTPRINT_KINDS = SCHEMA_KINDS | {"publication", "replication slot", "replica identity"}
"""Kinds a footprint sentence may name."""


def expected_kinds(text: str) -> Counter[str]:
    """``a table, 2 indexes, REPLICA IDENTITY FULL`` -> Counter of catalog kinds."""
    counts: Counter[str] = Counter()
    for item in (i.strip() for i in text.split(",")):
        if item.upper().startswith("REPLICA IDENTITY"):
            counts["replica identity"] += 1
            continue
        match = re.fullmatch(r"(a|an|\d+) (.+)", item)
        assert match, f"cannot read {item!r}: write 'a <kind>' or '<n> <kinds>'"
        kind = match[2]
        for plural in ("es", "s"):
            if (
                kind not in FOOTPRINT_KINDS
                and kind.endswith(plural)
                and kind[: -len(plural)] in FOOTPRINT_KINDS
            ):
                kind = kind[: -len(plural)]
        assert kind in FOOTPRINT_KINDS, f"unknown kind {kind!r}; one of {sorted(FOOTPRINT_KINDS)}"
        counts[kind] += 1 if match[1] in ("a", "an") else int(match[1])
    return counts
