"""DockerBackend and DockerStack: PostgreSQL, MariaDB, Kafka, Connect, the collector and
Prometheus as containers.

The containers run the cdc-spec images (:mod:`.images`) on the host network, each service
bound to 127.0.0.1 on a free port given in its environment, so the endpoints look exactly
like the native stack's. Passwords are generated per stack and written to ``credentials.json``
(mode 0600) in the stack's temp dir. Every container is labelled with the stack's session
(:func:`.containers.labels_for`) and removed by `close()`, also after a failed or interrupted
start; what a killed run leaves behind is removed as an orphan when the next stack starts.
"""

from __future__ import annotations

import json
import secrets
import shutil
import tempfile
import threading
import time
from collections.abc import Iterable
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from pathlib import Path
from typing import Any

from cdc_support.endpoints import Endpoints
from pytest_cdc.stack.base import Backend, Progress, ServicesStack, StackInfo, component_names
from pytest_cdc.stack.docker import cleanup, images
from pytest_cdc.stack.docker.containers import (
    SESSION_LABEL,
    Cancelled,
    ServiceContainer,
    labels_for,
)
from pytest_cdc.stack.docker.engine import engine_client, require_engine
from pytest_cdc.stack.monitoring import (
    PrometheusHome,
    collector_arguments,
    collector_environment,
    prepare_prometheus,
    prometheus_arguments,
)
from pytest_cdc.stack.native.mariadb import ADMIN_USER, CDC_USER, mysql_dsn
from pytest_cdc.stack.native.postgres import REPLICATION_ROLE, SUPERUSER, postgres_dsn
from pytest_cdc.stack.native.stack import _free_ports, write_credentials
from pytest_cdc.stack.native.stop import record_processes
from pytest_cdc.stack.probes import endpoint_probes

HOST = "127.0.0.1"
VERSIONS_LABEL = "org.cdc-spec.component-versions"
"""Image label: JSON of the versions the image runs, e.g. {"postgres": "15.14"}."""
VERSION_ORDER = (
    "kafka",
    "connect",
    "debezium",
    "postgres",
    "jmx_exporter",
    "mariadb",
    "prometheus",
)
"""The header's order (the native backend's)."""


PORTS = (
    "pg", "my", "kafka", "controller", "connect", "kafka_metrics", "connect_metrics",
    "collector", "prometheus",
)  # fmt: skip
WATCHERS = ("collector", "prometheus")
"""Started last, once what they watch answers."""


def stack_images(*, with_mysql: bool = True) -> tuple[str, ...]:
    """The images a stack runs, by short name, in start order (the collector runs in the
    sink image)."""
    return (
        "postgres",
        *(("mariadb",) if with_mysql else ()),
        "kafka",
        "connect",
        "sink",
        "prometheus",
    )


def _image_of(component: str) -> str:
    return "sink" if component == "collector" else component


class DockerBackend(Backend):
    """The docker backend: the cdc-spec images on the local Docker engine."""

    name = "docker"

    def __init__(self, source: str, *, with_mysql: bool = True) -> None:
        self.source = source
        self.with_mysql = with_mysql

    def versions(self) -> dict[str, str]:
        """Component versions from the images' labels (no container starts); EngineUnavailable
        or ImagesMissing, naming `make setup`, when the stack cannot run."""
        require_engine(f"the docker backend ({self.source})")
        found: dict[str, str] = {}
        for name in stack_images(with_mysql=self.with_mysql):
            labels = engine_client().images.get(images.image_ref(name)).labels or {}
            found.update(json.loads(labels.get(VERSIONS_LABEL) or "{}"))
        order = [key for key in VERSION_ORDER if key in found]
        return {key: found[key] for key in [*order, *sorted(set(found) - set(order))]}

    def start(self, progress: Progress) -> DockerStack:
        """Start the containers (see `start_docker_stack`)."""
        return start_docker_stack(
            backend_source=self.source, progress=progress, with_mysql=self.with_mysql
        )


class DockerStack(ServicesStack):
    """A running docker stack; `close()` removes every container and the temp dir."""

    def __init__(
        self,
        session: str,
        workdir: Path,
        containers: dict[str, ServiceContainer],
        endpoints: Endpoints,
        info: StackInfo,
    ) -> None:
        self.session = session
        self.workdir = workdir
        self.services = containers
        self.endpoints = endpoints
        self.info = info

    @property
    def containers(self) -> dict[str, ServiceContainer]:
        """The component containers by name (the stack's services)."""
        return self.services  # type: ignore[return-value]

    def detach(self) -> str:
        """Leave the containers running after this session (--cdc-keep-stack); returns the
        shell command that removes them and the stack's temp dir."""
        record_processes(self.workdir, self.containers)  # `cdc-spec status` sees them run
        (self.workdir / cleanup.DETACHED).touch()  # not an orphan when this process exits
        self.services = {}
        return remove_command(self.session, self.workdir)

    def close(self) -> None:
        """Remove every container (each is attempted even if one fails), then any other
        container of the session, then the temp dir."""
        errors = remove_all(self.session, self.containers.values())
        self.services = {}
        shutil.rmtree(self.workdir, ignore_errors=True)
        if errors:
            raise RuntimeError("removing the docker stack: " + "; ".join(errors))


def remove_command(session: str, workdir: Path) -> str:
    """The shell command that removes a session's containers and its temp dir."""
    return (
        f"docker rm -f -v $(docker ps -aq --filter label={SESSION_LABEL}={session}) "
        f"&& rm -rf {workdir}"
    )


def remove_all(session: str, containers: Iterable[ServiceContainer]) -> list[str]:
    """Remove the given containers, then whatever else carries the session's label (one
    created while the start was interrupted); what failed, one entry per container."""
    errors = []
    for container in reversed(list(containers)):
        try:
            container.remove()
        except Exception as exc:
            errors.append(f"{container.component}: {exc}")
    try:
        cleanup.remove_containers(session)
    except Exception as exc:
        errors.append(f"session {session}: {exc}")
    return errors


def start_docker_stack(
    *,
    backend_source: str = "default",
    progress: Progress = print,
    timeout: float = 120.0,
    base_temp: Path | None = None,
    with_mysql: bool = True,
) -> DockerStack:
    """Start PostgreSQL, MariaDB and Kafka (in parallel), then Connect, then the collector and
    Prometheus; remove every container on failure or interruption. ``with_mysql=False`` leaves
    MariaDB out.

    Passwords are generated here, written to ``credentials.json`` (mode 0600) in the stack's
    temp dir and passed to the containers in their environment; never printed.
    """
    require_engine(f"the docker backend ({backend_source})")
    refs = {name: images.image_ref(name) for name in stack_images(with_mysql=with_mysql)}
    versions = DockerBackend(backend_source, with_mysql=with_mysql).versions()
    for line in cleanup.remove_orphans():
        progress(f"cdc: {line} (left by a run that is gone)")
    session = secrets.token_hex(6)
    passwords = {name: secrets.token_urlsafe(24) for name in ("pg", "pg_cdc", "root", "cdc")}
    ports = dict(zip(PORTS, _free_ports(len(PORTS)), strict=True))
    cancel = threading.Event()
    containers: dict[str, ServiceContainer] = {}
    workdir = Path(tempfile.mkdtemp(prefix=cleanup.WORKDIR_PREFIX, dir=base_temp))
    t0 = time.monotonic()
    try:
        credentials = workdir / "credentials.json"
        endpoints = _endpoints(ports, passwords, credentials, workdir, with_mysql=with_mysql)
        home = prepare_prometheus(
            workdir,
            {job: f"{HOST}:{ports[port]}" for job, port in SCRAPED.items()},
        )
        probes = endpoint_probes(endpoints)
        for name in component_names(endpoints):
            containers[name] = ServiceContainer(
                name,
                refs[_image_of(name)],
                labels=labels_for(session, name, str(workdir)),
                probe=probes[name],
                timeout=timeout,
                name=f"cdc-spec-{session}-{name}",
                cancel=cancel,
                **_runs(name, ports, passwords, endpoints, home),
            )
        progress(f"cdc: starting docker stack (session {session}) in {workdir}")
        first = [c for n, c in containers.items() if n not in ("connect", *WATCHERS)]
        _start_together(first, cancel, progress)
        _start(containers["connect"], progress)
        _start_together([containers[n] for n in WATCHERS], cancel, progress)
        write_credentials(credentials, endpoints)
    except BaseException:
        cancel.set()
        remove_all(session, containers.values())
        shutil.rmtree(workdir, ignore_errors=True)
        raise
    progress(f"cdc: docker stack ready in {time.monotonic() - t0:.1f}s")
    info = StackInfo(
        backend="docker",
        backend_source=backend_source,
        versions=versions,
        start_seconds={n: round(c.start_seconds or 0.0, 2) for n, c in containers.items()},
    )
    return DockerStack(session, workdir, containers, endpoints, info)


def _endpoints(
    ports: dict[str, int],
    passwords: dict[str, str],
    credentials: Path,
    workdir: Path,
    *,
    with_mysql: bool,
) -> Endpoints:
    """Where the containers answer (on the host network: the native stack's shape)."""
    return Endpoints(
        postgres_dsn=postgres_dsn(ports["pg"], password=passwords["pg"]),
        kafka_bootstrap=f"{HOST}:{ports['kafka']}",
        connect_url=f"http://{HOST}:{ports['connect']}",
        postgres_host=HOST,
        postgres_port=ports["pg"],
        postgres_user=SUPERUSER,
        postgres_password=passwords["pg"],
        postgres_cdc_user=REPLICATION_ROLE,
        postgres_cdc_password=passwords["pg_cdc"],
        mysql_dsn=mysql_dsn(ports["my"], ADMIN_USER, passwords["root"]) if with_mysql else None,
        mysql_host=HOST,
        mysql_port=ports["my"],
        mysql_cdc_user=CDC_USER,
        mysql_cdc_password=passwords["cdc"] if with_mysql else "",
        credentials_file=str(credentials),
        prometheus_url=f"http://{HOST}:{ports['prometheus']}",
        kafka_metrics_url=f"http://{HOST}:{ports['kafka_metrics']}/metrics",
        connect_metrics_url=f"http://{HOST}:{ports['connect_metrics']}/metrics",
        collector_url=f"http://{HOST}:{ports['collector']}/metrics",
        scrape_targets_dir=str(PrometheusHome(workdir / "prometheus").targets),
        log_dir=str(workdir / "logs"),
    )


SCRAPED = {"kafka": "kafka_metrics", "connect": "connect_metrics", "collector": "collector"}
"""Prometheus job -> the port it scrapes."""


def _runs(
    name: str,
    ports: dict[str, int],
    passwords: dict[str, str],
    endpoints: Endpoints,
    home: PrometheusHome,
) -> dict[str, Any]:
    """How the container of component ``name`` runs: environment, command, mounts."""
    if name == "collector":
        return {
            "env": collector_environment(endpoints),
            "command": collector_arguments(ports["collector"], endpoints),
        }
    if name == "prometheus":
        return {
            "env": {},
            "command": prometheus_arguments(home, ports["prometheus"]),
            "read_only_mounts": (str(home.folder),),
        }
    return {"env": _environment(ports, passwords)[name]}


def _environment(ports: dict[str, int], passwords: dict[str, str]) -> dict[str, dict[str, str]]:
    """Each image's environment (see docker/ and the contract of the images)."""
    return {
        "postgres": {
            "PGPORT": str(ports["pg"]),
            "POSTGRES_PASSWORD": passwords["pg"],
            "CDC_REPLICATION_PASSWORD": passwords["pg_cdc"],
        },
        "mariadb": {
            "MARIADB_PORT": str(ports["my"]),
            "MARIADB_ROOT_PASSWORD": passwords["root"],
            "MARIADB_CDC_PASSWORD": passwords["cdc"],
        },
        "kafka": {
            "KAFKA_PORT": str(ports["kafka"]),
            "KAFKA_CONTROLLER_PORT": str(ports["controller"]),
            "METRICS_PORT": str(ports["kafka_metrics"]),
        },
        "connect": {
            "CONNECT_PORT": str(ports["connect"]),
            "KAFKA_BOOTSTRAP": f"{HOST}:{ports['kafka']}",
            "METRICS_PORT": str(ports["connect_metrics"]),
        },
    }


def _start(container: ServiceContainer, progress: Progress) -> ServiceContainer:
    progress(f"cdc:   {container.component}: starting ({container.image})")
    container.start()
    progress(
        f"cdc:   {container.component}: ready in {container.start_seconds:.1f}s "
        f"(container {container.short_id})"
    )
    return container


def _start_together(
    containers: list[ServiceContainer], cancel: threading.Event, progress: Progress
) -> None:
    """Start the containers in parallel; on the first failure (or Ctrl-C/SIGTERM) the others
    stop waiting, and the failure (not a cancelled wait) is raised."""
    pool = ThreadPoolExecutor(max_workers=len(containers), thread_name_prefix="cdc-docker")
    futures: list[Future[ServiceContainer]] = []
    try:
        futures = [pool.submit(_start, c, progress) for c in containers]
        done, _ = wait(futures, return_when=FIRST_EXCEPTION)
        if any(f.exception() for f in done):
            cancel.set()
            wait(futures)
            errors = [f.exception() for f in futures if f.exception() is not None]
            raise next((e for e in errors if not isinstance(e, Cancelled)), errors[0])  # type: ignore[misc]
    except BaseException:
        cancel.set()
        raise
    finally:
        pool.shutdown(wait=True)
