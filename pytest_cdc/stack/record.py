"""The stack record: one JSON file saying which stack is up, written by `cdc-spec up` and
`--cdc-keep-stack`, read by `cdc-spec status` / `down` / `generate` (and an external backend).

The file is ``stack.json`` in the per-user state dir: ``$CDC_STATE_DIR``, else
``$XDG_STATE_HOME/cdc-spec``, else ``~/.local/state/cdc-spec``. It holds the stack's
``Endpoints.to_json`` (passwords included, so the file is mode 0600 in a 0700 dir), the
backend and its versions, who started it and when, its workdir and its processes (pid, start
time, stop signal), and is replaced atomically (``cdc_support.checkpoint.write_atomically``:
``mkstemp`` makes the file 0600). ``locked`` serialises `up`, `down` and `--cdc-keep-stack`.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import json
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cdc_support.checkpoint import write_atomically
from cdc_support.endpoints import Endpoints, EndpointsError

if TYPE_CHECKING:
    import psutil

    from pytest_cdc.stack.base import Stack

STATE_ENV = "CDC_STATE_DIR"
RECORD_NAME = "stack.json"
STOP_NATIVE = "python -m pytest_cdc.stack.native.stop /tmp/cdc-stack-*"
_FIELDS: dict[str, type] = {
    "endpoints": dict,
    "backend": str,
    "backend_source": str,
    "versions": dict,
    "started_by": str,
    "started_at": str,
    "workdir": str,
    "processes": list,
}
_PROCESS_FIELDS: dict[str, tuple[type, ...]] = {
    "name": (str,),
    "pid": (int,),
    "create_time": (int, float),
    "stop_signal": (int,),
}


class StackRecordError(ValueError):
    """The stack record cannot be read; the one-line message names the fix."""


def state_dir(environ: Mapping[str, str] | None = None) -> Path:
    """The per-user state dir (see the module docstring for the precedence)."""
    env = os.environ if environ is None else environ
    if env.get(STATE_ENV):
        return Path(env[STATE_ENV])
    if env.get("XDG_STATE_HOME"):
        return Path(env["XDG_STATE_HOME"]) / "cdc-spec"
    return Path(env.get("HOME") or Path.home()) / ".local" / "state" / "cdc-spec"


def record_path(environ: Mapping[str, str] | None = None) -> Path:
    """Where the stack record is."""
    return state_dir(environ) / RECORD_NAME


@dataclass(frozen=True)
class StackRecord:
    """What `cdc-spec status` and `down` need to know about a stack left running."""

    endpoints: Endpoints
    backend: str
    started_by: str
    started_at: str
    workdir: str = ""
    processes: list[dict[str, Any]] = field(default_factory=list)
    versions: dict[str, str] = field(default_factory=dict)
    backend_source: str = ""

    @property
    def pids(self) -> list[int]:
        """The recorded process ids."""
        return [int(entry["pid"]) for entry in self.processes]

    def running(self) -> list[psutil.Process]:
        """The recorded processes still running (a reused pid does not count)."""
        from pytest_cdc.stack.native.stop import running_recorded

        return running_recorded(self.processes)

    def describe(self) -> str:
        """One line: backend, who started it and when, where its files are."""
        where = f", files in {self.workdir}" if self.workdir else ""
        return f"{self.backend} stack started by {self.started_by} at {self.started_at}{where}"

    def to_json(self) -> str:
        """Every field as JSON, the endpoints with their passwords."""
        values = {name: getattr(self, name) for name in _FIELDS}
        values["endpoints"] = json.loads(self.endpoints.to_json())
        return json.dumps(values, indent=2)

    @classmethod
    def from_json(cls, text: str, *, source: str = "stack record") -> StackRecord:
        """Read what ``to_json`` wrote; StackRecordError (one line naming the fix) if it can't."""
        try:
            values = _checked(json.loads(text))
            endpoints = Endpoints.from_json(
                json.dumps(values.pop("endpoints")), source="its endpoints"
            )
        except (ValueError, EndpointsError) as exc:  # JSONDecodeError is a ValueError
            reason = " ".join(str(exc).split(": write it")[0].split())
            raise StackRecordError(
                f"{source} is not a stack record ({reason}): remove it (rm {source}); a stack "
                f"it named may still run: stop it with `{STOP_NATIVE}`"
            ) from None
        return cls(endpoints=endpoints, **values)


def _checked(values: object) -> dict[str, Any]:
    if not isinstance(values, dict):
        raise ValueError(f"a JSON object expected, found {type(values).__name__}")
    unknown = sorted(set(values) - set(_FIELDS))
    missing = [
        name for name in ("endpoints", "backend", "started_by", "started_at") if name not in values
    ]
    if unknown or missing:
        raise ValueError(f"unknown {unknown}, missing {missing}")
    for name, value in values.items():
        if not isinstance(value, _FIELDS[name]):
            raise ValueError(f"{name} must be a JSON {_FIELDS[name].__name__}")
    for entry in values.get("processes", []):
        if not isinstance(entry, dict) or not all(
            isinstance(entry.get(k), t) and not isinstance(entry.get(k), bool)
            for k, t in _PROCESS_FIELDS.items()
        ):
            raise ValueError(f"a process entry needs {', '.join(_PROCESS_FIELDS)}: {entry!r}")
    return dict(values)


def record_of(stack: Stack, started_by: str) -> StackRecord:
    """The record of a stack that was just detached (its processes from its workdir)."""
    from pytest_cdc.stack.native.stop import read_processes

    workdir = getattr(stack, "workdir", None)
    return StackRecord(
        endpoints=stack.endpoints,
        backend=stack.info.backend,
        backend_source=stack.info.backend_source,
        versions=dict(stack.info.versions),
        started_by=started_by,
        started_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        workdir=str(workdir or ""),
        processes=read_processes(Path(workdir)) if workdir else [],
    )


def save(record: StackRecord, path: Path | None = None) -> Path:
    """Write the record atomically, mode 0600, in a 0700 dir; returns its path."""
    path = path or record_path()
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    write_atomically(path, record.to_json())  # mkstemp: created 0600, replaced atomically
    return path


def load(path: Path | None = None) -> StackRecord | None:
    """The record, or None when no stack is recorded."""
    path = path or record_path()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    return StackRecord.from_json(text, source=str(path))


def remove(path: Path | None = None) -> bool:
    """Delete the record; False when there was none."""
    try:
        (path or record_path()).unlink()
    except FileNotFoundError:
        return False
    return True


@contextlib.contextmanager
def locked(path: Path | None = None, *, waiting: str = "") -> Iterator[None]:
    """Hold the record's lock (a ``flock`` on ``stack.json.lock``); print ``waiting`` first
    when another command holds it."""
    path = path or record_path()
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    with open(path.with_name(path.name + ".lock"), "a") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if waiting:
                print(waiting, flush=True)
            fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def stop_recorded(record: StackRecord) -> list[str]:
    """Stop the recorded stack, wait until every recorded process is gone, remove its files;
    one line per thing done. RuntimeError when a process survives."""
    if record.backend != "native":
        raise RuntimeError(f"cannot stop a {record.backend} stack: only native stacks are recorded")
    from pytest_cdc.stack.native.stop import stop_stack_dir

    lines = stop_stack_dir(Path(record.workdir), processes=record.processes)
    left = record.running()
    if left:  # stop_stack_dir waits for them: this only says so if that ever changes
        raise RuntimeError("still running: " + ", ".join(str(p.pid) for p in left))
    return lines


def keep_record(stack: Stack, started_by: str, path: Path | None = None) -> str:
    """Record a stack just detached (`--cdc-keep-stack`) unless the record names another
    running stack; one line saying where it was recorded, or why not."""
    path = path or record_path()
    try:
        with locked(path):
            existing = load(path)
            if existing is not None and existing.running():
                other = existing.describe()
                return f"not recorded in {path}: it names another running stack ({other})"
            save(record_of(stack, started_by), path)
    except (OSError, StackRecordError) as exc:  # the stack stays up: say why it is not recorded
        return f"not recorded: {exc}"
    return f"recorded in {path}: `cdc-spec status` shows it, `cdc-spec down` stops it"
