"""Delta Lake Change Data Feed (CDF) read with delta-rs and normalised to ``ChangeEvent``.

With the table property ``delta.enableChangeDataFeed=true``, every commit that updates or
deletes rows also writes the changed rows to ``_change_data/`` files (``cdc`` actions in the
commit log). ``DeltaTable.load_cdf`` returns them with three extra columns:

* ``_change_type``: ``insert``, ``update_preimage``, ``update_postimage`` or ``delete``;
* ``_commit_version``: the table version (the commit) that made the change;
* ``_commit_timestamp``: that commit's timestamp (the ``commitInfo.timestamp`` in ms, UTC).

A commit without ``cdc`` actions (a plain append, or a rewrite that changed no row) is read
from its ``add`` files as inserts and its ``remove`` files as deletes; actions with
``dataChange=false`` (OPTIMIZE, VACUUM) give no rows. :func:`feed_to_events` turns the rows
into the project's one change-event model (see :func:`feed_to_events` for the mapping).

delta-rs opens the feed lazily: ``load_cdf`` succeeds even when data files of the requested
versions were removed by VACUUM, and the read fails later with an Arrow error about a missing
parquet file. :func:`check_versions_readable` finds this upfront from the commit log, and
:func:`read_feed` turns a late failure into :class:`CdfVersionsUnavailable` as well. The commit
log side (``open_table``, ``commit_actions``, vacuumed versions) is
:mod:`cdc_support.deltalake.log`, re-exported here.
"""

from __future__ import annotations

import datetime as dt
import time
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
from deltalake import DeltaTable, QueryBuilder
from deltalake.exceptions import DeltaError

from cdc_support.deltalake.location import DeltaLocation
from cdc_support.deltalake.log import (
    CdfVersionsUnavailable,
    check_versions_readable,
    commit_actions,
    commit_timestamps,
    open_table,
    unreadable_versions,
    versions_unavailable,
)
from cdc_support.events import ChangeEvent, Op

__all__ = [
    "CDF_PROPERTY",
    "CHANGE_TYPES",
    "META_COLUMNS",
    "CdfNotEnabled",
    "CdfVersionsUnavailable",
    "FeedRange",
    "change_type_counts",
    "check_versions_readable",
    "commit_actions",
    "commit_timestamps",
    "feed_rows",
    "feed_to_events",
    "open_table",
    "read_changes",
    "read_feed",
    "read_table",
    "unreadable_versions",
]

CDF_PROPERTY = "delta.enableChangeDataFeed"
CHANGE_TYPES: tuple[str, ...] = ("insert", "update_preimage", "update_postimage", "delete")
META_COLUMNS: tuple[str, ...] = ("_change_type", "_commit_version", "_commit_timestamp")

Key = tuple[Any, ...]


class CdfNotEnabled(RuntimeError):
    """The table does not record a change data feed; the message says how to enable it."""


# --------------------------------------------------------------------------- table access


def _require_cdf(table: DeltaTable, location: DeltaLocation) -> None:
    config = table.metadata().configuration
    if str(config.get(CDF_PROPERTY, "false")).lower() != "true":
        raise CdfNotEnabled(
            f"the Delta table {location.uri} has no change data feed ({CDF_PROPERTY} is "
            f"{config.get(CDF_PROPERTY, 'not set')!r}). fix: create it with "
            f"configuration={{'{CDF_PROPERTY}': 'true'}}, or enable it with "
            f"DeltaTable.alter.set_table_properties({{'{CDF_PROPERTY}': 'true'}}) and read "
            "the feed from the version after that."
        )


def read_table(location: DeltaLocation, version: int | None = None) -> pa.Table:
    """The table's rows (at ``version``, else latest) through delta-rs's own query engine.

    Not ``DeltaTable.to_pyarrow_table()``: its pyarrow dataset scan over delta-rs's Python
    filesystem can abort the interpreter at exit ("terminate called without an active
    exception", seen with deltalake 1.6.6 / pyarrow 26).
    """
    table = open_table(location, version)
    result = QueryBuilder().register("t", table).execute("SELECT * FROM t")
    return _plain_types(pa.table(result))


# --------------------------------------------------------------------------- reading


@dataclass(frozen=True)
class FeedRange:
    """What to read: a version range, or a commit-timestamp range (both ends inclusive).

    Timestamps are aware datetimes or epoch milliseconds; a range may mix versions and
    timestamps only as delta-rs allows (a starting version with an ending timestamp).
    """

    starting_version: int = 0
    ending_version: int | None = None
    starting_timestamp: dt.datetime | int | None = None
    ending_timestamp: dt.datetime | int | None = None

    def __post_init__(self) -> None:
        if self.starting_version < 0:
            raise ValueError(f"starting_version must be >= 0, got {self.starting_version}")
        if self.ending_version is not None and self.ending_version < self.starting_version:
            raise ValueError(
                f"ending_version {self.ending_version} is before starting_version "
                f"{self.starting_version}"
            )
        for name in ("starting_timestamp", "ending_timestamp"):
            value = getattr(self, name)
            if isinstance(value, dt.datetime) and value.tzinfo is None:
                raise ValueError(f"{name} must be timezone-aware (UTC), got naive {value}")

    def load_cdf_arguments(self) -> dict[str, Any]:
        """Keyword arguments for ``DeltaTable.load_cdf``."""
        args: dict[str, Any] = {"starting_version": self.starting_version}
        if self.ending_version is not None:
            args["ending_version"] = self.ending_version
        if self.starting_timestamp is not None:
            args["starting_timestamp"] = _iso_timestamp(self.starting_timestamp)
        if self.ending_timestamp is not None:
            args["ending_timestamp"] = _iso_timestamp(self.ending_timestamp)
        return args

    def __repr__(self) -> str:
        if self.starting_timestamp is not None or self.ending_timestamp is not None:
            args = self.load_cdf_arguments()
            return (
                f"commits from {args.get('starting_timestamp', 'the start')} "
                f"to {args.get('ending_timestamp', 'the end')}"
            )
        end = "latest" if self.ending_version is None else self.ending_version
        return f"versions {self.starting_version}..{end}"


def _iso_timestamp(value: dt.datetime | int) -> str:
    if isinstance(value, int):
        value = dt.datetime.fromtimestamp(value / 1000, tz=dt.UTC)
    return value.astimezone(dt.UTC).isoformat(timespec="milliseconds")


def _plain_types(table: pa.Table) -> pa.Table:
    """Cast view types (string_view, binary_view) to plain ones: sortable and widely readable."""
    fields = []
    for f in table.schema:
        if pa.types.is_string_view(f.type):
            fields.append(f.with_type(pa.string()))
        elif pa.types.is_binary_view(f.type):
            fields.append(f.with_type(pa.binary()))
        else:
            fields.append(f)
    target = pa.schema(fields, metadata=table.schema.metadata)
    return table if target == table.schema else table.cast(target)


def _epoch_us(value: dt.datetime | int) -> int:
    if isinstance(value, int):
        return value * 1000
    return (value - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)) // dt.timedelta(microseconds=1)


def _version_span(
    location: DeltaLocation, feed_range: FeedRange, latest: int
) -> tuple[int, int] | None:
    """The inclusive range of existing versions ``feed_range`` covers (None when none).

    A timestamp range is resolved with the commit timestamps of the history, as load_cdf does.
    """
    first = feed_range.starting_version
    last = latest if feed_range.ending_version is None else min(feed_range.ending_version, latest)
    start, end = feed_range.starting_timestamp, feed_range.ending_timestamp
    if start is not None or end is not None:
        low = -1 if start is None else _epoch_us(start)
        high = None if end is None else _epoch_us(end)
        versions = [
            v
            for v, ms in commit_timestamps(location).items()
            if first <= v <= last and ms * 1000 >= low and (high is None or ms * 1000 <= high)
        ]
        if not versions:
            return None
        first, last = min(versions), max(versions)
    return (first, last) if first <= last else None


def read_feed(
    location: DeltaLocation,
    feed_range: FeedRange | None = None,
    *,
    columns: Sequence[str] | None = None,
    predicate: str | None = None,
    check: bool = True,
) -> pa.Table:
    """Read the change data feed into a pyarrow Table, ordered by commit version.

    With ``check`` the commit log of the versions in the range (a timestamp range is resolved
    to versions with the history) is checked first, so that vacuumed versions raise
    :class:`CdfVersionsUnavailable` before anything is read; a missing-file error while
    reading is turned into the same exception either way.
    """
    feed_range = feed_range or FeedRange()
    table = open_table(location)
    _require_cdf(table, location)
    span = _version_span(location, feed_range, table.version())
    if check and span is not None:
        check_versions_readable(location, *span)
    try:
        reader = table.load_cdf(
            **feed_range.load_cdf_arguments(),
            columns=list(columns) if columns is not None else None,
            predicate=predicate,
        )
        result = pa.table(reader)
    except (pa.ArrowException, DeltaError, OSError) as exc:
        # Lazy failure (or no upfront check): say which versions are gone, if that is the cause.
        missing = unreadable_versions(location, *span) if span is not None else {}
        if span is None or not missing:
            raise
        raise versions_unavailable(location, span, missing, detail=str(exc)) from exc
    result = _plain_types(result)
    if result.num_rows:
        result = result.sort_by([("_commit_version", "ascending")])
    return result


def feed_rows(table: pa.Table) -> list[dict[str, Any]]:
    """Feed rows as dicts, ``_commit_timestamp`` as an aware UTC datetime."""
    rows = table.to_pylist()
    for row in rows:
        ts = row.get("_commit_timestamp")
        if isinstance(ts, dt.datetime) and ts.tzinfo is None:
            row["_commit_timestamp"] = ts.replace(tzinfo=dt.UTC)
    return rows


def change_type_counts(table: pa.Table) -> dict[str, int]:
    """How many feed rows of each ``_change_type``."""
    return dict(Counter(table.column("_change_type").to_pylist())) if table.num_rows else {}


# --------------------------------------------------------------------------- normalisation

_RANK = {"d": 0, "u": 1, "c": 2}


def _sortable(key: Key) -> tuple[Any, ...]:
    return tuple((v is None, type(v).__name__, v) for v in key)


@dataclass
class _VersionChanges:
    deletes: list[dict[str, Any]] = field(default_factory=list)
    inserts: list[dict[str, Any]] = field(default_factory=list)
    pre: dict[Key, list[dict[str, Any]]] = field(default_factory=lambda: defaultdict(list))
    post: list[dict[str, Any]] = field(default_factory=list)


def feed_to_events(
    table: pa.Table,
    key: Sequence[str],
    *,
    table_uri: str = "",
    observed_ts: float | None = None,
) -> list[ChangeEvent]:
    """Normalise feed rows to :class:`ChangeEvent`, in commit order.

    Mapping: ``insert`` -> ``c`` (after only); ``delete`` -> ``d`` (before only); an
    ``update_preimage`` and the ``update_postimage`` with the same key in the same commit ->
    one ``u`` with before and after. An update that changed the key leaves a preimage and a
    postimage with different keys: they become a ``d`` and a ``c`` (as Debezium does for a
    primary-key change). ``source`` holds ``version`` (the commit version, the position),
    ``change_type`` and ``table``; ``commit_ts`` is the commit timestamp in epoch seconds.

    Within one commit, deletes come first, then updates, then inserts (each group by key), so
    a commit that replaces a row (delete + insert of the same key, e.g. an overwrite with a
    predicate) replays to the new row.
    """
    key = tuple(key)
    if not key:
        raise ValueError("feed_to_events needs at least one key column")
    missing = [c for c in (*key, *META_COLUMNS) if c not in table.column_names]
    if missing:
        raise ValueError(
            f"feed rows have no column(s) {missing}; columns are {table.column_names} "
            "(key columns must be columns of the table; read the feed with read_feed)"
        )
    observed = time.time() if observed_ts is None else observed_ts
    data_columns = [c for c in table.column_names if c not in META_COLUMNS]
    millis = table.column("_commit_timestamp").cast(pa.int64()).to_pylist()
    by_version: dict[int, _VersionChanges] = defaultdict(_VersionChanges)
    commit_ms: dict[int, int] = {}
    for row, ms in zip(
        table.select([*data_columns, *META_COLUMNS]).to_pylist(), millis, strict=True
    ):
        version = int(row["_commit_version"])
        commit_ms[version] = ms
        change_type = row["_change_type"]
        image = {c: row[c] for c in data_columns}
        changes = by_version[version]
        if change_type == "insert":
            changes.inserts.append(image)
        elif change_type == "delete":
            changes.deletes.append(image)
        elif change_type == "update_preimage":
            changes.pre[tuple(image[c] for c in key)].append(image)
        elif change_type == "update_postimage":
            changes.post.append(image)
        else:
            raise ValueError(
                f"unknown _change_type {change_type!r} at version {version}; "
                f"expected one of {CHANGE_TYPES}"
            )

    events: list[ChangeEvent] = []
    for version in sorted(by_version):
        changes = by_version[version]
        made = _EventMaker(key, table_uri, version, commit_ms[version] / 1000, observed)
        batch = [made("d", image, None, "delete") for image in changes.deletes]
        for image in changes.post:
            pre = changes.pre.get(tuple(image[c] for c in key))
            if pre:
                batch.append(made("u", pre.pop(0), image, "update"))
            else:
                batch.append(made("c", None, image, "update_postimage"))
        for leftovers in changes.pre.values():
            batch.extend(made("d", image, None, "update_preimage") for image in leftovers)
        batch.extend(made("c", None, image, "insert") for image in changes.inserts)
        batch.sort(key=lambda e: (_RANK[e.op], _sortable(e.key)))
        events.extend(batch)
    return events


@dataclass(frozen=True)
class _EventMaker:
    """Builds the events of one commit."""

    key: tuple[str, ...]
    table_uri: str
    version: int
    commit_ts: float
    observed_ts: float

    def __call__(
        self,
        op: Op,
        before: dict[str, Any] | None,
        after: dict[str, Any] | None,
        change_type: str,
    ) -> ChangeEvent:
        row = after if after is not None else before or {}
        return ChangeEvent(
            op=op,
            key=tuple(row[c] for c in self.key),
            before=before,
            after=after,
            source={"table": self.table_uri, "version": self.version, "change_type": change_type},
            commit_ts=self.commit_ts,
            observed_ts=self.observed_ts,
        )


def read_changes(
    location: DeltaLocation,
    key: Sequence[str],
    feed_range: FeedRange | None = None,
    *,
    check: bool = True,
) -> list[ChangeEvent]:
    """Read the feed of ``feed_range`` and normalise it (see :func:`feed_to_events`)."""
    table = read_feed(location, feed_range, check=check)
    return feed_to_events(table, key, table_uri=location.uri)
