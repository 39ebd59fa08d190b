"""What a CDC approach adds to the source database, read from PostgreSQL's catalogs.

:func:`catalog_snapshot` lists the database's user objects — tables, columns, indexes,
sequences, views, triggers, functions — and what CDC leaves on a server: publications,
replication slots of this database, and tables whose REPLICA IDENTITY is not DEFAULT.
Two snapshots' :class:`CatalogDiff` is what an approach changed: taken around ``start()`` it
is the approach's footprint; taken around its whole life it must be empty (nothing left).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import psycopg

__all__ = ["SCHEMA_KINDS", "CatalogDiff", "CatalogItem", "catalog_diff", "catalog_snapshot"]

SCHEMA_KINDS = frozenset({"table", "column", "index", "sequence", "view", "trigger", "function"})
"""Kinds of object that are part of the source schema (publications, slots and the replica
identity setting are not)."""

_SYSTEM = (
    "n.nspname NOT IN ('pg_catalog', 'information_schema') "
    "AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp%'"
)
_RELKINDS = {"r": "table", "p": "table", "v": "view", "m": "view", "i": "index", "S": "sequence"}
_IDENTITY = {"f": "FULL", "i": "USING INDEX", "n": "NOTHING"}


@dataclass(frozen=True, order=True)
class CatalogItem:
    """One object: its kind (``table``, ``trigger``, ``replication slot``, ...) and name."""

    kind: str
    name: str

    def __str__(self) -> str:
        return f"{self.kind} {self.name}"


def _qualified(schema: str, name: str) -> str:
    return name if schema == "public" else f"{schema}.{name}"


def catalog_snapshot(conn: psycopg.Connection[Any]) -> frozenset[CatalogItem]:
    """The user objects of ``conn``'s database, its publications and replication slots."""
    items: set[CatalogItem] = set()
    rows = conn.execute(
        "SELECT c.relkind, n.nspname, c.relname, c.relreplident FROM pg_class c "
        f"JOIN pg_namespace n ON n.oid = c.relnamespace WHERE {_SYSTEM} "
        "AND c.relkind IN ('r', 'p', 'v', 'm', 'i', 'S')"
    ).fetchall()
    for relkind, schema, name, identity in rows:
        qualified = _qualified(schema, name)
        items.add(CatalogItem(_RELKINDS[relkind], qualified))
        if relkind in ("r", "p") and identity in _IDENTITY:
            items.add(CatalogItem("replica identity", f"{_IDENTITY[identity]} on {qualified}"))
    for schema, table, column in conn.execute(
        "SELECT n.nspname, c.relname, a.attname FROM pg_attribute a "
        "JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace "
        f"WHERE {_SYSTEM} AND c.relkind IN ('r', 'p') AND a.attnum > 0 AND NOT a.attisdropped"
    ).fetchall():
        items.add(CatalogItem("column", f"{_qualified(schema, table)}.{column}"))
    for trigger, schema, table in conn.execute(
        "SELECT t.tgname, n.nspname, c.relname FROM pg_trigger t "
        "JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace "
        f"WHERE {_SYSTEM} AND NOT t.tgisinternal"
    ).fetchall():
        items.add(CatalogItem("trigger", f"{trigger} on {_qualified(schema, table)}"))
    for schema, name, args in conn.execute(
        "SELECT n.nspname, p.proname, pg_get_function_identity_arguments(p.oid) FROM pg_proc p "
        f"JOIN pg_namespace n ON n.oid = p.pronamespace WHERE {_SYSTEM}"
    ).fetchall():
        items.add(CatalogItem("function", f"{_qualified(schema, name)}({args})"))
    for (name,) in conn.execute("SELECT pubname FROM pg_publication").fetchall():
        items.add(CatalogItem("publication", name))
    for (name,) in conn.execute(
        "SELECT slot_name FROM pg_replication_slots WHERE database = current_database()"
    ).fetchall():
        items.add(CatalogItem("replication slot", name))
    return frozenset(items)


@dataclass(frozen=True)
class CatalogDiff:
    """Objects added and removed between two snapshots."""

    added: tuple[CatalogItem, ...] = field(default_factory=tuple)
    removed: tuple[CatalogItem, ...] = field(default_factory=tuple)

    @property
    def empty(self) -> bool:
        """Nothing added or removed."""
        return not (self.added or self.removed)

    @property
    def schema_changed(self) -> bool:
        """Whether a table, column, index, sequence, view, trigger or function changed."""
        return any(i.kind in SCHEMA_KINDS for i in (*self.added, *self.removed))

    def kinds(self) -> set[str]:
        """The kinds of object added or removed (``{"table", "trigger", ...}``)."""
        return {i.kind for i in (*self.added, *self.removed)}

    def summary(self) -> str:
        """E.g. ``added: table cdc_audit, trigger ...; removed: nothing``."""
        added = ", ".join(map(str, self.added)) or "nothing"
        text = f"added: {added}"
        if self.removed:
            text += "; removed: " + ", ".join(map(str, self.removed))
        return text

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready lists."""
        return {
            "added": [str(i) for i in self.added],
            "removed": [str(i) for i in self.removed],
            "changes the source schema": self.schema_changed,
        }


def catalog_diff(before: frozenset[CatalogItem], after: frozenset[CatalogItem]) -> CatalogDiff:
    """What ``after`` has that ``before`` had not, and the reverse (both sorted)."""
    return CatalogDiff(_without_own_columns(after - before), _without_own_columns(before - after))


def _without_own_columns(items: frozenset[CatalogItem]) -> tuple[CatalogItem, ...]:
    """Sorted items, leaving out the columns of a table that is itself in ``items``."""
    tables = {i.name for i in items if i.kind == "table"}
    return tuple(
        sorted(i for i in items if not (i.kind == "column" and i.name.rsplit(".", 1)[0] in tables))
    )
