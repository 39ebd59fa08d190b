"""Prometheus and cdc-spec's collector as child processes of the native stack.

Prometheus is Debian's package (``/usr/bin/prometheus``, 2.42); the collector is
``cdc-spec collector`` from this installation. Both bind 127.0.0.1 on ports chosen by the
stack, log JSON lines to ``<stack dir>/logs/<name>.log`` and answer a readiness URL; their
arguments are the docker backend's too (:mod:`pytest_cdc.stack.monitoring`).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from cdc_support.endpoints import Endpoints
from pytest_cdc.errors import RuntimeMissing
from pytest_cdc.process import ServiceProcess, cdc_spec_command
from pytest_cdc.stack.monitoring import (
    collector_arguments,
    collector_environment,
    prepare_prometheus,
    prometheus_arguments,
)
from pytest_cdc.stack.probes import HttpProbe

HOST = "127.0.0.1"


def find_prometheus() -> Path:
    """The Prometheus server binary; RuntimeMissing naming `make setup` when absent."""
    found = shutil.which("prometheus")
    if not found:
        raise RuntimeMissing(
            "no `prometheus` binary on PATH: run `make setup` in the cdc-spec checkout "
            "(installs the Debian package prometheus), or `apt-get install prometheus`."
        )
    return Path(found)


def prometheus_version(binary: Path) -> str:
    """``prometheus --version``'s number (``2.42.0+ds``), or "?"."""
    try:
        out = subprocess.run(
            [str(binary), "--version"], capture_output=True, text=True, timeout=10
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return "?"
    words = out.split()
    return words[2] if len(words) > 2 and words[0] == "prometheus," else "?"


def prometheus_service(
    binary: Path, workdir: Path, port: int, jobs: dict[str, str], *, timeout: float
) -> ServiceProcess:
    """Prometheus scraping ``jobs`` {job: "host:port"} and the sink workers' target files;
    `start()` it."""
    home = prepare_prometheus(workdir, jobs)
    ready = HttpProbe(f"http://{HOST}:{port}/-/ready")
    return ServiceProcess(
        "prometheus",
        [
            str(binary),
            f"--storage.tsdb.path={home.folder / 'data'}",
            "--log.format=json",
            *prometheus_arguments(home, port),
        ],
        log_path=workdir / "logs" / "prometheus.log",
        probe=lambda _: ready.check(),
        awaited=ready.awaited,
        timeout=timeout,
        hint="Prometheus needs a free port and its config; see its log.",
    )


def collector_service(
    workdir: Path, port: int, endpoints: Endpoints, *, timeout: float
) -> ServiceProcess:
    """``cdc-spec collector`` over the stack's databases and broker; `start()` it."""
    ready = HttpProbe(f"http://{HOST}:{port}/metrics")
    return ServiceProcess(
        "collector",
        [*cdc_spec_command(), *collector_arguments(port, endpoints)],
        log_path=workdir / "logs" / "collector.log",
        probe=lambda _: ready.check(),
        awaited=ready.awaited,
        timeout=timeout,
        env=collector_environment(endpoints),
        hint="see the collector's log; `cdc-spec collector --help` lists its options.",
    )
