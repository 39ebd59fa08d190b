"""cdc-spec containers found by label and removed: Ryuk cannot run here, so this reaps them.

Every container a docker stack (or a sink worker) starts is labelled with its session, its
owner process and start time, and the host (:func:`.containers.labels_for`). A container is
*orphaned* when it was started on this host by a process that is gone (a run killed with
SIGKILL, a crashed interpreter) and its stack was not left running on purpose
(``--cdc-keep-stack`` / `cdc-spec up` mark the stack's dir, see :data:`DETACHED`). Orphans
are removed when a docker stack starts and by `cdc-spec down`, which also removes the stacks
left running on purpose. Containers of a live session, or of another host, are never touched.
"""

from __future__ import annotations

import shutil
import socket
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import docker.errors
import psutil

from pytest_cdc.stack.docker.containers import (
    COMPONENT_LABEL,
    HOST_LABEL,
    OWNER_PID_LABEL,
    OWNER_START_LABEL,
    SESSION_LABEL,
    WORKDIR_LABEL,
)
from pytest_cdc.stack.docker.engine import engine_client

DETACHED = "detached"
"""A file in a stack's dir saying the stack was left running on purpose."""
WORKDIR_PREFIX = "cdc-docker-"
SINK_DIR_PREFIX = "cdc-sink-"
"""A sink worker's folder (pytest_cdc.fixtures.sinks), removed with its orphaned container."""
"""The docker stack's temp dir name starts so (only such dirs are removed with orphans)."""


def labelled_containers(label: str) -> list[Any]:
    """The containers (running or not) carrying ``label`` (``key`` or ``key=value``); one
    removed while being listed is left out rather than failing the listing."""
    return list(
        engine_client().containers.list(all=True, filters={"label": label}, ignore_removed=True)
    )


def find_containers(session: str | None = None) -> list[Any]:
    """The cdc-spec containers (running or not) of ``session``, or of every session."""
    return labelled_containers(f"{SESSION_LABEL}={session}" if session else SESSION_LABEL)


def describe(container: Any) -> str:
    """``name (component, session S)`` for messages."""
    labels = container.labels
    return (
        f"{container.name} ({labels.get(COMPONENT_LABEL, '?')}, "
        f"session {labels.get(SESSION_LABEL, '?')})"
    )


def remove(containers: Iterable[Any]) -> list[str]:
    """Remove each container with its anonymous volumes (every one attempted); one line per
    container. RuntimeError naming those that could not be removed."""
    lines, failed = [], []
    for container in containers:
        try:
            container.remove(force=True, v=True)
        except docker.errors.NotFound:
            pass  # already gone (removed by its stack meanwhile)
        except docker.errors.DockerException as exc:
            failed.append(f"{describe(container)}: {exc}")
            continue
        lines.append(f"removed container {describe(container)}")
    if failed:
        raise RuntimeError("could not remove " + "; ".join(failed))
    return lines


def remove_containers(session: str | None = None) -> list[str]:
    """Remove the containers of ``session`` (None: of every cdc-spec session); one line each."""
    return remove(find_containers(session))


def owner_alive(labels: dict[str, str]) -> bool:
    """True when the process that started the container runs (same pid and start time)."""
    try:
        proc = psutil.Process(int(labels.get(OWNER_PID_LABEL, "")))
        if proc.status() == psutil.STATUS_ZOMBIE:
            return False
        started = labels.get(OWNER_START_LABEL)
        return started is None or abs(proc.create_time() - float(started)) < 1.0
    except (ValueError, psutil.Error):
        return False


def is_detached(labels: dict[str, str]) -> bool:
    """True when the container's stack was left running on purpose."""
    workdir = labels.get(WORKDIR_LABEL)
    return bool(workdir) and (Path(workdir) / DETACHED).exists()


def leftovers(*, include_detached: bool = False) -> list[Any]:
    """Containers started on this host whose owner is gone (orphans; with
    ``include_detached`` also the stacks left running on purpose)."""
    host = socket.gethostname()
    found = []
    for container in find_containers():
        labels = container.labels
        if OWNER_PID_LABEL not in labels or labels.get(HOST_LABEL) != host:
            continue  # not started by a stack (a compose project), or on another host
        if owner_alive(labels):
            continue
        if include_detached or not is_detached(labels):
            found.append(container)
    return found


def remove_orphans(*, include_detached: bool = False) -> list[str]:
    """Remove the orphaned containers (see :func:`leftovers`) and their stacks' temp dirs;
    one line per thing removed."""
    found = leftovers(include_detached=include_detached)
    lines = remove(found)
    for workdir in sorted({c.labels.get(WORKDIR_LABEL, "") for c in found} - {""}):
        if _remove_workdir(Path(workdir)):
            lines.append(f"removed {workdir}")
    return lines


def remove_stack_in(workdir: Path) -> list[str]:
    """Remove the containers of the stack whose temp dir is ``workdir`` (a recorded stack),
    then the dir; one line per thing removed."""
    lines = remove(labelled_containers(f"{WORKDIR_LABEL}={workdir}"))
    if _remove_workdir(workdir):
        lines.append(f"removed {workdir}")
    return lines


def _remove_workdir(path: Path) -> bool:
    """Remove a docker stack's temp dir or a sink worker's folder (only a dir named like one)."""
    if not path.name.startswith((WORKDIR_PREFIX, SINK_DIR_PREFIX)) or not path.is_dir():
        return False
    shutil.rmtree(path, ignore_errors=True)
    return not path.exists()
