"""Choosing a stack backend by name (`auto` resolved here) and starting it.

`open_stack` is the one way a stack is started: the plugin's session state and `make bench`
both call it.
"""

from __future__ import annotations

from pathlib import Path

from pytest_cdc.options import ExternalSettings, Setting, check_backend
from pytest_cdc.stack.base import Backend, Progress, Stack


def effective_backend(setting: Setting) -> tuple[str, str]:
    """The backend that will run and why, e.g. ("native", "auto (from default): no Docker
    engine answers"). `auto` is docker when an engine answers and the images are built."""
    if setting.value != "auto":
        return setting.value, f"from {setting.source}"
    from pytest_cdc.stack.docker.engine import docker_engine_answers

    auto = f"auto (from {setting.source})"
    if not docker_engine_answers():
        return "native", f"{auto}: no Docker engine answers"
    from pytest_cdc.stack.docker.images import missing_images

    missing = missing_images()
    if missing:
        return "native", (
            f"{auto}: Docker engine answers but images missing: {', '.join(missing)}; "
            "run make setup"
        )
    return "docker", f"{auto}: Docker engine answers and the cdc-spec images are built"


def backend_for(
    setting: Setting,
    runtime_dir: Path,
    external: ExternalSettings | None = None,
    *,
    with_mysql: bool = True,
) -> Backend:
    """The backend object for a resolved `--cdc-backend` setting (`auto` resolved here);
    ``external``: where an external stack's endpoints come from (default: the `cdc-spec up`
    record); ``with_mysql=False``: a native or docker stack without MariaDB."""
    name, why = effective_backend(setting)
    if name == "native":
        from pytest_cdc.stack.native import NativeBackend

        return NativeBackend(runtime_dir, why, with_mysql=with_mysql)
    if name == "docker":
        from pytest_cdc.stack.docker.stack import DockerBackend

        return DockerBackend(why, with_mysql=with_mysql)
    check_backend(setting)  # a usage error listing the allowed names
    from pytest_cdc.stack.external import ExternalBackend

    return ExternalBackend(external or ExternalSettings(), why)


def open_stack(
    setting: Setting,
    runtime_dir: Path,
    progress: Progress,
    external: ExternalSettings | None = None,
    *,
    with_mysql: bool = True,
) -> Stack:
    """Start the stack of the chosen backend (CdcSetupError naming the fix when it cannot)."""
    return backend_for(setting, runtime_dir, external, with_mysql=with_mysql).start(progress)
