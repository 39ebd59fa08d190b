"""One stack for every pytest-xdist worker: the controller starts it when a worker first asks.

Under ``pytest -n N`` the controller (which runs no test) makes a 0700 dir and hands its
path to each worker (``workerinput["cdc_shared_dir"]``). A worker that needs the session
stack creates ``request`` there and polls for ``stack.json`` (a stack record, endpoints with
passwords, mode 0600) or ``error.json``. The controller's :class:`StackServer` thread sees
the request and starts the stack through the session state — so the progress lines are
printed once, on the controller's terminal — then writes the record. Workers get a
:class:`SharedStack` (endpoints, no processes); the controller stops the stack at its
session finish, also after Ctrl-C, SIGTERM or a crashed worker. Isolation stays by name.

The stack starts only if some worker needs it: the controller collects nothing, so it
cannot know that in advance. :func:`distribute_by_file` keeps each feature file's scenarios on
one worker, in order.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from cdc_support.checkpoint import write_atomically
from cdc_support.waiting import WaitTimeout, wait_until
from pytest_cdc.errors import CdcUsageError
from pytest_cdc.stack.base import Stack, StackInfo
from pytest_cdc.stack.record import StackRecord, load, record_of, save

SHARED_DIR_KEY = "cdc_shared_dir"
"""The ``workerinput`` key naming the dir the controller serves the stack in."""
REQUEST = "request"
RECORD = "stack.json"
ERROR = "error.json"
POLL = 0.2
STARTED_BY = "the pytest-xdist controller"


class SharedStackError(RuntimeError):
    """The controller could not start the shared stack (its message says why); ``usage`` when
    that was a setup or usage error, whose one-line message names the fix."""

    def __init__(self, message: str, *, usage: bool = False) -> None:
        super().__init__(message)
        self.usage = usage


class SharedStack(Stack):
    """The controller's stack as a worker sees it: endpoints only; the controller stops it."""

    def __init__(self, record: StackRecord) -> None:
        self.endpoints = record.endpoints
        self.info = StackInfo(record.backend, record.backend_source, dict(record.versions))

    @property
    def started_here(self) -> bool:
        """False: the controller started it, and stops it."""
        return False

    def _not_here(self, what: str) -> CdcUsageError:
        return CdcUsageError(
            f"cannot {what} a stack component under pytest -n: the stack is shared by the "
            "xdist workers; run fault scenarios without -n (or with -n 0)"
        )

    def restart(self, component: str) -> None:
        raise self._not_here("restart")

    def kill(self, component: str) -> None:
        raise self._not_here("kill")

    def logs(self, component: str, lines: int = 50) -> str:
        raise self._not_here("read the logs of")

    def close(self) -> None:
        """Nothing to stop: the controller owns the processes."""


class StackServer:
    """Controller side: a thread that starts the stack when the first worker asks for it."""

    def __init__(self, start: Callable[[], Stack]) -> None:
        self.path = Path(tempfile.mkdtemp(prefix="cdc-xdist-"))  # 0700
        self._start = start
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="cdc-stack-server", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(POLL):
            if (self.path / REQUEST).exists():
                self._serve()
                return

    def _serve(self) -> None:
        try:
            stack = self._start()
        except BaseException as exc:  # pytest.fail's Failed is a BaseException
            usage = type(exc).__name__ == "Failed"  # a setup or usage error, one line
            message = str(exc) if usage else f"{type(exc).__name__}: {exc}"
            write_atomically(self.path / ERROR, json.dumps({"usage": usage, "message": message}))
            return
        save(record_of(stack, STARTED_BY), self.path / RECORD)

    def close(self) -> None:
        """Stop serving: wait for a start under way (the caller stops the stack), remove the
        dir."""
        self._stop.set()
        self._thread.join()
        shutil.rmtree(self.path, ignore_errors=True)


def attach(shared_dir: Path, *, timeout: float) -> SharedStack:
    """Worker side: ask the controller for the stack, wait for it, return its endpoints.

    Raises :class:`SharedStackError` when the controller could not start it in time.
    """
    (shared_dir / REQUEST).touch()

    def probe() -> StackRecord | dict[str, object] | None:
        if (shared_dir / ERROR).exists():
            return dict(json.loads((shared_dir / ERROR).read_text()))
        return load(shared_dir / RECORD)

    try:
        seen = wait_until(
            probe,
            done=lambda value: value is not None,
            timeout=timeout,
            interval=POLL,
            expected=f"the xdist controller to start the cdc stack ({shared_dir / RECORD})",
        )
    except WaitTimeout:
        raise SharedStackError(
            f"the pytest-xdist controller did not start the cdc stack within {timeout:.0f}s "
            "(its progress lines say how far it got); run without -n to see the start itself",
            usage=True,
        ) from None
    if isinstance(seen, dict):
        raise SharedStackError(str(seen.get("message")), usage=bool(seen.get("usage")))
    assert isinstance(seen, StackRecord)
    return SharedStack(seen)


def distribute_by_file(config: pytest.Config) -> None:
    """`-n N` without `--dist` means --dist load, which spreads a feature's scenarios over
    the workers; make it loadfile: each file's scenarios run on one worker, in file order
    (features/postgres/approaches.feature ends with a scenario reading what those before it
    recorded). An explicit `--dist` is left as given."""
    given = getattr(getattr(config, "known_args_namespace", None), "dist", "no")
    if getattr(config.option, "dist", "no") == "load" and given == "no":
        config.option.dist = "loadfile"
