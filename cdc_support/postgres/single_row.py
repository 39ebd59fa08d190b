"""One customer's life (insert, maybe an update, delete), for features/postgres/debezium.feature.

:func:`write_single_row_story` writes it, each write its own transaction, and returns the
:class:`SingleRowStory` the checks compare events against; :func:`insert_marker` writes a row
after it, so that once the marker is delivered everything before it has been.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg

from cdc_support.postgres.tables import insert_rows
from cdc_support.workload import EcommerceGenerator

__all__ = ["SingleRowStory", "insert_marker", "write_single_row_story"]


@dataclass
class SingleRowStory:
    """What the scenario did to one row: its states before/after each write."""

    key: tuple[Any, ...]
    inserted: dict[str, Any]
    updated: dict[str, Any] | None
    ops: tuple[str, ...]

    def __repr__(self) -> str:
        return f"wrote {', '.join(self.ops)} for key {self.key}"


def write_single_row_story(conn: psycopg.Connection[Any], *, update: bool) -> SingleRowStory:
    """Insert customer 1, rename it if ``update``, then delete it (autocommit: one transaction
    each)."""
    row = EcommerceGenerator(seed=1001).customer(key=1)
    insert_rows(conn, "customers", [row])
    ops = ["c"]
    updated = None
    if update:
        updated = {**row, "full_name": row["full_name"] + " Jr."}
        conn.execute("UPDATE customers SET full_name = %s WHERE id = 1", (updated["full_name"],))
        ops.append("u")
    conn.execute("DELETE FROM customers WHERE id = 1")
    ops.append("d")
    return SingleRowStory(key=(1,), inserted=row, updated=updated, ops=tuple(ops))


def insert_marker(conn: psycopg.Connection[Any], key: int, *, seed: int = 2002) -> dict[str, Any]:
    """Insert a generated customer ``key`` as a marker row; returns it."""
    marker = EcommerceGenerator(seed=seed).customer(key=key)
    insert_rows(conn, "customers", [marker])
    return marker
