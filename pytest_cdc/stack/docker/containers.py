"""One service as a container: start it, wait until it answers, restart, kill, logs, remove.

A :class:`ServiceContainer` wraps testcontainers' ``DockerContainer`` on the host network
(each service binds 127.0.0.1 on the port its environment names), labelled with the session,
the component, the owner process and the host (see :func:`labels_for`). Readiness is a probe
on its endpoint (:mod:`pytest_cdc.stack.probes`) run as a testcontainers wait strategy; a
container that exits while awaited fails at once, with its last log lines.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import threading
import time
from collections.abc import Mapping
from typing import Any

import docker.errors
import psutil

from cdc_support.waiting import WaitTimeout, wait_until
from pytest_cdc.errors import StackStartError
from pytest_cdc.stack.docker import engine  # noqa: F401 - disables Ryuk before testcontainers
from pytest_cdc.stack.probes import Probe

# isort: off
from testcontainers.core.container import DockerContainer
from testcontainers.core.exceptions import ContainerStartException
from testcontainers.core.waiting_utils import WaitStrategy

# isort: on

LABEL_PREFIX = "org.cdc-spec."
SESSION_LABEL = LABEL_PREFIX + "session"
COMPONENT_LABEL = LABEL_PREFIX + "component"
OWNER_PID_LABEL = LABEL_PREFIX + "owner-pid"
OWNER_START_LABEL = LABEL_PREFIX + "owner-start"
"""The owner's process start time: a reused pid is not the owner."""
HOST_LABEL = LABEL_PREFIX + "host"
WORKDIR_LABEL = LABEL_PREFIX + "workdir"
"""The stack's temp dir (credentials.json) or a sink worker's folder, removed with its
orphaned container."""
STOP_SECONDS = 30
"""How long a restart waits for the stop signal before SIGKILL."""
LOG_TAIL = 25


def labels_for(session: str, component: str, workdir: str = "") -> dict[str, str]:
    """The labels every cdc-spec container carries (owner: this process, on this host)."""
    labels = {
        SESSION_LABEL: session,
        COMPONENT_LABEL: component,
        OWNER_PID_LABEL: str(os.getpid()),
        OWNER_START_LABEL: f"{psutil.Process().create_time():.2f}",
        HOST_LABEL: socket.gethostname(),
    }
    if workdir:
        labels[WORKDIR_LABEL] = workdir
    return labels


class Cancelled(Exception):
    """Waiting was given up: another component failed, or the start was interrupted."""


class ProbeWaitStrategy(WaitStrategy):
    """Ready when the probe answers; fails at once when the container exits, and at the
    deadline with what was awaited, what was seen and the container's last log lines."""

    def __init__(
        self,
        component: str,
        probe: Probe,
        *,
        timeout: float,
        cancel: threading.Event | None = None,
        interval: float = 0.2,
    ) -> None:
        super().__init__()
        self.component = component
        self.probe = probe
        self.timeout = timeout
        self.interval = interval
        self.cancel = cancel or threading.Event()

    def wait_until_ready(self, container: Any) -> None:
        wrapped = container.get_wrapped_container()

        def check() -> str | None:
            if self.cancel.is_set():
                raise Cancelled(self.component)
            seen = self.probe.check()
            if seen is None:
                return None
            wrapped.reload()
            if wrapped.status not in ("created", "running", "restarting"):
                code = wrapped.attrs.get("State", {}).get("ExitCode")
                raise StackStartError(
                    self.component,
                    self.probe.awaited,
                    f"the container {wrapped.short_id} is {wrapped.status} (exit code {code})",
                    log_tail=_tail(wrapped, LOG_TAIL),
                )
            return seen

        try:
            wait_until(
                check,
                done=lambda seen: seen is None,
                timeout=self.timeout,
                interval=self.interval,
                expected=self.probe.awaited,
                describe=str,
            )
        except WaitTimeout as exc:
            raise StackStartError(
                self.component,
                f"{self.probe.awaited} within {self.timeout:.0f}s",
                exc.last_seen,
                log_tail=_tail(wrapped, LOG_TAIL),
            ) from None


def _tail(wrapped: Any, lines: int) -> str:
    try:
        text = wrapped.logs(tail=lines).decode(errors="replace").rstrip()
    except docker.errors.DockerException as exc:
        return f"(could not read the container's log: {exc})"
    return text or "(the container logged nothing)"


class ServiceContainer:
    """One component of a docker stack, run from ``image`` with ``env`` on the host network."""

    def __init__(
        self,
        component: str,
        image: str,
        *,
        env: Mapping[str, str],
        labels: Mapping[str, str],
        probe: Probe,
        timeout: float = 120.0,
        name: str | None = None,
        cancel: threading.Event | None = None,
        command: list[str] | None = None,
        read_only_mounts: tuple[str, ...] = (),
    ) -> None:
        """``command``: arguments after the image's entrypoint; ``read_only_mounts``: host
        folders the container sees read-only at the same path."""
        self.component = component
        self.image = image
        self.probe = probe
        self.start_seconds: float | None = None
        self._removed = False
        self._strategy = ProbeWaitStrategy(component, probe, timeout=timeout, cancel=cancel)
        self._container = DockerContainer(
            image,
            env=dict(env),
            name=name,
            network_mode="host",
            labels=dict(labels),
            _wait_strategy=self._strategy,
        )
        if command:
            self._container.with_command(command)
        for folder in read_only_mounts:
            self._container.with_volume_mapping(folder, folder, "ro")

    @property
    def _wrapped(self) -> Any:
        return self._container.get_wrapped_container()

    @property
    def created(self) -> bool:
        """True once the engine has the container, until `remove`."""
        try:
            self._container.get_wrapped_container()
        except ContainerStartException:
            return False
        return not self._removed

    @property
    def short_id(self) -> str:
        """The container's short id ("" before it is created)."""
        return self._wrapped.short_id if self.created else ""

    @property
    def status(self) -> str:
        """The engine's view: created, running, exited, ... ("not created" before)."""
        if not self.created:
            return "not created"
        self._wrapped.reload()
        return str(self._wrapped.status)

    @property
    def pid(self) -> int | None:
        """The host pid of the container's main process (None when it does not run)."""
        if self.status != "running":
            return None
        return int(self._wrapped.attrs["State"]["Pid"]) or None

    @property
    def stop_signal(self) -> int:
        """The signal `docker stop` sends (the image's STOPSIGNAL, else SIGTERM)."""
        name = self._wrapped.attrs.get("Config", {}).get("StopSignal") or "SIGTERM"
        return int(signal.Signals[name]) if name in signal.Signals.__members__ else 15

    def start(self) -> ServiceContainer:
        """Create and start the container, then wait until its probe answers (StackStartError
        naming what was awaited and seen, with the container's last log lines, if not)."""
        started = time.monotonic()
        self._container.start()
        self.start_seconds = time.monotonic() - started
        return self

    def restart(self) -> None:
        """Stop (its stop signal; SIGKILL after STOP_SECONDS) and start the same container,
        keeping its data; wait until it answers again. Also starts a killed container."""
        self._wrapped.restart(timeout=STOP_SECONDS)
        self._strategy.wait_until_ready(self._container)

    def kill(self) -> None:
        """SIGKILL the container's processes, as a crash would; it is stopped afterwards."""
        self._wrapped.kill(signal="SIGKILL")
        wait_until(
            lambda: self.status,
            done=lambda status: status not in ("running", "restarting"),
            timeout=30.0,
            interval=0.1,
            expected=f"the {self.component} container to stop after SIGKILL",
        )

    def logs(self, lines: int = 50) -> str:
        """The container's last ``lines`` lines of output (stdout and stderr)."""
        if not self.created:
            return "(no container)"
        return _tail(self._wrapped, lines)

    def remove(self) -> None:
        """Remove the container and its anonymous volumes, running or not; safe to call twice."""
        if not self.created:
            return
        with contextlib.suppress(docker.errors.NotFound):
            self._container.stop(force=True, delete_volume=True)
        self._removed = True

    def __repr__(self) -> str:
        return f"<ServiceContainer {self.component} {self.image} {self.short_id or 'not created'}>"
