"""One checkpoint for every reader: a JSON file, fsync'd, replaced atomically, bound to its source.

A reader (trigger audit, timestamp polling, binlog reader, Delta CDF consumer, Iceberg snapshot
consumer) keeps its position here, as ``{"source": ..., "position": {...}, "saved_at": ...}``.

- Atomic: the new content goes to a temp file in the same folder, is fsync'd, renamed over the
  old file (``os.replace``) and the folder is fsync'd, so a crash at any point leaves either the
  old or the new position, never half a file, and a saved position survives a power cut.
- Bound to its source: ``source`` names what the position belongs to (a table URI, a table UUID,
  a server and its tables); loading a file written for another source is refused with one line
  naming the fix, so a reader never resumes from a position in somebody else's stream.
- A file that is not a checkpoint is refused the same way (one line, naming the fix).

``path=None`` keeps the position in memory (a reader that need not survive its process).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["CheckpointError", "JsonCheckpoint", "StoredCheckpoint"]


class CheckpointError(ValueError):
    """A checkpoint is unreadable or belongs to another source; one line naming the fix."""


@dataclass(frozen=True)
class StoredCheckpoint:
    """What a checkpoint file holds."""

    source: str
    position: dict[str, Any]
    saved_at: str | None = None


class JsonCheckpoint:
    """A reader's position for one ``source``, in the JSON file ``path`` (or in memory).

    ``start_over`` says what deleting the file means for this reader (it is part of the
    error messages), e.g. "the consumer then starts at its start_version".
    """

    def __init__(
        self,
        path: str | os.PathLike[str] | None,
        source: str,
        *,
        start_over: str = "the reader then starts like a new one",
    ) -> None:
        if not source:
            raise ValueError("a checkpoint needs its source's identity (a non-empty string)")
        self.path = Path(path) if path is not None else None
        self.source = source
        self.start_over = start_over
        self._memory: dict[str, Any] | None = None

    def __repr__(self) -> str:
        return f"JsonCheckpoint({self.path or 'memory'})"

    def load(self) -> dict[str, Any] | None:
        """The saved position, or None when nothing was saved yet.

        Raises :class:`CheckpointError` when the file is not a checkpoint or was written for
        another source.
        """
        if self.path is None:
            return None if self._memory is None else json.loads(json.dumps(self._memory))
        stored = self.read(self.path, start_over=self.start_over)
        if stored is None:
            return None
        if stored.source != self.source:
            raise CheckpointError(
                f"checkpoint {self.path} belongs to {stored.source!r}, not {self.source!r}: "
                f"delete it to start over ({self.start_over}), or give this reader its own "
                "checkpoint path"
            )
        return stored.position

    def save(self, position: Mapping[str, Any]) -> None:
        """Replace the saved position (atomically and durably when in a file)."""
        payload = json.loads(json.dumps(dict(position)))  # a copy; fails early if not JSON
        if self.path is None:
            self._memory = payload
            return
        write_atomically(
            self.path,
            json.dumps(
                {
                    "source": self.source,
                    "position": payload,
                    "saved_at": dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds"),
                }
            ),
        )

    @staticmethod
    def read(
        path: str | os.PathLike[str], *, start_over: str = "the reader then starts like a new one"
    ) -> StoredCheckpoint | None:
        """The checkpoint file at ``path`` whatever its source (None when there is none)."""
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        try:
            data = json.loads(text)
            if not isinstance(data, dict):
                raise ValueError(f"a JSON object expected, found {type(data).__name__}")
            source, position = data["source"], data["position"]
            if not isinstance(source, str) or not isinstance(position, dict):
                raise ValueError("'source' must be a string and 'position' an object")
        except (ValueError, KeyError, TypeError) as exc:
            reason = " ".join(str(exc).split()) or type(exc).__name__
            raise CheckpointError(
                f"checkpoint {path} is not a readable checkpoint ({reason}): delete it to start "
                f"over ({start_over}), or give the reader another checkpoint path"
            ) from None
        return StoredCheckpoint(source, position, data.get("saved_at"))


def write_atomically(path: Path, text: str) -> None:
    """Write ``text`` to ``path``: temp file + fsync + ``os.replace`` + fsync of the folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
