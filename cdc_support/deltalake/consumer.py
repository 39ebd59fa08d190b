"""An incremental Change Data Feed consumer that remembers the last version it processed.

The position is a table version, kept in a checkpoint file bound to the table's URI
(:mod:`cdc_support.checkpoint`: replaced atomically and durably). A consumer reads the versions
after its checkpoint, hands the events to the caller, and only then moves the checkpoint: a
consumer stopped at any point and started again (a new process, a new object) resumes with the
first version it has not committed — nothing lost; nothing repeated unless it stopped between
handling a batch and committing it (at-least-once for that one batch).

If VACUUM removed the files of versions it still needs, :meth:`CdfConsumer.poll` raises
:class:`~cdc_support.deltalake.feed.CdfVersionsUnavailable` before reading anything, and the
checkpoint stays where it was.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa

from cdc_support.checkpoint import CheckpointError, JsonCheckpoint
from cdc_support.deltalake.feed import FeedRange, feed_to_events, read_feed
from cdc_support.deltalake.location import DeltaLocation
from cdc_support.deltalake.log import open_table
from cdc_support.events import ChangeEvent

__all__ = ["CdfBatch", "CdfCheckpoint", "CdfConsumer", "CheckpointError"]


START_OVER = "the consumer then starts again at its start_version"


@dataclass(frozen=True)
class CdfCheckpoint:
    """The last processed version of a table, in a :class:`~cdc_support.checkpoint.JsonCheckpoint`
    bound to the table's URI (position ``{"last_version": n}``)."""

    path: Path

    def __repr__(self) -> str:
        return f"CdfCheckpoint({self.path})"

    def _file(self, table_uri: str) -> JsonCheckpoint:
        return JsonCheckpoint(self.path, table_uri, start_over=START_OVER)

    def load(self, table_uri: str) -> int | None:
        """The last processed version of ``table_uri``, or None when there is no checkpoint."""
        position = self._file(table_uri).load()
        if position is None:
            return None
        version = position.get("last_version")
        if not isinstance(version, int) or isinstance(version, bool) or version < 0:
            raise CheckpointError(
                f"checkpoint file {self.path} is not a valid CDF checkpoint (last_version must "
                f"be an integer >= 0, got {version!r}): delete it to start over ({START_OVER})"
            )
        return version

    def save(self, table_uri: str, version: int) -> None:
        """Atomically and durably replace the checkpoint with ``version``."""
        self._file(table_uri).save({"last_version": version})


@dataclass(frozen=True)
class CdfBatch:
    """The changes of versions ``first_version..last_version`` (empty when last < first)."""

    first_version: int
    last_version: int
    events: list[ChangeEvent]
    rows: pa.Table

    @property
    def empty(self) -> bool:
        """True when there was no new version to read."""
        return self.last_version < self.first_version

    def __repr__(self) -> str:
        if self.empty:
            return f"CdfBatch(no new version after {self.first_version - 1})"
        return (
            f"CdfBatch(versions {self.first_version}..{self.last_version}, "
            f"{len(self.events)} events)"
        )


class CdfConsumer:
    """Reads a table's change data feed incrementally from a checkpoint.

    ``start_version`` is where a consumer without a checkpoint begins (0 = the table's first
    commit). ``key`` names the columns that identify a row (Delta has no primary key).
    Run one consumer per checkpoint file at a time: :meth:`commit` refuses a batch that does
    not follow the checkpoint, but it is not a lock between processes.
    """

    def __init__(
        self,
        location: DeltaLocation,
        key: Sequence[str],
        checkpoint: CdfCheckpoint | str | os.PathLike[str],
        *,
        start_version: int = 0,
        check: bool = True,
    ) -> None:
        if start_version < 0:
            raise ValueError(f"start_version must be >= 0, got {start_version}")
        self.location = location
        self.key = tuple(key)
        self.checkpoint = (
            checkpoint if isinstance(checkpoint, CdfCheckpoint) else CdfCheckpoint(Path(checkpoint))
        )
        self.start_version = start_version
        self.check = check
        columns = pa.schema(open_table(location).schema().to_arrow()).names
        unknown = [c for c in self.key if c not in columns]
        if not self.key or unknown:
            raise ValueError(
                f"key columns {list(self.key)} are not all columns of {location.uri} "
                f"(unknown: {unknown}); the table's columns are {columns}"
            )
        self.checkpoint.load(location.uri)  # fail now on a bad checkpoint, not at first poll

    def __repr__(self) -> str:
        return f"CdfConsumer({self.location.uri}, {self.checkpoint})"

    @property
    def last_version(self) -> int | None:
        """The last version processed (from the checkpoint file), None before the first."""
        return self.checkpoint.load(self.location.uri)

    @property
    def next_version(self) -> int:
        """The first version not processed yet."""
        last = self.last_version
        return self.start_version if last is None else last + 1

    def poll(self, max_versions: int | None = None) -> CdfBatch:
        """Read the next versions (at most ``max_versions``) without moving the checkpoint."""
        if max_versions is not None and max_versions < 1:
            raise ValueError(f"max_versions must be >= 1, got {max_versions}")
        done = self.last_version
        first = self.start_version if done is None else done + 1
        latest = open_table(self.location).version()
        if done is not None and done > latest:
            raise CheckpointError(
                f"checkpoint file {self.checkpoint.path} says version {done} of "
                f"{self.location.uri} was processed, but the table's latest version is {latest} "
                "(was the table re-created or restored?). fix: delete the checkpoint file to "
                "start again from the consumer's start_version, or point the consumer at the "
                "table it was made for."
            )
        last = latest if max_versions is None else min(latest, first + max_versions - 1)
        if last < first:
            return CdfBatch(first, first - 1, [], pa.table({}))
        rows = read_feed(self.location, FeedRange(first, last), check=self.check)
        events = feed_to_events(rows, self.key, table_uri=self.location.uri)
        return CdfBatch(first, last, events, rows)

    def commit(self, batch: CdfBatch) -> None:
        """Record ``batch`` as processed; it must be the batch after the checkpoint.

        The checkpoint then holds ``batch.last_version``, so the next poll starts right after
        it. Committing a batch twice, or out of order, raises :class:`CheckpointError`.
        """
        if batch.empty:
            return
        if batch.first_version != self.next_version:
            raise CheckpointError(
                f"cannot commit versions {batch.first_version}..{batch.last_version}: the "
                f"checkpoint expects version {self.next_version} next (was the batch committed "
                "already, or polled by another consumer?)"
            )
        self.checkpoint.save(self.location.uri, batch.last_version)

    def run_once(
        self, handle: Callable[[CdfBatch], Any], *, max_versions: int | None = None
    ) -> CdfBatch:
        """Poll, hand the batch to ``handle``, then commit it (not when ``handle`` raises)."""
        batch = self.poll(max_versions)
        if not batch.empty:
            handle(batch)
            self.commit(batch)
        return batch

    def run_to_end(
        self, handle: Callable[[CdfBatch], Any], *, max_versions: int | None = None
    ) -> list[CdfBatch]:
        """Repeat :meth:`run_once` until no new version is left; the non-empty batches."""
        batches = []
        while not (batch := self.run_once(handle, max_versions=max_versions)).empty:
            batches.append(batch)
        return batches
