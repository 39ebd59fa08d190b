"""An append-only file of change events, one JSON line each, that a killed writer leaves
readable: :class:`EventFile` appends a transaction's events and flushes (and fsyncs when
asked) before its writer confirms them to the source; :func:`read_events` reads them back,
ignoring a torn last line (the writer was killed mid-write; the next run cuts it off before
appending, and the source sends that unconfirmed transaction again)."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable
from pathlib import Path
from typing import BinaryIO

from cdc_support.events import ChangeEvent, MalformedEvent

__all__ = ["EventFile", "read_events"]

log = logging.getLogger("cdc_support.reader")


class EventFile:
    """``path`` opened for appending whole transactions as JSON lines.

    :meth:`append` writes and flushes a transaction (to the operating system: a killed reader
    loses none of it) and, with ``fsync_each``, fsyncs it (to the disk: a crashed machine
    loses none of it either); :meth:`sync` fsyncs what was appended since the last fsync.
    Opening cuts a torn last line (no newline: a writer killed mid-write) and says how many
    bytes it cut in :attr:`cut_bytes`.
    """

    def __init__(self, path: str | os.PathLike[str], *, fsync_each: bool = True) -> None:
        self.path = Path(path)
        self.fsync_each = fsync_each
        self.cut_bytes = 0
        self.events = 0
        self.transactions = 0
        self.error: OSError | None = None
        """Why the last write failed (the reader then stops: exit 1)."""
        self._fh: BinaryIO | None = None
        self._unsynced = False

    def open(self) -> EventFile:
        """Create the folder, cut a torn last line, open for appending."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fh = open(self.path, "a+b")  # noqa: SIM115 - closed in close()
        size = fh.seek(0, os.SEEK_END)
        keep = _last_newline_end(fh, size)
        if keep < size:
            fh.truncate(keep)
            os.fsync(fh.fileno())
            self.cut_bytes = size - keep
        self._fh = fh
        return self

    def append(self, events: Iterable[ChangeEvent]) -> None:
        """Write one transaction's events and flush them (and fsync with ``fsync_each``)."""
        if self._fh is None:
            raise RuntimeError(f"{self.path} is not open")
        lines = [json.dumps(e.to_json_dict(), ensure_ascii=False) + "\n" for e in events]
        try:
            self._fh.write("".join(lines).encode("utf-8"))
            self._fh.flush()
            self._unsynced = True
            if self.fsync_each:
                self.sync()
        except OSError as exc:
            self.error = exc
            raise
        self.events += len(lines)
        self.transactions += 1

    @property
    def synced(self) -> bool:
        """Whether everything appended is fsync'd."""
        return not self._unsynced

    def sync(self) -> None:
        """fsync what was appended since the last fsync (nothing when nothing was)."""
        if self._fh is not None and self._unsynced:
            try:
                os.fsync(self._fh.fileno())
            except OSError as exc:
                self.error = exc
                raise
            self._unsynced = False

    def close(self) -> None:
        """fsync and close the file (idempotent)."""
        if self._fh is not None:
            try:
                self.sync()
            finally:
                self._fh.close()
                self._fh = None

    def __enter__(self) -> EventFile:
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()


def _last_newline_end(fh: BinaryIO, size: int) -> int:
    """Where the last complete line of the file ends (0 when there is none)."""
    before = size
    while before > 0:
        start = max(0, before - 65536)
        fh.seek(start)
        newline = fh.read(before - start).rfind(b"\n")
        if newline >= 0:
            return start + newline + 1
        before = start
    return 0


def read_events(path: str | os.PathLike[str]) -> list[ChangeEvent]:
    """The events of an event file in file order; a torn last line (no newline) is skipped,
    a missing file is empty, a broken complete line raises :class:`MalformedEvent`."""
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        return []
    lines = data.split(b"\n")[:-1]  # the piece after the last newline is torn (or empty)
    events = []
    for number, line in enumerate(lines, 1):
        try:
            events.append(ChangeEvent.from_json_dict(json.loads(line)))
        except ValueError as exc:
            raise MalformedEvent(f"{path} line {number}: not a change event ({exc})") from None
    return events


# -------------------------------------------------------------------- options
