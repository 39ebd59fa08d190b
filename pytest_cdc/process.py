"""One managed child process: start with a readiness probe, stop, kill, restart, read logs.

Used by the native stack's services and by the sink workers. Processes are run by mirakuru
(own process group, marked by an environment variable so leftovers are found and killed at
interpreter exit). Output goes to a log file per service.

The marker is ours, in letters only: mirakuru's own exit hook kills every process whose marker
*contains* the exiting interpreter's pid, so with mirakuru's ``<pid>:<uuid>`` an unrelated
Python exiting could kill a stack left running (`cdc-spec up`) when its pid happened to occur
in that marker. Our exit hook kills the processes this interpreter marked and did not detach.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import signal
import sys
import time
import uuid
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil
from mirakuru import Executor
from mirakuru.base import ENV_UUID
from mirakuru.base_env import processes_with_env
from mirakuru.exceptions import ProcessExitedWithError, TimeoutExpired

from pytest_cdc.errors import StackStartError

Probe = Callable[["ServiceProcess"], str | None]
"""Returns None when the service is ready, else a short description of what it sees. It gets
the process, so it can read its log (a "started" line); an endpoint probe ignores it."""


def cdc_spec_command() -> list[str]:
    """How to run ``cdc-spec``: the console script next to this Python, else ``-m``."""
    script = Path(sys.executable).with_name("cdc-spec")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-m", "cdc_support.cli"]


log = logging.getLogger("pytest_cdc.process")
_LETTERS = str.maketrans("0123456789", "ghijklmnop")
_detached: set[str] = set()
"""Markers of the processes left running on purpose (not killed at exit)."""


def _owner_marker(pid: int) -> str:
    """The start of the markers of the processes ``pid`` runs; no other pid's is a part of it."""
    return f"cdc-spec-{str(pid).translate(_LETTERS)}-"


@atexit.register
def _kill_leftovers() -> None:
    """At interpreter exit, SIGKILL what this interpreter started and did not detach."""
    for pid in processes_with_env(ENV_UUID, _owner_marker(os.getpid())):
        with contextlib.suppress(OSError, psutil.Error):
            if psutil.Process(pid).environ().get(ENV_UUID) not in _detached:
                os.kill(pid, signal.SIGKILL)


class _ProbeExecutor(Executor):
    """A mirakuru Executor whose readiness is a probe function, its processes marked with
    letters only (see the module docstring)."""

    def __init__(self, command: list[str], probe: Callable[[], str | None], **kwargs: Any) -> None:
        super().__init__(command, **kwargs)
        self._uuid = _owner_marker(os.getpid()) + uuid.uuid4().hex.translate(_LETTERS)
        self._probe = probe
        self.last_seen = "nothing yet (process just started)"

    def pre_start_check(self) -> bool:
        return False  # ports are fresh; nothing else can be listening

    def check_subprocess(self) -> bool:
        if self.process is None:  # killed by another thread: mirakuru would wait forever
            raise ProcessExitedWithError(self, -signal.SIGKILL)
        return super().check_subprocess()

    def after_start_check(self) -> bool:
        try:
            seen = self._probe()
        except Exception as exc:  # a probe failing is just "not ready yet"
            seen = f"{type(exc).__name__}: {exc}"
        if seen is None:
            return True
        self.last_seen = seen
        return False


class ServiceProcess:
    """A service run as a child process (a native stack component, a sink worker)."""

    def __init__(
        self,
        name: str,
        command: list[str],
        *,
        log_path: Path,
        probe: Probe,
        awaited: str,
        timeout: float,
        stop_signal: int = signal.SIGTERM,
        expected_returncode: int | None = None,
        env: dict[str, str] | None = None,
        popen_kwargs: dict[str, Any] | None = None,
        hint: str = "",
    ) -> None:
        self.name = name
        self.command = command
        self.log_path = log_path
        self.awaited = awaited
        self.timeout = timeout
        self.hint = hint
        self._probe = probe
        self._stop_signal = stop_signal
        self._expected_returncode = expected_returncode
        self._env = env or {}
        self._popen_kwargs = popen_kwargs or {}
        self._executor: _ProbeExecutor | None = None
        self._log_file: Any = None
        self.start_seconds: float | None = None
        self._log_offset = 0

    def start(self) -> ServiceProcess:
        """Start and wait until the probe says ready; on failure stop it and raise."""
        started = time.monotonic()
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log_file = open(self.log_path, "ab")  # noqa: SIM115 - closed in _forget()
        self._log_offset = self._log_file.tell()
        self._executor = executor = _ProbeExecutor(
            self.command,
            lambda: self._probe(self),
            timeout=self.timeout,
            sleep=0.2,
            stop_signal=self._stop_signal,
            expected_returncode=self._expected_returncode,
            envvars=self._env,
            stdin=None,
            stdout=self._log_file,
            stderr=self._log_file,
            popen_kwargs=self._popen_kwargs,
        )
        try:
            executor.start()
        except (TimeoutExpired, ProcessExitedWithError) as exc:
            seen = executor.last_seen
            if isinstance(exc, ProcessExitedWithError):
                seen = f"the process exited with code {exc.exit_code}"
                if executor.process is None and exc.exit_code == -signal.SIGKILL:
                    seen = "the process was killed while starting (the stack is stopping)"
            self._forget(kill=True)
            raise StackStartError(
                self.name,
                f"{self.awaited} within {self.timeout:.0f}s",
                seen,
                log_tail=self.logs(25),
                hint=self.hint,
            ) from None
        except BaseException:  # Ctrl-C, SIGTERM: never leave a half-started process behind
            self._forget(kill=True)
            raise
        self.start_seconds = time.monotonic() - started
        return self

    @property
    def pid(self) -> int | None:
        """PID of the running process, or None."""
        ex = self._executor
        return ex.process.pid if ex and ex.process else None

    @property
    def stop_signal(self) -> int:
        """The signal that stops it gracefully."""
        return int(self._stop_signal)

    def running(self) -> bool:
        """True while the process is alive."""
        return bool(self._executor and self._executor.running())

    def stop(self) -> None:
        """Stop gracefully (SIGKILL after the timeout); safe to call twice."""
        if self._executor is None:
            return
        popen = self._executor.process
        try:
            self._executor.stop()
        finally:
            self._forget(kill=False)
        graceful = self._stop_signal != signal.SIGKILL
        if graceful and popen is not None and popen.returncode == -signal.SIGKILL:
            log.warning(
                "%s did not exit within %.0fs of %s: it was killed (SIGKILL); see %s",
                self.name,
                self.timeout,
                signal.Signals(self._stop_signal).name,
                self.log_path,
            )

    def kill(self) -> None:
        """SIGKILL the whole process group, as a crash would."""
        self._forget(kill=True)

    def restart(self) -> None:
        """Stop and start again with the same command and data."""
        self.stop()
        self.start()

    def logs(self, lines: int = 50) -> str:
        """The last lines of this service's log file."""
        try:
            with open(self.log_path, errors="replace") as fh:
                return "".join(deque(fh, maxlen=lines)).rstrip()
        except FileNotFoundError:
            return "(no log written)"

    def detach(self) -> None:
        """Forget the process without stopping it (it keeps running after we exit)."""
        ex, self._executor = self._executor, None
        if ex is not None:
            _detached.add(ex._uuid)  # nor our exit hook
            ex.process = None  # so the executor's __del__ does not kill it

    def log_since_start(self) -> bytes:
        """What the current run of the process has logged so far."""
        with open(self.log_path, "rb") as fh:
            fh.seek(self._log_offset)
            return fh.read()

    def _forget(self, *, kill: bool) -> None:
        ex, self._executor = self._executor, None
        if ex is not None and kill and ex.process is not None:
            with contextlib.suppress(OSError, ProcessLookupError):
                ex.kill(wait=True, sig=signal.SIGKILL)
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None

    def __repr__(self) -> str:
        return f"<ServiceProcess {self.name} pid={self.pid}>"
