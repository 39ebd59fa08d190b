"""Write to Delta tables with delta-rs: one helper per kind of commit, and a generated table.

Every helper makes exactly one commit and returns the new table version, so a caller knows
which version of the change data feed each write produced. :class:`GeneratedDeltaTable` keeps
the rows it expects the table to hold (like ``workload.mixed_workload`` keeps its log), from
rows made by :class:`~cdc_support.workload.EcommerceGenerator`.
"""

from __future__ import annotations

import datetime as dt
import decimal
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
from deltalake import DeltaTable, write_deltalake

from cdc_support.deltalake.feed import CDF_PROPERTY, read_table
from cdc_support.deltalake.location import DeltaLocation
from cdc_support.deltalake.log import open_table
from cdc_support.workload import KEY_COLUMNS, EcommerceGenerator

__all__ = [
    "ARROW_SCHEMAS",
    "DeltaCommit",
    "GeneratedDeltaTable",
    "append_rows",
    "create_cdf_table",
    "delete_where",
    "in_predicate",
    "merge_rows",
    "optimize_compact",
    "overwrite_where",
    "read_rows",
    "sql_literal",
    "update_where",
    "vacuum",
]

_UTC_MICROS = pa.timestamp("us", tz="UTC")

ARROW_SCHEMAS: dict[str, pa.Schema] = {
    "customers": pa.schema(
        [
            ("id", pa.int64()),
            ("email", pa.string()),
            ("full_name", pa.string()),
            ("country", pa.string()),
            ("created_at", _UTC_MICROS),
        ]
    ),
    "products": pa.schema(
        [
            ("id", pa.int64()),
            ("sku", pa.string()),
            ("name", pa.string()),
            ("price", pa.decimal128(10, 2)),
            ("stock", pa.int32()),
        ]
    ),
    "orders": pa.schema(
        [
            ("id", pa.int64()),
            ("customer_id", pa.int64()),
            ("status", pa.string()),
            ("total", pa.decimal128(12, 2)),
            ("updated_at", _UTC_MICROS),
        ]
    ),
}
"""Arrow schemas of the generated tables a Delta table can hold (same columns as PostgreSQL)."""


# --------------------------------------------------------------------------- SQL text


def sql_literal(value: Any) -> str:
    """A SQL literal for delta-rs predicates and update expressions (quotes doubled)."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int | float | decimal.Decimal):
        return str(value)
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            raise ValueError(f"timestamps must be timezone-aware, got naive {value}")
        text = value.astimezone(dt.UTC).isoformat(timespec="microseconds")
        return "'" + text.replace("+00:00", "Z") + "'"
    if isinstance(value, dt.date):
        return f"'{value.isoformat()}'"
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    raise TypeError(f"no SQL literal for {type(value).__name__} value {value!r}")


def in_predicate(column: str, values: Sequence[Any]) -> str:
    """``column IN (v1, v2, ...)``; ValueError for an empty list (it would match nothing)."""
    if not values:
        raise ValueError(f"an IN predicate on {column!r} needs at least one value")
    return f"{column} IN ({', '.join(sql_literal(v) for v in values)})"


# --------------------------------------------------------------------------- one commit each


def create_cdf_table(
    location: DeltaLocation,
    schema: pa.Schema,
    *,
    partition_by: Sequence[str] | None = None,
    configuration: Mapping[str, str] | None = None,
) -> DeltaTable:
    """Create an empty table (version 0) with ``delta.enableChangeDataFeed=true``."""
    return DeltaTable.create(
        location.uri,
        schema,
        partition_by=list(partition_by) if partition_by else None,
        configuration={**(configuration or {}), CDF_PROPERTY: "true"},
        storage_options=location.options(),
    )


def _arrow(rows: Sequence[Mapping[str, Any]], schema: pa.Schema) -> pa.Table:
    return pa.Table.from_pylist([dict(r) for r in rows], schema=schema)


def _schema(location: DeltaLocation) -> pa.Schema:
    return pa.schema(open_table(location).schema().to_arrow())


def append_rows(location: DeltaLocation, rows: Sequence[Mapping[str, Any]]) -> int:
    """Append rows (a blind insert) and return the new version."""
    write_deltalake(
        location.uri,
        _arrow(rows, _schema(location)),
        mode="append",
        storage_options=location.options(),
    )
    return open_table(location).version()


def update_where(
    location: DeltaLocation,
    predicate: str,
    *,
    values: Mapping[str, Any] | None = None,
    expressions: Mapping[str, str] | None = None,
) -> int:
    """UPDATE ... SET column = value (or = SQL expression) WHERE predicate; the new version."""
    updates = {c: sql_literal(v) for c, v in (values or {}).items()}
    updates.update(expressions or {})
    if not updates:
        raise ValueError("update_where needs values or expressions to set")
    table = open_table(location)
    table.update(updates=updates, predicate=predicate)
    return table.version()


def delete_where(location: DeltaLocation, predicate: str) -> int:
    """DELETE WHERE predicate; the new version."""
    table = open_table(location)
    table.delete(predicate)
    return table.version()


def overwrite_where(
    location: DeltaLocation, rows: Sequence[Mapping[str, Any]], predicate: str
) -> int:
    """Replace the rows matching ``predicate`` by ``rows`` (replaceWhere); the new version."""
    write_deltalake(
        location.uri,
        _arrow(rows, _schema(location)),
        mode="overwrite",
        predicate=predicate,
        storage_options=location.options(),
    )
    return open_table(location).version()


def merge_rows(
    location: DeltaLocation,
    key: Sequence[str],
    upserts: Sequence[Mapping[str, Any]],
    deletes: Sequence[Mapping[str, Any]] = (),
) -> tuple[int, dict[str, Any]]:
    """One MERGE: ``upserts`` update matching rows and insert the others, ``deletes`` (rows
    or key dicts) delete matching rows. Returns the new version and delta-rs's metrics."""
    schema = _schema(location)
    columns = schema.names
    source_schema = schema.append(pa.field("_merge_op", pa.string()))
    source_rows = [{**dict(r), "_merge_op": "upsert"} for r in upserts]
    for row in deletes:
        source_rows.append({**{c: row.get(c) for c in columns}, "_merge_op": "delete"})
    if not source_rows:
        raise ValueError("merge_rows needs rows to upsert or delete")
    on = " AND ".join(f"t.{c} = s.{c}" for c in key)
    table = open_table(location)
    metrics = (
        table.merge(_arrow(source_rows, source_schema), on, source_alias="s", target_alias="t")
        .when_matched_delete(predicate="s._merge_op = 'delete'")
        .when_matched_update(
            updates={c: f"s.{c}" for c in columns if c not in key},
            predicate="s._merge_op = 'upsert'",
        )
        .when_not_matched_insert(
            updates={c: f"s.{c}" for c in columns}, predicate="s._merge_op = 'upsert'"
        )
        .execute()
    )
    return open_table(location).version(), metrics


def optimize_compact(location: DeltaLocation) -> tuple[int, dict[str, Any]]:
    """OPTIMIZE (bin-packing compaction); the resulting version and delta-rs's metrics."""
    table = open_table(location)
    metrics = table.optimize.compact()
    return open_table(location).version(), metrics


def vacuum(location: DeltaLocation, retention_hours: int) -> list[str]:
    """VACUUM files removed more than ``retention_hours`` ago; returns the deleted paths.

    A retention below the table's ``delta.deletedFileRetentionDuration`` (7 days by default)
    is applied as asked (``enforce_retention_duration=False``): that is what breaks readers.
    """
    return open_table(location).vacuum(
        retention_hours=retention_hours, dry_run=False, enforce_retention_duration=False
    )


# --------------------------------------------------------------------------- generated table


@dataclass(frozen=True)
class DeltaCommit:
    """One commit made by :class:`GeneratedDeltaTable`: its version, kind and keys touched."""

    version: int
    kind: str
    keys: tuple[tuple[Any, ...], ...] = ()
    metrics: dict[str, Any] = field(default_factory=dict)

    def __repr__(self) -> str:
        shown = ", ".join(str(k[0] if len(k) == 1 else k) for k in self.keys[:6])
        more = f" and {len(self.keys) - 6} more" if len(self.keys) > 6 else ""
        keys = f" of keys {shown}{more}" if self.keys else ""
        return f"version {self.version}: {self.kind}{keys}"


class GeneratedDeltaTable:
    """A CDF-enabled Delta table of generated e-commerce rows that knows what it should hold.

    ``rows`` is the expected content (key -> row), updated by every write; ``commits`` lists
    what each version did. Same seed and same calls -> same rows and the same commits.
    """

    def __init__(
        self, location: DeltaLocation, gen: EcommerceGenerator, table: str = "customers"
    ) -> None:
        if table not in ARROW_SCHEMAS:
            raise ValueError(
                f"no Delta schema for table {table!r}; choose one of {', '.join(ARROW_SCHEMAS)}"
            )
        self.location = location
        self.gen = gen
        self.table = table
        self.key = KEY_COLUMNS[table]
        self.rows: dict[tuple[Any, ...], dict[str, Any]] = {}
        self.commits: list[DeltaCommit] = []
        create_cdf_table(location, ARROW_SCHEMAS[table])
        self.commits.append(DeltaCommit(0, "create"))

    def __repr__(self) -> str:
        return f"GeneratedDeltaTable({self.table} at {self.location.uri})"

    @property
    def version(self) -> int:
        """The latest version this object committed."""
        return self.commits[-1].version

    def _key(self, row: Mapping[str, Any]) -> tuple[Any, ...]:
        return tuple(row[c] for c in self.key)

    def _record(
        self, version: int, kind: str, keys: Sequence[tuple[Any, ...]], **metrics: Any
    ) -> DeltaCommit:
        commit = DeltaCommit(version, kind, tuple(keys), dict(metrics))
        self.commits.append(commit)
        return commit

    def _where(self, keys: Sequence[tuple[Any, ...]]) -> str:
        if len(self.key) != 1:
            raise ValueError(f"{self.table} has a composite key; use merge_rows instead")
        return in_predicate(self.key[0], [k[0] for k in keys])

    def pick_keys(self, n: int) -> list[tuple[Any, ...]]:
        """``n`` distinct existing keys, chosen by the generator's random source."""
        if n > len(self.rows):
            raise ValueError(f"asked for {n} existing keys, the table holds {len(self.rows)}")
        return self.gen.random.sample(sorted(self.rows), n)

    def reseed(self, seed: int) -> None:
        """Continue with a generator of ``seed`` whose keys follow the keys written so far."""
        self.gen = EcommerceGenerator(seed)
        written = [k[0] for c in self.commits for k in c.keys if len(k) == 1]
        self.gen.reserve_keys_above(self.table, max(written, default=None))

    def new_rows(self, n: int) -> list[dict[str, Any]]:
        """``n`` generated rows with new keys (not written)."""
        rows = [self.gen.new_row(self.table, [1]) for _ in range(n)]
        taken = [self._key(r) for r in rows if self._key(r) in self.rows]
        if taken:
            raise ValueError(f"generated keys {taken} exist already; use reseed() to switch seeds")
        return rows

    def changed(self, key: tuple[Any, ...]) -> dict[str, Any]:
        """The row at ``key`` with a few generated column changes (not written)."""
        current = self.rows[key]
        return {**current, **self.gen.changes(self.table, current)}

    def append(self, n: int) -> DeltaCommit:
        """Append ``n`` new generated rows."""
        rows = self.new_rows(n)
        version = append_rows(self.location, rows)
        self.rows.update({self._key(r): r for r in rows})
        return self._record(version, "append", [self._key(r) for r in rows])

    def update(self, keys: Sequence[tuple[Any, ...]]) -> DeltaCommit:
        """One UPDATE giving the rows at ``keys`` the same generated new values (SET ... WHERE
        key IN (...)), generated from the first key's row."""
        values = self.gen.changes(self.table, self.rows[keys[0]])
        version = update_where(self.location, self._where(keys), values=values)
        for k in keys:
            self.rows[k] = {**self.rows[k], **values}
        return self._record(version, "update", keys)

    def update_noop(self, keys: Sequence[tuple[Any, ...]], column: str) -> DeltaCommit:
        """An UPDATE that sets ``column = column``: it matches rows but changes no value."""
        version = update_where(self.location, self._where(keys), expressions={column: column})
        return self._record(version, "update (no-op)", keys)

    def delete(self, keys: Sequence[tuple[Any, ...]]) -> DeltaCommit:
        """One DELETE of the rows at ``keys``."""
        version = delete_where(self.location, self._where(keys))
        for k in keys:
            del self.rows[k]
        return self._record(version, "delete", keys)

    def overwrite(self, keys: Sequence[tuple[Any, ...]]) -> DeltaCommit:
        """Replace the rows at ``keys`` with changed rows in one overwrite-with-predicate."""
        rows = [self.changed(k) for k in keys]
        version = overwrite_where(self.location, rows, self._where(keys))
        self.rows.update({self._key(r): r for r in rows})
        return self._record(version, "overwrite", keys)

    def merge(self, updates: int, inserts: int, deletes: int = 0) -> DeltaCommit:
        """One MERGE updating ``updates`` existing rows, inserting ``inserts`` new ones and
        deleting ``deletes`` existing ones (distinct keys)."""
        picked = self.pick_keys(updates + deletes)
        changed = [self.changed(k) for k in picked[:updates]]
        removed = [self.rows[k] for k in picked[updates:]]
        added = self.new_rows(inserts)
        version, metrics = merge_rows(self.location, self.key, changed + added, removed)
        self.rows.update({self._key(r): r for r in changed + added})
        for row in removed:
            del self.rows[self._key(row)]
        keys = [self._key(r) for r in changed + added + removed]
        return self._record(version, "merge", keys, **metrics)

    def optimize(self) -> DeltaCommit:
        """OPTIMIZE (compaction): rewrites files, changes no row."""
        version, metrics = optimize_compact(self.location)
        return self._record(version, "optimize", [], **metrics)

    def vacuum(self, retention_hours: int) -> list[str]:
        """VACUUM with the given retention; records the versions it committed."""
        before = open_table(self.location).version()
        removed = vacuum(self.location, retention_hours)
        for version in range(before + 1, open_table(self.location).version() + 1):
            self._record(version, "vacuum", [])
        return removed

    def random_commit(self) -> DeltaCommit:
        """One commit of a random kind: append, update, delete or merge (seeded)."""
        size = len(self.rows)
        draw = self.gen.random.random()
        if size < 4 or draw < 0.3:
            return self.append(self.gen.random.randint(1, 5))
        if draw < 0.55:
            return self.update(self.pick_keys(self.gen.random.randint(1, 3)))
        if draw < 0.7:
            return self.delete(self.pick_keys(1))
        return self.merge(
            updates=self.gen.random.randint(1, 3),
            inserts=self.gen.random.randint(0, 3),
            deletes=self.gen.random.randint(0, 1),
        )

    def workload(self, n_commits: int) -> list[DeltaCommit]:
        """``n_commits`` random commits (see :meth:`random_commit`)."""
        return [self.random_commit() for _ in range(n_commits)]

    def read_current(self) -> dict[tuple[Any, ...], dict[str, Any]]:
        """The table's latest version read back, key -> row."""
        return read_rows(self.location, self.key)


def read_rows(
    location: DeltaLocation, key: Sequence[str], version: int | None = None
) -> dict[tuple[Any, ...], dict[str, Any]]:
    """The table (at ``version``, else latest) as key -> row."""
    return {tuple(row[c] for c in key): row for row in read_table(location, version).to_pylist()}
