"""NativeStack: PostgreSQL, MariaDB, Kafka, Connect, the collector and Prometheus as child
processes under one temp dir."""

from __future__ import annotations

import os
import secrets
import shutil
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass, fields
from pathlib import Path

from cdc_support.endpoints import Endpoints
from pytest_cdc.ports import reserve_ports
from pytest_cdc.process import ServiceProcess
from pytest_cdc.stack.base import Backend, Progress, ServicesStack, StackInfo, component_names
from pytest_cdc.stack.native.kafka import connect_service, kafka_service
from pytest_cdc.stack.native.mariadb import (
    ADMIN_USER,
    CDC_USER,
    find_mariadb,
    mariadb_service,
    mariadb_version,
    mysql_dsn,
)
from pytest_cdc.stack.native.observability import (
    collector_service,
    find_prometheus,
    prometheus_service,
    prometheus_version,
)
from pytest_cdc.stack.native.postgres import (
    REPLICATION_ROLE,
    SUPERUSER,
    create_replication_role,
    postgres_dsn,
    postgres_service,
)
from pytest_cdc.stack.native.runtime import NativeRuntime, check_temp_dir, locate_runtime

HOST = "127.0.0.1"
"""Every native service binds here; Connect runs on this host too, so both views agree."""


class NativeBackend(Backend):
    """The native backend: the runtime in ``runtime_dir`` (jars) and the system's servers."""

    name = "native"

    def __init__(self, runtime_dir: Path, source: str, *, with_mysql: bool = True) -> None:
        self.runtime_dir = runtime_dir
        self.source = source
        self.with_mysql = with_mysql

    def versions(self) -> dict[str, str]:
        """Kafka, Connect, Debezium, PostgreSQL and MariaDB versions; RuntimeMissing naming
        the setup step when something is not installed."""
        return native_versions(locate_runtime(self.runtime_dir), with_mysql=self.with_mysql)

    def start(self, progress: Progress) -> NativeStack:
        """Start the processes (see `start_native_stack`)."""
        return start_native_stack(
            self.runtime_dir,
            backend_source=self.source,
            progress=progress,
            with_mysql=self.with_mysql,
        )


def native_versions(runtime: NativeRuntime, *, with_mysql: bool = True) -> dict[str, str]:
    """What the native stack runs, read from jar names and binaries (nothing is started)."""
    if not with_mysql:
        return runtime.versions()
    return {**runtime.versions(), "mariadb": mariadb_version(find_mariadb()[0])}


class NativeStack(ServicesStack):
    """A running native stack; `close()` stops every process and removes the temp dir."""

    def __init__(
        self,
        workdir: Path,
        services: dict[str, ServiceProcess],
        endpoints: Endpoints,
        info: StackInfo,
        *,
        keep_files: bool = False,
    ) -> None:
        self.workdir = workdir
        self.services = services
        self.endpoints = endpoints
        self.info = info
        self._keep_files = keep_files

    def detach(self) -> str:
        """Leave the processes running after this interpreter exits (--cdc-keep-stack).

        Returns the shell command that stops them, waits until they are gone, and only
        then removes their files.
        """
        from pytest_cdc.stack.native.stop import record_processes, stop_command  # also run as -m

        record_processes(self.workdir, self.services)
        for service in self.services.values():
            service.detach()
        self.services = {}
        self._keep_files = True
        return stop_command(self.workdir)

    def close(self) -> None:
        """Stop in reverse start order; every stop is attempted even if one fails."""
        errors: list[str] = []
        for name in reversed(list(self.services)):
            try:
                self.services[name].stop()
            except Exception as exc:
                errors.append(f"{name}: {exc}")
                self.services[name].kill()
        if not self._keep_files:
            shutil.rmtree(self.workdir, ignore_errors=True)
        if errors:
            raise RuntimeError("stopping the native stack: " + "; ".join(errors))


def start_native_stack(
    runtime_dir: Path,
    *,
    backend_source: str = "default",
    progress: Progress = print,
    timeout: float = 120.0,
    base_temp: Path | None = None,
    with_mysql: bool = True,
) -> NativeStack:
    """Start PostgreSQL, MariaDB and Kafka (in parallel), then Connect, then the collector and
    Prometheus; clean up on failure.

    ``with_mysql=False`` leaves MariaDB out (the endpoints then have no ``mysql_dsn``).

    Every account gets a password generated here; they are written to ``credentials.json``
    (mode 0600) in the stack dir and never printed.
    """
    runtime = locate_runtime(runtime_dir)
    prometheus = find_prometheus()  # RuntimeMissing naming `make setup` before anything starts
    if with_mysql:
        find_mariadb()
    check_temp_dir(base_temp)  # before anything starts: the database users must use it
    workdir = Path(tempfile.mkdtemp(prefix="cdc-stack-", dir=base_temp))
    passwords = {name: secrets.token_urlsafe(24) for name in ("pg", "pg_cdc", "root", "cdc")}
    ports = _Ports(*_free_ports(len(fields(_Ports))))
    endpoints = _endpoints(workdir, ports, passwords, with_mysql=with_mysql)
    started: dict[str, ServiceProcess] = {}
    created: list[ServiceProcess] = []  # all are killed on failure or Ctrl-C/SIGTERM
    t0 = time.monotonic()
    try:
        progress(f"cdc: starting native stack in {workdir}")
        pg = postgres_service(
            runtime.pg_bindir, workdir, ports.postgres, password=passwords["pg"], timeout=timeout
        )
        servers = [pg]
        if with_mysql:
            servers.append(
                mariadb_service(
                    workdir,
                    ports.mysql,
                    root_password=passwords["root"],
                    cdc_password=passwords["cdc"],
                    timeout=timeout,
                )
            )
        servers.append(
            kafka_service(
                runtime,
                workdir,
                ports.kafka,
                ports.controller,
                metrics_port=ports.kafka_metrics,
                timeout=timeout,
            )
        )
        _start_all(servers, created, started, progress)
        create_replication_role(endpoints.postgres_dsn, passwords["pg_cdc"])
        connect = connect_service(
            runtime,
            workdir,
            ports.connect,
            endpoints.kafka_bootstrap,
            metrics_port=ports.connect_metrics,
            timeout=timeout,
        )
        _start_all([connect], created, started, progress)
        jobs = {
            "kafka": f"{HOST}:{ports.kafka_metrics}",
            "connect": f"{HOST}:{ports.connect_metrics}",
            "collector": f"{HOST}:{ports.collector}",
        }
        watchers = [
            collector_service(workdir, ports.collector, endpoints, timeout=timeout),
            prometheus_service(prometheus, workdir, ports.prometheus, jobs, timeout=timeout),
        ]
        _start_all(watchers, created, started, progress)
    except BaseException:
        for svc in reversed(created):  # started or still starting when interrupted
            svc.kill()
        shutil.rmtree(workdir, ignore_errors=True)
        raise
    progress(f"cdc: native stack ready in {time.monotonic() - t0:.1f}s")
    write_credentials(Path(endpoints.credentials_file), endpoints)
    info = StackInfo(
        backend="native",
        backend_source=backend_source,
        versions={
            **native_versions(runtime, with_mysql=with_mysql),
            "prometheus": prometheus_version(prometheus),
        },
        start_seconds={name: round(svc.start_seconds or 0.0, 2) for name, svc in started.items()},
    )
    ordered = {name: started[name] for name in component_names(endpoints)}
    return NativeStack(workdir, ordered, endpoints, info)


@dataclass(frozen=True)
class _Ports:
    """The stack's ports on 127.0.0.1, all picked free before anything starts."""

    postgres: int
    mysql: int
    kafka: int
    controller: int
    connect: int
    kafka_metrics: int
    connect_metrics: int
    collector: int
    prometheus: int


def _endpoints(
    workdir: Path, ports: _Ports, passwords: dict[str, str], *, with_mysql: bool
) -> Endpoints:
    return Endpoints(
        postgres_dsn=postgres_dsn(ports.postgres, password=passwords["pg"]),
        kafka_bootstrap=f"{HOST}:{ports.kafka}",
        connect_url=f"http://{HOST}:{ports.connect}",
        postgres_host=HOST,
        postgres_port=ports.postgres,
        postgres_user=SUPERUSER,
        postgres_password=passwords["pg"],
        postgres_cdc_user=REPLICATION_ROLE,
        postgres_cdc_password=passwords["pg_cdc"],
        mysql_dsn=mysql_dsn(ports.mysql, ADMIN_USER, passwords["root"]) if with_mysql else None,
        mysql_host=HOST,
        mysql_port=ports.mysql,
        mysql_cdc_user=CDC_USER,
        mysql_cdc_password=passwords["cdc"] if with_mysql else "",
        credentials_file=str(workdir / "credentials.json"),
        prometheus_url=f"http://{HOST}:{ports.prometheus}",
        kafka_metrics_url=f"http://{HOST}:{ports.kafka_metrics}/metrics",
        connect_metrics_url=f"http://{HOST}:{ports.connect_metrics}/metrics",
        collector_url=f"http://{HOST}:{ports.collector}/metrics",
        scrape_targets_dir=str(workdir / "prometheus" / "targets"),
        log_dir=str(workdir / "logs"),
    )


def _start_all(
    services: list[ServiceProcess],
    created: list[ServiceProcess],
    started: dict[str, ServiceProcess],
    progress: Progress,
) -> None:
    """Start ``services`` in parallel; raise the first failure once all have finished.

    On Ctrl-C/SIGTERM the services are killed first, which ends the starts still waiting, so
    the threads are joined at once rather than after every service became ready.
    """
    created += services
    pool = ThreadPoolExecutor(max_workers=len(services))
    try:
        futures = {svc.name: pool.submit(_start, svc, progress) for svc in services}
        wait(futures.values())
    except BaseException:
        for svc in services:
            svc.kill()
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    pool.shutdown()
    for name, future in futures.items():
        if future.exception() is None:
            started[name] = future.result()
    for future in futures.values():
        if future.exception() is not None:
            raise future.exception()  # type: ignore[misc]


def write_credentials(path: Path, endpoints: Endpoints) -> None:
    """The endpoints with their passwords, as JSON only the owner can read (mode 0600)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(endpoints.to_json())


def _start(service: ServiceProcess, progress: Progress) -> ServiceProcess:
    progress(f"cdc:   {service.name}: starting")
    service.start()
    progress(f"cdc:   {service.name}: ready in {service.start_seconds:.1f}s (pid {service.pid})")
    return service


def _free_ports(count: int) -> list[int]:
    return sorted(reserve_ports(count))
