"""PostgreSQL approaches' shared pieces: a background poll loop with a checkpoint.

:class:`CaptureApproach` and :class:`Declared` live in :mod:`cdc_support.capture` (they are
the same for every source) and are re-exported here; the position is kept in a
:class:`~cdc_support.checkpoint.JsonCheckpoint` bound to the approach, database and table.

The scenarios of ``features/postgres/approaches.feature`` check each approach's ``declared``
claims against a real server.
"""

from __future__ import annotations

import abc
import contextlib
import os
import threading
import time
from collections.abc import Iterator
from typing import Any

import psycopg

from cdc_support.capture import CaptureApproach, Declared
from cdc_support.checkpoint import JsonCheckpoint
from cdc_support.events import ChangeEvent
from cdc_support.postgres.source import split_table

__all__ = ["CaptureApproach", "Declared", "PolledCapture", "checkpoint_for"]


def checkpoint_for(
    approach: str, dsn: str, table: str, checkpoint: JsonCheckpoint | str | os.PathLike[str] | None
) -> JsonCheckpoint:
    """``checkpoint`` (a path, None for memory, or a ready one) bound to ``approach`` reading
    ``table`` of the DSN's server and database."""
    if isinstance(checkpoint, JsonCheckpoint):
        return checkpoint
    info = psycopg.conninfo.conninfo_to_dict(dsn)
    where = f"{info.get('host', '')}:{info.get('port', 5432)}/{info.get('dbname', '')}"
    return JsonCheckpoint(
        checkpoint,
        f"{approach} of {'.'.join(split_table(table))} on postgresql://{where}",
        start_over="the reader then reads the table from the beginning",
    )


class PolledCapture(CaptureApproach):
    """An approach that queries the source every ``interval`` seconds in a background thread.

    Subclasses implement :meth:`_connect`, :meth:`_poll` (one query round, returning new
    events and saving the position) and :meth:`_disconnect`. :meth:`between_polls` holds the
    poll lock, so writes inside it fall between two polls — the "poll interval" of the rules.
    """

    def __init__(
        self, table: str, key: tuple[str, ...], *, interval: float, checkpoint: JsonCheckpoint
    ) -> None:
        super().__init__(table, key)
        if interval <= 0:
            raise ValueError(f"poll interval must be > 0 seconds, got {interval}")
        self.interval = interval
        self.checkpoint = checkpoint
        self.polls = 0
        self.error: BaseException | None = None
        self._events: list[ChangeEvent] = []
        self._events_lock = threading.Lock()
        self._poll_lock = threading.Lock()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    @abc.abstractmethod
    def _connect(self) -> None:
        """Open the reader's connection(s) and load the position from the checkpoint."""

    @abc.abstractmethod
    def _poll(self) -> list[ChangeEvent]:
        """One poll: read what is new since the position, save the new position."""

    @abc.abstractmethod
    def _disconnect(self) -> None:
        """Close the reader's connection(s)."""

    @property
    def running(self) -> bool:
        """Whether the poll thread is alive."""
        return self._thread is not None and self._thread.is_alive()

    def _start_polling(self) -> None:
        if self.running:
            raise RuntimeError(f"{self.name} is already running")
        self._stopping.clear()
        self.error = None
        self._connect()
        self._thread = threading.Thread(target=self._run, name=f"{self.name}-poller", daemon=True)
        self._thread.start()

    def _stop_polling(self, timeout: float = 10.0) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                raise RuntimeError(f"{self.name} poller did not stop within {timeout}s")
            self._thread = None
            self._disconnect()

    def _run(self) -> None:
        try:
            while not self._stopping.is_set():
                with self._poll_lock:
                    if self._stopping.is_set():
                        break
                    batch = self._poll()
                    self.polls += 1
                if batch:
                    with self._events_lock:
                        self._events.extend(batch)
                self._stopping.wait(self.interval)
        except BaseException as exc:
            self.error = exc

    @contextlib.contextmanager
    def between_polls(self) -> Iterator[None]:
        """No poll runs while the block does (writes inside fall between two polls)."""
        with self._poll_lock:
            yield

    def delivered(self) -> list[ChangeEvent]:
        if self.error is not None:
            raise RuntimeError(f"{self.name} reader failed: {self.error!r}") from self.error
        with self._events_lock:
            return list(self._events)

    def describe(self) -> dict[str, Any]:
        return {
            **super().describe(),
            "poll interval (s)": self.interval,
            "checkpoint": str(self.checkpoint),
            "position": self.checkpoint.load(),
        }


def now() -> float:
    """Epoch seconds (the time a reader hands events over)."""
    return time.time()
