"""What a Change Data Feed check looks at: one version's feed, its log entry, images, timestamps.

* :func:`version_feed` / :func:`version_events` / :func:`sorted_change_rows` — the feed of one
  commit, raw, normalised, or as rows sorted for a report;
* :func:`latest_version` / :func:`table_properties` / :func:`data_files` / :func:`table_history`
  — what the table itself says now;
* :func:`commit_operation` / :func:`action_counts` / :func:`data_change_flags` — read a
  ``_delta_log`` entry (see :func:`~cdc_support.deltalake.feed.commit_actions`);
* :func:`image_problems` — each event's before/after image against the table at version-1/version;
* :class:`TimestampRead` — a feed read by commit-timestamp range, with the history it came from;
* :func:`delta_rs_read_error` — what delta-rs alone says when vacuumed versions are read.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from cdc_support.checks.integrity import canonical_row
from cdc_support.deltalake.feed import FeedRange, feed_rows, feed_to_events, read_feed
from cdc_support.deltalake.location import DeltaLocation
from cdc_support.deltalake.log import commit_timestamps, open_table
from cdc_support.events import ChangeEvent

__all__ = [
    "FILE_ACTIONS",
    "TimestampRead",
    "action_counts",
    "commit_operation",
    "data_change_flags",
    "data_files",
    "delta_rs_read_error",
    "feed_versions",
    "image_problems",
    "latest_version",
    "row_multiset",
    "sorted_change_rows",
    "table_history",
    "table_properties",
    "version_events",
    "version_feed",
]

Key = tuple[Any, ...]
Rows = Mapping[Key, Mapping[str, Any]]
FILE_ACTIONS: tuple[str, ...] = ("add", "remove", "cdc")
_TYPE_ORDER = {"delete": 0, "update_preimage": 1, "update_postimage": 2, "insert": 3}


# --------------------------------------------------------------------------- the table now


def latest_version(location: DeltaLocation) -> int:
    """The table's latest version, read from storage."""
    return open_table(location).version()


def table_properties(location: DeltaLocation) -> dict[str, str]:
    """The table's configuration (e.g. delta.enableChangeDataFeed)."""
    return dict(open_table(location).metadata().configuration)


def data_files(location: DeltaLocation) -> list[str]:
    """The URIs of the data files in the table's latest version."""
    return list(open_table(location).file_uris())


def table_history(location: DeltaLocation) -> list[dict[str, Any]]:
    """DeltaTable.history(): one commitInfo per version, newest first."""
    return open_table(location).history()


# --------------------------------------------------------------------------- one version


def version_feed(location: DeltaLocation, version: int) -> pa.Table:
    """The raw feed rows of one commit."""
    return read_feed(location, FeedRange(version, version))


def version_events(location: DeltaLocation, key: Sequence[str], version: int) -> list[ChangeEvent]:
    """The feed of one commit, normalised to change events."""
    return feed_to_events(version_feed(location, version), key)


def sorted_change_rows(
    location: DeltaLocation, key: Sequence[str], version: int
) -> list[dict[str, Any]]:
    """The change rows of one commit by key, then delete, pre-image, post-image, insert."""
    return sorted(
        feed_rows(version_feed(location, version)),
        key=lambda r: (*(r[c] for c in key), _TYPE_ORDER.get(r["_change_type"], 9)),
    )


def feed_versions(table: pa.Table) -> set[int]:
    """The commit versions that have rows in a feed read."""
    return {int(v) for v in table.column("_commit_version").to_pylist()}


def row_multiset(table: pa.Table) -> Counter[str]:
    """Feed rows as a multiset of canonical rows (order does not count, repeats do)."""
    return Counter(canonical_row(row) for row in feed_rows(table))


# --------------------------------------------------------------------------- log entries


def commit_operation(actions: Sequence[Mapping[str, Any]]) -> str:
    """The operation a commit log entry records (WRITE, UPDATE, MERGE, OPTIMIZE, ...)."""
    return next((a["commitInfo"]["operation"] for a in actions if "commitInfo" in a), "?")


def action_counts(actions: Sequence[Mapping[str, Any]]) -> dict[str, int]:
    """How many add, remove and cdc actions a commit log entry holds."""
    counts: Counter[str] = Counter()
    for action in actions:
        counts.update(k for k in action if k in FILE_ACTIONS)
    return {kind: counts.get(kind, 0) for kind in FILE_ACTIONS}


def data_change_flags(actions: Sequence[Mapping[str, Any]]) -> set[bool]:
    """The distinct dataChange flags of the add and remove actions."""
    return {a[k]["dataChange"] for a in actions for k in ("add", "remove") if k in a}


# --------------------------------------------------------------------------- images


def image_problems(events: Sequence[ChangeEvent], previous: Rows, current: Rows) -> list[str]:
    """Where an event's before-image is not the previous row or its after-image not the new one.

    ``previous`` and ``current`` are the table read at version-1 and at version (time travel).
    A delete whose key is still in the new version is fine only when the same commit
    re-inserts it.
    """
    problems: list[str] = []
    reinserted = {e.key for e in events if e.op == "c"}
    for event in events:
        if event.before is not None:
            if event.key not in previous:
                problems.append(f"{event.op} for {event.key}: not in the previous version")
            elif event.before != previous[event.key]:
                problems.append(f"before-image of {event.key} differs")
        elif event.op != "c":
            problems.append(f"{event.op} for {event.key} has no before-image")
        if event.after is not None:
            if event.key not in current:
                problems.append(f"{event.op} for {event.key}: not in the new version")
            elif event.after != current[event.key]:
                problems.append(f"after-image of {event.key} differs")
        elif event.op != "d":
            problems.append(f"{event.op} for {event.key} has no after-image")
        elif event.key in current and event.key not in reinserted:
            problems.append(
                f"deleted key {event.key} is still in the new version without a re-insert"
            )
    return problems


# --------------------------------------------------------------------------- timestamps


@dataclass
class TimestampRead:
    """A feed read by commit-timestamp range, with the history it was derived from."""

    start_ms: int
    end_ms: int
    history: dict[int, int]
    rows: pa.Table

    def __repr__(self) -> str:
        return f"feed from {self.start_ms} to {self.end_ms} (epoch ms)"

    @classmethod
    def between_versions(cls, location: DeltaLocation, first: int, last: int) -> TimestampRead:
        """Read from the commit timestamp of ``first`` to that of ``last``, per history()."""
        history = commit_timestamps(location)
        start, end = history[first], history[last]
        rows = read_feed(location, FeedRange(starting_timestamp=start, ending_timestamp=end))
        return cls(start, end, history, rows)

    @property
    def versions(self) -> set[int]:
        """The versions that came back."""
        return feed_versions(self.rows)

    def in_range(self) -> set[int]:
        """The versions whose commit timestamp lies in the range (both ends inclusive)."""
        return {v for v, ts in self.history.items() if self.start_ms <= ts <= self.end_ms}

    def boundary_versions(self) -> range:
        """From the first version committed at the start to the last committed at the end."""
        first = min(v for v, ts in self.history.items() if ts == self.start_ms)
        last = max(v for v, ts in self.history.items() if ts == self.end_ms)
        return range(first, last + 1)

    def matches_version_read(self, location: DeltaLocation) -> bool:
        """True when reading the same versions by version range gives the same rows."""
        versions = self.versions
        by_version = read_feed(location, FeedRange(min(versions), max(versions)))
        return row_multiset(by_version) == row_multiset(self.rows)


# --------------------------------------------------------------------------- delta-rs alone


def delta_rs_read_error(location: DeltaLocation, starting_version: int) -> str | None:
    """Open the feed with delta-rs alone (lazily), then read it: the Arrow error, or None.

    Opening never fails here; an error when opening propagates as is.
    """
    reader = open_table(location).load_cdf(starting_version=starting_version)
    try:
        pa.table(reader)
    except pa.ArrowException as exc:
        return str(exc)
    return None
