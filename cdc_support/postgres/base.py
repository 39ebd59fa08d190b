"""The one interface every PostgreSQL CDC approach offers, and a background poll loop.

A scenario (or a script) starts an approach on a table, writes, reads what it delivered,
stops and restarts it, and closes it — the same calls whatever the approach::

    approach.start()                 # first start installs what it needs on the source
    ...writes...
    events = approach.wait_events(lambda evs: len(evs) >= 3, expected="3 events", timeout=30)
    approach.stop()                  # stop consuming; the position is kept
    approach.start()                 # resume from the saved position
    approach.close()                 # stop and remove everything it installed (idempotent)

``declared`` says what the approach is documented to do; the scenarios of
``features/postgres/approaches.feature`` check each claim against a real server.
"""

from __future__ import annotations

import abc
import contextlib
import json
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, ClassVar

from cdc_support.events import ChangeEvent
from cdc_support.waiting import wait_until

__all__ = ["CaptureApproach", "Checkpoint", "Declared", "PolledCapture"]


@dataclass(frozen=True)
class Declared:
    """What an approach is documented to do (checked by the scenarios, shown in the report)."""

    hard_deletes: bool
    intermediate_updates: bool
    before_image: bool
    restart_without_loss: bool
    schema_change: bool
    how: str

    def as_dict(self) -> dict[str, Any]:
        """Plain dict (for JSON attachments)."""
        return asdict(self)


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


class CaptureApproach(abc.ABC):
    """One way of capturing a PostgreSQL table's changes as :class:`ChangeEvent`\\ s."""

    name: ClassVar[str]
    declared: ClassVar[Declared]

    def __init__(self, table: str, key: tuple[str, ...]) -> None:
        self.table = table
        self.key = tuple(key)

    @abc.abstractmethod
    def start(self) -> None:
        """Start (the first time: install what the approach needs) or resume consuming."""

    @abc.abstractmethod
    def stop(self) -> None:
        """Stop consuming; the position is kept so ``start()`` resumes after it."""

    @abc.abstractmethod
    def delivered(self) -> list[ChangeEvent]:
        """Every change event delivered so far (across restarts), in delivery order."""

    @abc.abstractmethod
    def close(self) -> None:
        """Stop and remove from the source everything the approach installed (idempotent)."""

    def between_polls(self) -> contextlib.AbstractContextManager[None]:
        """Hold off the next poll while the block runs (a no-op for log-based approaches)."""
        return contextlib.nullcontext()

    def describe(self) -> dict[str, Any]:
        """What the report shows about this instance."""
        return {"approach": self.name, "table": self.table, "key": list(self.key)}

    def wait_events(
        self,
        done: Callable[[list[ChangeEvent]], bool],
        *,
        expected: str,
        timeout: float,
    ) -> list[ChangeEvent]:
        """Poll :meth:`delivered` until ``done(events)``; WaitTimeout naming expected vs seen."""
        return wait_until(
            self.delivered,
            done=done,
            timeout=timeout,
            interval=0.05,
            expected=f"{expected} from {self.name}",
            describe=_describe_events,
        )

    def __repr__(self) -> str:
        return self.name


def _describe_events(events: list[ChangeEvent]) -> str:
    tail = ", ".join(f"{e.op}{list(e.key)}" for e in events[-8:])
    return f"{len(events)} events (last: {tail or 'none'})"


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
