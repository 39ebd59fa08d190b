"""SIGTERM and SIGHUP end a run the way Ctrl-C does, so everything it started is cleaned up.

CI timeouts, `timeout` and container stops send SIGTERM; a closed terminal sends SIGHUP. By
default either kills pytest at once and leaves the stack, the sink workers and their temp
dirs behind. `StopSignals` turns the first such signal into a KeyboardInterrupt in the main
thread: pytest then tears fixtures down and the plugin stops the stack, as after Ctrl-C.
While teardown runs, signals are held and acted on once it is done: an interrupted
finalizer would leak what it was about to stop.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable, Generator, Iterator
from types import FrameType
from typing import Any

import pytest

HANDLED = (signal.SIGTERM, signal.SIGHUP)


class StopSignals:
    """Handlers for HANDLED, installed for one pytest session and restored after it."""

    def __init__(self) -> None:
        self._previous: dict[int, Any] = {}
        self._holding = 0
        self._pending = False
        self.received: str | None = None
        """Name of the first signal received (SIGTERM, SIGHUP), if any."""

    def install(self) -> bool:
        """Install the handlers (only the main thread can); False when not installed."""
        if threading.current_thread() is not threading.main_thread():
            return False
        for signum in HANDLED:
            self._previous[signum] = signal.signal(signum, self._handle)
        return True

    def restore(self) -> None:
        """Put back the handlers that were there before `install`."""
        previous, self._previous = self._previous, {}
        for signum, handler in previous.items():
            signal.signal(signum, handler)

    @contextlib.contextmanager
    def held(self, *, interrupt_after: bool = True) -> Iterator[None]:
        """Hold signals while the block runs (a teardown); after it, interrupt if one came."""
        self._holding += 1
        try:
            yield
        finally:
            self._holding -= 1
            if not self._holding and self._pending and interrupt_after:
                self._pending = False
                raise KeyboardInterrupt(f"{self.received} received")

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        # No output here: a handler runs between any two bytecodes, even inside the
        # terminal or capture code. The KeyboardInterrupt message names the signal.
        if self.received is not None:
            return  # cleaning up already; a second signal must not interrupt that
        self.received = signal.Signals(signum).name
        if self._holding:
            self._pending = True
            return
        raise KeyboardInterrupt(f"{self.received} received")


class SignalPlugin:
    """Registered by pytest_cdc for a session: handlers on, teardowns held, handlers off."""

    name = "cdc-stop-signals"

    def __init__(self, write: Callable[[str], None]) -> None:
        self.signals = StopSignals()
        self._write = write

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_runtest_teardown(self) -> Generator[None, object, object]:
        with self.signals.held():
            return (yield)

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> Generator[None, object, object]:
        if self.signals.received:
            self._write(f"cdc: {self.signals.received} received: stopping what the run started")
        with self.signals.held(interrupt_after=False):
            result = yield
        if self.signals.received:
            session.exitstatus = pytest.ExitCode.INTERRUPTED
        return result


def install(config: pytest.Config, write: Callable[[str], None]) -> None:
    """Turn SIGTERM/SIGHUP into Ctrl-C for this session (main thread only)."""
    plugin = SignalPlugin(write)
    if plugin.signals.install():
        config.pluginmanager.register(plugin, SignalPlugin.name)


def uninstall(config: pytest.Config) -> None:
    """Restore the previous handlers."""
    plugin = config.pluginmanager.get_plugin(SignalPlugin.name)
    if isinstance(plugin, SignalPlugin):
        plugin.signals.restore()
        config.pluginmanager.unregister(plugin)
