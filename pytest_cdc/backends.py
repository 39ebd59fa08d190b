"""Choosing a stack backend by name and starting it (native and external now; docker later).

`open_stack` is the one way a stack is started: the plugin's session state and `make bench`
both call it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from pytest_cdc.errors import BackendNotAvailable
from pytest_cdc.options import ExternalSettings, Setting
from pytest_cdc.stack.base import Backend, Progress, Stack


def docker_engine_answers() -> bool:
    """True when a Docker engine answers `docker info` within a few seconds."""
    if not shutil.which("docker") or not (
        os.environ.get("DOCKER_HOST") or Path("/var/run/docker.sock").exists()
    ):
        return False
    try:
        result = subprocess.run(["docker", "info"], capture_output=True, timeout=5)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return result.returncode == 0


def effective_backend(setting: Setting) -> tuple[str, str]:
    """The backend that will run and why, e.g. ("native", "auto: no Docker engine")."""
    if setting.value != "auto":
        return setting.value, f"from {setting.source}"
    if docker_engine_answers():
        return "native", f"auto (from {setting.source}): docker backend not available yet"
    return "native", f"auto (from {setting.source}): no Docker engine answers"


class UnavailableBackend(Backend):
    """A backend this version cannot run yet: no versions, and starting it says so."""

    def __init__(self, name: str, source: str) -> None:
        self.name = name
        self.source = source

    def versions(self) -> dict[str, str]:
        return {}

    def start(self, progress: Progress) -> Stack:
        raise BackendNotAvailable(
            f"cdc backend {self.name!r} ({self.source}) is not available yet in this version of "
            "cdc-spec; use --cdc-backend=native (PostgreSQL, Kafka and Connect as local processes)."
        )


def backend_for(
    setting: Setting,
    runtime_dir: Path,
    external: ExternalSettings | None = None,
    *,
    with_mysql: bool = True,
) -> Backend:
    """The backend object for a resolved `--cdc-backend` setting (`auto` resolved here);
    ``external``: where an external stack's endpoints come from (default: the `cdc-spec up`
    record); ``with_mysql=False``: a native stack without MariaDB."""
    name, why = effective_backend(setting)
    if name == "native":
        from pytest_cdc.stack.native import NativeBackend

        return NativeBackend(runtime_dir, why, with_mysql=with_mysql)
    if name == "external":
        from pytest_cdc.stack.external import ExternalBackend

        return ExternalBackend(external or ExternalSettings(), why)
    return UnavailableBackend(name, why)


def open_stack(
    setting: Setting,
    runtime_dir: Path,
    progress: Progress,
    external: ExternalSettings | None = None,
    *,
    with_mysql: bool = True,
) -> Stack:
    """Start the stack of the chosen backend (a usage error for backends not built yet)."""
    return backend_for(setting, runtime_dir, external, with_mysql=with_mysql).start(progress)
