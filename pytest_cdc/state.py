"""Per-session plugin state, kept in `config.stash`: resolved settings and the lazy stack."""

from __future__ import annotations

import atexit
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from pytest_cdc.backends import backend_for, open_stack
from pytest_cdc.errors import CdcSetupError, CdcUsageError
from pytest_cdc.options import (
    Lakehouse,
    Setting,
    check_backend,
    resolve_backend,
    resolve_collect_features,
    resolve_external,
    resolve_lakehouse,
    resolve_runtime_dir,
)
from pytest_cdc.stack import Stack
from pytest_cdc.stack.record import keep_record
from pytest_cdc.stack.shared import (
    SHARED_DIR_KEY,
    SharedStack,
    SharedStackError,
    StackServer,
    attach,
)

ATTACH_TIMEOUT = 900.0
"""Seconds an xdist worker waits for the controller to start the shared stack."""


@dataclass
class CdcState:
    """What the plugin knows for one session; the stack starts on first use."""

    config: pytest.Config
    backend: Setting
    runtime_dir: Setting
    keep_stack: bool
    lakehouse: Lakehouse
    shared_dir: Path | None = None
    """On a pytest-xdist worker: where the controller serves the session stack."""
    stop_error: str = ""
    """Why stopping the stack was not clean (a component exited badly), once closed."""
    _stack: Stack | None = field(default=None, repr=False)
    _failed: BaseException | None = field(default=None, repr=False)
    _server: StackServer | None = field(default=None, repr=False)

    @property
    def started(self) -> Stack | None:
        """The stack if it was started in this session."""
        return self._stack

    def stack(self) -> Stack:
        """Start the stack once; a failed start is re-raised for every later test, not retried."""
        if self._failed is not None:
            raise self._failed
        if self._stack is None:
            try:
                self._stack = self._attach() if self.shared_dir else self.start(self.backend)
            except BaseException as exc:
                self._failed = exc
                raise
        return self._stack

    def _attach(self) -> Stack:
        """An xdist worker's stack: the one the controller starts for every worker."""
        assert self.shared_dir is not None
        try:
            return attach(self.shared_dir, timeout=ATTACH_TIMEOUT)
        except SharedStackError as exc:
            if exc.usage:  # one line naming the fix
                raise pytest.fail.Exception(str(exc), pytrace=False) from None
            raise

    def serve_workers(self) -> Path:
        """On the xdist controller: the dir the workers ask for the stack in (served by a
        thread that starts it, through `stack()`, when the first worker asks)."""
        if self._server is None:
            self._server = StackServer(self.stack)
        return self._server.path

    def start(self, backend: Setting) -> Stack:
        """Start a stack of ``backend`` (the session's, or another one a factory names); a
        usage or setup error fails the test in one line, without a traceback."""
        try:
            return open_stack(
                check_backend(backend),
                Path(self.runtime_dir.value),
                progress_writer(self.config),
                resolve_external(self.config),
            )
        except (CdcSetupError, CdcUsageError) as exc:  # the message names the fix
            raise pytest.fail.Exception(str(exc), pytrace=False) from None

    def header(self) -> list[str]:
        """The report header: backend (where the choice came from, versions), lakehouse."""
        return [self._backend_line(), self.lakehouse.describe()]

    def _backend_line(self) -> str:
        backend = backend_for(
            self.backend, Path(self.runtime_dir.value), resolve_external(self.config)
        )
        line = f"cdc: backend={backend.name} ({backend.source})"
        try:
            versions = backend.versions()
        except CdcSetupError as exc:
            return f"{line}; runtime NOT READY: {exc}"
        return ", ".join([line, *(f"{k}={v}" for k, v in versions.items())])

    def close(self) -> None:
        """Stop the stack (or, with --cdc-keep-stack, leave it running and print endpoints);
        a worker's shared stack is the controller's to stop."""
        server, self._server = self._server, None
        if server is not None:
            server.close()  # waits for a start under way, so that stack is stopped too
        stack, self._stack = self._stack, None
        if stack is None or isinstance(stack, SharedStack):
            return
        write = progress_writer(self.config)
        if not stack.started_here:  # an external stack: nothing to stop, nothing to record
            write(f"cdc: {stack.detach()}")
            return
        if self.keep_stack:
            stop_command = stack.detach()
            write("cdc: stack left running (--cdc-keep-stack):")
            for key, value in stack.endpoints.as_dict().items():
                write(f"cdc:   {key} = {value}")
            write(f"cdc:   stop it with: {stop_command}")
            write(f"cdc:   {keep_record(stack, 'pytest --cdc-keep-stack')}")
            return
        try:
            stack.close()
        except RuntimeError as exc:  # every component was stopped or killed; one misbehaved
            write(f"cdc: stack stopped, but {exc}")
            self.stop_error = str(exc)
            return
        write("cdc: stack stopped")


STATE_KEY = pytest.StashKey[CdcState]()


def init_state(config: pytest.Config) -> CdcState:
    """Resolve settings (raising usage errors for bad values) and store the state."""
    state = CdcState(
        config=config,
        backend=resolve_backend(config),
        runtime_dir=resolve_runtime_dir(config),
        keep_stack=bool(config.getoption("cdc_keep_stack")),
        lakehouse=resolve_lakehouse(config),
        shared_dir=_shared_dir(config),
    )
    resolve_collect_features(config)  # a bad value fails at start, not at collection
    config.stash[STATE_KEY] = state
    atexit.register(state.close)  # a last resort if pytest is torn down abnormally
    return state


def _shared_dir(config: pytest.Config) -> Path | None:
    """The controller's shared-stack dir, on a pytest-xdist worker (None elsewhere)."""
    workerinput = getattr(config, "workerinput", {})
    value = workerinput.get(SHARED_DIR_KEY)
    return Path(value) if value else None


def get_state(config: pytest.Config) -> CdcState:
    """The session's CdcState."""
    return config.stash[STATE_KEY]


def progress_writer(config: pytest.Config) -> Callable[[str], None]:
    """A function printing a progress line to the terminal, even while output is captured."""
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    capture = config.pluginmanager.get_plugin("capturemanager")
    lock = threading.Lock()  # services start in parallel threads

    def write(line: str) -> None:
        if reporter is None:
            return
        with lock:
            _write(line)

    def _write(line: str) -> None:
        assert reporter is not None
        if capture is not None:
            with capture.global_and_fixture_disabled():
                reporter.write_line(line)
        else:
            reporter.write_line(line)

    return write
