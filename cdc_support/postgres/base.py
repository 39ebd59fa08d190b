"""PostgreSQL approaches' shared pieces: a checkpoint file and a background poll loop.

:class:`CaptureApproach` and :class:`Declared` live in :mod:`cdc_support.capture` (they are
the same for every source) and are re-exported here.

The scenarios of ``features/postgres/approaches.feature`` check each approach's ``declared``
claims against a real server.
"""

from __future__ import annotations

import abc
import contextlib
import json
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from cdc_support.capture import CaptureApproach, Declared
from cdc_support.events import ChangeEvent

__all__ = ["CaptureApproach", "Checkpoint", "Declared", "PolledCapture"]


class Checkpoint:
    """Where a polling reader keeps its position: a JSON file (atomic replace), or memory."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = Path(path) if path is not None else None
        self._memory: dict[str, Any] | None = None

    def load(self) -> dict[str, Any] | None:
        """The saved position, or None when nothing was saved yet."""
        if self.path is None:
            return self._memory
        if not self.path.exists():
            return None
        try:
            return json.loads(self.path.read_text())
        except ValueError as exc:
            raise ValueError(
                f"checkpoint {self.path} is unreadable ({exc}); delete it to start over "
                "(the reader then reads from the beginning)"
            ) from exc

    def save(self, position: dict[str, Any]) -> None:
        """Replace the saved position."""
        if self.path is None:
            self._memory = json.loads(json.dumps(position))
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text(json.dumps(position))
        os.replace(tmp, self.path)

    def __repr__(self) -> str:
        return f"Checkpoint({self.path or 'memory'})"


class PolledCapture(CaptureApproach):
    """An approach that queries the source every ``interval`` seconds in a background thread.

    Subclasses implement :meth:`_connect`, :meth:`_poll` (one query round, returning new
    events and saving the position) and :meth:`_disconnect`. :meth:`between_polls` holds the
    poll lock, so writes inside it fall between two polls — the "poll interval" of the rules.
    """

    def __init__(
        self, table: str, key: tuple[str, ...], *, interval: float, checkpoint: Checkpoint
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
