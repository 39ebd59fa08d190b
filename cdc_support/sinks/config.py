"""What a sink worker is told: where to read (Kafka) and where to write (a Delta or Iceberg
table), batch sizes, metrics, maintenance. The same objects build the ``cdc-spec sink``
command line (:meth:`WorkerConfig.to_args`) and are built from it (``sinks.cli``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from cdc_support.sinks.base import MaintenancePolicy, TableSink
from cdc_support.sinks.dlq import dlq_topic_for
from cdc_support.sinks.errors import SinkConfigError
from cdc_support.sinks.unavailable import UNAVAILABLE_PLACEHOLDER

__all__ = ["FORMATS", "SinkTarget", "WorkerConfig", "table_format"]

FORMATS = ("delta", "iceberg")
FORMAT_NAMES = {"Delta": "delta", "Iceberg": "iceberg"}
"""How features name the table formats."""


def table_format(name: str) -> str:
    """``delta`` or ``iceberg`` for a feature's "Delta" or "Iceberg" (ValueError otherwise)."""
    if name not in FORMAT_NAMES:
        raise ValueError(f"unknown table format {name!r}; use one of {', '.join(FORMAT_NAMES)}")
    return FORMAT_NAMES[name]


@dataclass(frozen=True)
class SinkTarget:
    """The table a worker writes: a Delta table URI, or an Iceberg table in a SQL catalog."""

    format: str
    key: tuple[str, ...]
    table_uri: str | None = None
    storage_options: Mapping[str, str] = field(default_factory=dict)
    warehouse: str | None = None
    table: str | None = None
    catalog_uri: str | None = None
    catalog_name: str = "cdc"
    table_properties: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        problem = self.problem()
        if problem:
            raise ValueError(problem)

    def problem(self) -> str | None:
        """What is wrong with this target (a message naming the fix), or None."""
        if self.format not in FORMATS:
            return f"unknown table format {self.format!r}; choose one of: {', '.join(FORMATS)}"
        if not self.key or any(not k for k in self.key):
            return "the key needs at least one column name (e.g. --key id, or --key a,b)"
        if self.format == "delta" and not self.table_uri:
            return "format delta needs the table's location: --table-uri PATH_OR_URI"
        if self.format == "iceberg":
            if not self.warehouse or not self.table:
                return "format iceberg needs --warehouse DIR and --table NAMESPACE.TABLE"
            namespace, _, name = self.table.rpartition(".")
            if not namespace or not name:
                return f"--table must be NAMESPACE.TABLE (e.g. shop.customers), got {self.table!r}"
        return None

    def __repr__(self) -> str:
        where = self.table_uri if self.format == "delta" else f"{self.table} in {self.warehouse}"
        return f"{self.format} table {where} keyed by {', '.join(self.key)}"

    def open(
        self, *, app_id: str = "cdc-spec-sink", policy: MaintenancePolicy | None = None
    ) -> TableSink:
        """The sink for this target (the table is created on the first write).
        SinkConfigError naming the option when the table's path is a file."""
        if self.format == "delta":
            from cdc_support.deltalake.location import DeltaLocation, check_folder
            from cdc_support.sinks.delta_sink import DeltaSink

            assert self.table_uri is not None
            location = DeltaLocation(self.table_uri, dict(self.storage_options))
            try:
                check_folder(location)
            except NotADirectoryError as exc:
                raise SinkConfigError(f"--table-uri {self.table_uri}: {exc}") from None
            return DeltaSink(
                location,
                self.key,
                app_id=app_id,
                policy=policy,
                table_properties=self.table_properties,
            )
        from cdc_support.iceberg.catalog import check_warehouse
        from cdc_support.sinks.iceberg_sink import IcebergSink

        assert self.warehouse is not None and self.table is not None
        try:
            check_warehouse(self.warehouse)
        except NotADirectoryError as exc:
            raise SinkConfigError(f"--warehouse {self.warehouse}: {exc}") from None
        return IcebergSink(
            self.warehouse,
            self.table,
            self.key,
            catalog_uri=self.catalog_uri,
            catalog_name=self.catalog_name,
            policy=policy,
            table_properties=self.table_properties,
        )

    def cli_args(self) -> list[str]:
        """The ``cdc-spec sink`` options naming this target."""
        args = ["--format", self.format, "--key", ",".join(self.key)]
        if self.format == "delta":
            args += ["--table-uri", str(self.table_uri)]
            for k, v in sorted(self.storage_options.items()):
                args += ["--storage-option", f"{k}={v}"]
        else:
            args += ["--warehouse", str(self.warehouse), "--table", str(self.table)]
            if self.catalog_uri:
                args += ["--catalog-uri", self.catalog_uri]
            if self.catalog_name != "cdc":
                args += ["--catalog-name", self.catalog_name]
        for k, v in sorted(self.table_properties.items()):
            args += ["--table-property", f"{k}={v}"]
        return args


@dataclass(frozen=True)
class WorkerConfig:
    """Everything one sink worker needs."""

    bootstrap: str
    topic: str
    group: str
    target: SinkTarget
    batch_size: int = 2000
    batch_ms: int = 500
    dlq_topic: str | None = None
    metrics_port: int | None = None
    metrics_host: str = "127.0.0.1"
    commit_log: str | None = None
    app_id: str = "cdc-spec-sink"
    policy: MaintenancePolicy = field(default_factory=MaintenancePolicy)
    consumer_config: Mapping[str, Any] = field(default_factory=dict)
    offset_commit_ms: int = 5000
    instance_id: str | None = None
    require_topic: bool = False
    """Exit (status 2) when the topic does not exist, instead of waiting for it."""
    unavailable_placeholder: str = UNAVAILABLE_PLACEHOLDER
    """The connector's ``unavailable.value.placeholder``: such a value keeps the old one."""

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise ValueError(f"batch size must be >= 1, got {self.batch_size}")
        if self.batch_ms < 1:
            raise ValueError(f"batch time must be >= 1 ms, got {self.batch_ms}")
        if self.metrics_port is not None and not 0 <= self.metrics_port <= 65535:
            raise ValueError(f"metrics port must be within 0..65535, got {self.metrics_port}")
        if self.offset_commit_ms < 0:
            raise ValueError(f"offset commit interval must be >= 0 ms, got {self.offset_commit_ms}")
        for name in ("bootstrap", "topic", "group"):
            if not getattr(self, name):
                raise ValueError(f"{name} must not be empty")

    @property
    def group_instance_id(self) -> str:
        """The consumer's static group membership id (``<group>-worker`` unless given): a
        restarted worker takes its partitions back at once, without waiting for the killed
        one's session to time out, and a second worker with the same id fences the first."""
        return self.instance_id or f"{self.group}-worker"

    @property
    def dead_letter_topic(self) -> str:
        """The dead-letter topic (``<topic>.dlq`` unless given)."""
        return self.dlq_topic or dlq_topic_for(self.topic)

    def to_args(self) -> list[str]:
        """The ``cdc-spec sink ...`` arguments (after ``sink``) for this configuration."""
        args = [
            "--bootstrap",
            self.bootstrap,
            "--topic",
            self.topic,
            "--group",
            self.group,
            *self.target.cli_args(),
            "--batch-size",
            str(self.batch_size),
            "--batch-ms",
            str(self.batch_ms),
            "--app-id",
            self.app_id,
            "--offset-commit-ms",
            str(self.offset_commit_ms),
            "--expire-every",
            str(self.policy.expire_every),
            "--keep-snapshots",
            str(self.policy.keep_snapshots),
            "--compact-files",
            str(self.policy.compact_files),
            "--optimize-every",
            str(self.policy.optimize_every),
        ]
        if self.dlq_topic:
            args += ["--dlq-topic", self.dlq_topic]
        if self.instance_id:
            args += ["--instance-id", self.instance_id]
        if self.require_topic:
            args.append("--require-topic")
        if self.unavailable_placeholder != UNAVAILABLE_PLACEHOLDER:
            args += ["--unavailable-placeholder", self.unavailable_placeholder]
        if self.metrics_port is not None:
            args += ["--metrics-port", str(self.metrics_port), "--metrics-host", self.metrics_host]
        if self.commit_log:
            args += ["--commit-log", self.commit_log]
        for k, v in sorted(self.consumer_config.items()):
            args += ["--consumer-config", f"{k}={v}"]
        return args
