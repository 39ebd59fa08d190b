"""JSON-lines logs: one object per record, one line per object.

Keys, in order: ``timestamp`` (ISO 8601, UTC), ``level``, ``component`` (harness, sink, ...),
``logger``, ``message``; then ``connector``, ``topic``, ``table`` when known (a record's
``extra={...}`` or the fields fixed for the whole process), then any other extra, then
``exception`` (the formatted traceback) when the record has one. Newlines inside values are
escaped, so a record is always one line.

:func:`configure_json_logging` adds such a handler to loggers and lowers their level to the
one asked for. Records that only that lower level lets through go to the JSON handler alone:
handlers further up (pytest's capture on the root logger) see exactly what they saw before.
For that, a lowered logger's parent becomes a gate (a logger outside the hierarchy's registry)
that passes a record on only when the logger's former level would have; its own
``propagate`` stays True, since pytest also attaches its capture to non-propagating loggers.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

__all__ = [
    "CONTEXT_KEYS",
    "LOG_KEYS",
    "JsonFormatter",
    "JsonLogging",
    "configure_json_logging",
]

LOG_KEYS = ("timestamp", "level", "component", "logger", "message")
CONTEXT_KEYS = ("connector", "topic", "table")
"""Fields that follow LOG_KEYS when known, in this order."""
_STANDARD = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}


class JsonFormatter(logging.Formatter):
    """A record as one JSON object on one line; ``fields`` are defaults for every record."""

    def __init__(self, component: str, fields: Mapping[str, Any] | None = None) -> None:
        super().__init__()
        self.component = component
        self.fields = dict(fields or {})

    def format(self, record: logging.LogRecord) -> str:
        stamp = datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")
        obj: dict[str, Any] = {
            "timestamp": stamp.replace("+00:00", "Z"),
            "level": record.levelname,
            "component": self.component,
            "logger": record.name,
            "message": record.getMessage(),
        }
        extras = {**self.fields, **{k: v for k, v in vars(record).items() if k not in _STANDARD}}
        obj.update({k: extras.pop(k) for k in CONTEXT_KEYS if extras.get(k) is not None})
        obj.update(extras)
        if record.exc_info:
            obj["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            obj["stack"] = self.formatStack(record.stack_info)
        return json.dumps(obj, default=str, ensure_ascii=False)


class _Forward(logging.Handler):
    """The gate's handler: passes a record to the handlers above the lowered logger only when
    the logger's level before the change would have let it through."""

    def __init__(self, parent: logging.Logger, saved: dict[str, tuple[int, int]]) -> None:
        super().__init__()
        self.parent = parent
        """The lowered logger's real parent."""
        self.saved = saved
        """logger name -> (level before, level set here), for every logger lowered."""

    def _level_before(self, name: str) -> int:
        logger: logging.Logger | None = logging.getLogger(name)
        while logger is not None:
            level = logger.level
            before, ours = self.saved.get(logger.name, (level, level))
            if level == ours:  # still what we set (else someone, e.g. caplog, changed it)
                level = before
            if level:
                return level
            logger = logger.parent
        return logging.NOTSET  # as Logger.getEffectiveLevel() when no logger sets one

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno < self._level_before(record.name):
            return
        parent: logging.Logger | None = self.parent
        while parent is not None:
            for handler in parent.handlers:
                if record.levelno >= handler.level:
                    handler.handle(record)
            if not parent.propagate:
                break
            parent = parent.parent


@dataclass
class JsonLogging:
    """What :func:`configure_json_logging` changed; :meth:`close` undoes it."""

    handler: logging.Handler
    loggers: tuple[logging.Logger, ...]
    _saved: dict[str, tuple[int, int]] = field(default_factory=dict)
    _parents: dict[str, logging.Logger] = field(default_factory=dict)

    def close(self) -> None:
        """Remove the handler (and close its file), restore levels and parents."""
        for logger in self.loggers:
            logger.removeHandler(self.handler)
            parent = self._parents.pop(logger.name, None)
            if parent is not None:
                logger.parent = parent
            if logger.name in self._saved:
                logger.setLevel(self._saved.pop(logger.name)[0])
        self.handler.close()


def configure_json_logging(
    target: str | Path | TextIO,
    component: str,
    level: int | str = logging.INFO,
    *,
    loggers: Sequence[str] = ("",),
    fields: Mapping[str, Any] | None = None,
) -> JsonLogging:
    """Write the records of ``loggers`` (default: the root logger) at ``level`` and above to
    ``target`` (a file, appended to and its folder made; or a text stream) as JSON lines."""
    if isinstance(target, str | Path):
        Path(target).parent.mkdir(parents=True, exist_ok=True)
        handler: logging.Handler = logging.FileHandler(target, encoding="utf-8")
    else:
        handler = logging.StreamHandler(target)
    handler.setFormatter(JsonFormatter(component, fields))
    wanted = logging._checkLevel(level)  # type: ignore[attr-defined]  # "INFO" -> 20
    handler.setLevel(wanted)
    done = JsonLogging(handler, tuple(logging.getLogger(name or None) for name in loggers))
    for logger in done.loggers:
        logger.addHandler(handler)
        if logger.getEffectiveLevel() <= wanted:
            continue
        done._saved[logger.name] = (logger.level, wanted)
        logger.setLevel(wanted)
        if logger.parent is not None:
            done._parents[logger.name] = logger.parent
            logger.parent = _gate(logger.parent, done._saved)
    return done


def _gate(parent: logging.Logger, saved: dict[str, tuple[int, int]]) -> logging.Logger:
    """A logger outside the registry, between a lowered logger and its parent."""
    gate = logging.Logger(f"{parent.name}.json-logs-gate")
    gate.addHandler(_Forward(parent, saved))
    gate.propagate = False
    gate.parent = parent  # getEffectiveLevel() of a logger below reads on through it
    return gate


def json_level(line: str) -> str | None:
    """The ``level`` of one JSON log line; None for a line that is not one."""
    try:
        record = json.loads(line)
    except ValueError:
        return None
    return record.get("level") if isinstance(record, dict) else None
