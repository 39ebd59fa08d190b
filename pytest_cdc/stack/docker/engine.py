"""Is a Docker engine answering, and a client for it (docker-py, as testcontainers uses it).

Importing this module sets ``TESTCONTAINERS_RYUK_DISABLED=true`` before testcontainers is
imported anywhere in the docker backend: the Ryuk reaper image cannot be pulled here, so the
backend removes its containers itself (by label, see :mod:`.cleanup`).
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import TYPE_CHECKING

from pytest_cdc.errors import CdcSetupError

os.environ["TESTCONTAINERS_RYUK_DISABLED"] = "true"

if TYPE_CHECKING:
    import docker

DEFAULT_SOCKET = Path("/var/run/docker.sock")
ANSWER_SECONDS = 3.0
"""How long `docker_engine_answers` waits for the engine's ping."""
CLIENT_SECONDS = 120
"""Timeout of the client's API calls (a restart waits for the container to stop)."""


class EngineUnavailable(CdcSetupError):
    """No Docker engine answers; the one-line message names `make setup`."""


def _engine_configured() -> bool:
    return bool(os.environ.get("DOCKER_HOST")) or DEFAULT_SOCKET.exists()


def docker_engine_answers(timeout: float = ANSWER_SECONDS) -> bool:
    """True when a Docker engine (``DOCKER_HOST``, else the default socket) answers a ping
    within ``timeout`` seconds."""
    if not _engine_configured():
        return False
    import docker

    try:
        client = docker.from_env(timeout=max(1, round(timeout)))
    except docker.errors.DockerException:
        return False
    try:
        return bool(client.ping())
    except Exception:  # requests' connection errors, APIError: it does not answer
        return False
    finally:
        client.close()


def where() -> str:
    """Where the engine is looked for, for messages."""
    return os.environ.get("DOCKER_HOST") or f"unix://{DEFAULT_SOCKET}"


def require_engine(for_what: str = "the docker backend") -> None:
    """Raise EngineUnavailable (one line naming `make setup`) when no engine answers."""
    if not docker_engine_answers():
        raise EngineUnavailable(
            f"{for_what} needs a Docker engine and none answers at {where()}: run `make setup` "
            "(it starts one), or use --cdc-backend=native"
        )


@functools.cache
def engine_client() -> docker.DockerClient:
    """A docker-py client of the engine (one per process); EngineUnavailable if none answers."""
    require_engine()
    import docker

    return docker.from_env(timeout=CLIENT_SECONDS)
