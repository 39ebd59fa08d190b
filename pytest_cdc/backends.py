"""Choosing and starting a stack backend (native now; docker and external come later)."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

from pytest_cdc.errors import BackendNotAvailable
from pytest_cdc.options import Setting
from pytest_cdc.stack import Stack


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


def open_stack(setting: Setting, runtime_dir: Path, progress: Callable[[str], None]) -> Stack:
    """Start the stack of the chosen backend; raise a usage error for backends not built yet."""
    backend, why = effective_backend(setting)
    if backend == "native":
        from pytest_cdc.native import start_native_stack

        return start_native_stack(runtime_dir, backend_source=why, progress=progress)
    raise BackendNotAvailable(
        f"cdc backend {backend!r} ({why}) is not available yet in this version of cdc-spec; "
        "use --cdc-backend=native (PostgreSQL, Kafka and Connect as local processes)."
    )
