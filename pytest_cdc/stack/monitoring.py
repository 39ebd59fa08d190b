"""Prometheus for a stack: its scrape configuration, and the sink workers' target files.

Prometheus scrapes fixed jobs (``kafka``, ``connect``: the JMX exporter agents; ``collector``:
cdc-spec's collector) at addresses known when the stack starts, and job ``sink`` from
``file_sd`` files in the stack's ``scrape_targets_dir``: a sink worker, started later by a
scenario, writes one file naming its metrics address and removes it when it stops.
Prometheus re-reads that folder when it changes. The same configuration serves both backends:
on docker the Prometheus container sees the stack dir at the same path (a bind mount).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from cdc_support.checkpoint import write_atomically
from cdc_support.endpoints import Endpoints

HOST = "127.0.0.1"
RETENTION = "2h"
"""A stack lives for one run; two hours of 1 s samples is plenty and bounds the disk."""
SCRAPE_INTERVAL = "1s"
"""Scenarios last seconds: a slower scrape would miss what they show."""
SINK_JOB = "sink"
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")


def scrape_config(jobs: dict[str, str], targets_dir: Path) -> str:
    """prometheus.yml (as JSON, which YAML reads) for ``jobs`` {job: "host:port"} and the
    sink workers' file_sd folder."""
    scrape_configs: list[dict[str, object]] = [
        {"job_name": job, "static_configs": [{"targets": [address]}]}
        for job, address in jobs.items()
    ]
    scrape_configs.append(
        {
            "job_name": SINK_JOB,
            "file_sd_configs": [{"files": [str(targets_dir / "*.json")], "refresh_interval": "1s"}],
        }
    )
    config = {
        "global": {"scrape_interval": SCRAPE_INTERVAL, "evaluation_interval": SCRAPE_INTERVAL},
        "scrape_configs": scrape_configs,
    }
    return json.dumps(config, indent=2) + "\n"


@dataclass(frozen=True)
class PrometheusHome:
    """``<stack dir>/prometheus``: the configuration file and the sink workers' targets."""

    folder: Path

    @property
    def config(self) -> Path:
        return self.folder / "prometheus.yml"

    @property
    def targets(self) -> Path:
        return self.folder / "targets"


def prepare_prometheus(workdir: Path, jobs: dict[str, str]) -> PrometheusHome:
    """Write the scrape configuration for ``jobs`` {job: "host:port"} and make the targets
    folder, both readable by another user (the Prometheus container runs as one)."""
    home = PrometheusHome(workdir / "prometheus")
    home.targets.mkdir(parents=True, exist_ok=True)
    for folder in (home.folder, home.targets):
        folder.chmod(0o755)
    home.config.write_text(scrape_config(jobs, home.targets))
    home.config.chmod(0o644)
    return home


def prometheus_arguments(home: PrometheusHome, port: int) -> list[str]:
    """Prometheus' arguments (after the binary, its data path and log format): this config,
    127.0.0.1:``port``, bounded retention."""
    return [
        f"--config.file={home.config}",
        f"--web.listen-address={HOST}:{port}",
        f"--storage.tsdb.retention.time={RETENTION}",
    ]


def collector_arguments(port: int, endpoints: Endpoints) -> list[str]:
    """``cdc-spec``'s arguments that run the collector on 127.0.0.1:``port``."""
    return [
        "collector",
        f"--host={HOST}",
        f"--port={port}",
        f"--kafka-bootstrap={endpoints.kafka_bootstrap}",
    ]


def collector_environment(endpoints: Endpoints) -> dict[str, str]:
    """The DSNs, by environment: no password shows in the process table."""
    env = {"CDC_COLLECTOR_POSTGRES_DSN": endpoints.postgres_dsn}
    if endpoints.mysql_dsn:
        env["CDC_COLLECTOR_MYSQL_DSN"] = endpoints.mysql_dsn
    return env


@dataclass(frozen=True)
class ScrapeTarget:
    """One registered target: its file in the targets folder; ``remove()`` unregisters it."""

    path: Path

    def remove(self) -> None:
        """Delete the target file: Prometheus stops scraping it at its next refresh."""
        self.path.unlink(missing_ok=True)


def register_target(
    targets_dir: str | Path, name: str, address: str, labels: dict[str, str] | None = None
) -> ScrapeTarget:
    """Have the stack's Prometheus scrape ``address`` ("host:port") in job ``sink``, as
    ``instance=name``; nothing happens to a running scrape until the file is complete."""
    folder = Path(targets_dir)
    path = folder / f"{_UNSAFE.sub('_', name)}.json"
    group = {"targets": [address], "labels": {"instance": name, **(labels or {})}}
    write_atomically(path, json.dumps([group], indent=2))
    path.chmod(0o644)  # Prometheus may run as another user (its container's)
    return ScrapeTarget(path)
