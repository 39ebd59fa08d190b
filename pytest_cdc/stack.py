"""The one seam between features and services: a Stack hands out endpoints, never processes."""

from __future__ import annotations

import abc
from dataclasses import asdict, dataclass, field
from urllib.parse import quote


@dataclass(frozen=True)
class Endpoints:
    """Where the stack's services answer; serialisable so xdist workers can share one stack."""

    postgres_dsn: str
    kafka_bootstrap: str
    connect_url: str
    mysql_dsn: str | None = None
    # host/port as Debezium (running inside Connect) must reach the databases
    postgres_host: str = "127.0.0.1"
    postgres_port: int = 5432
    postgres_user: str = "postgres"
    postgres_password: str = "postgres"
    # MySQL/MariaDB: mysql_dsn is the admin URI (creates databases, writes test data); CDC
    # clients (Debezium, the binlog reader) use the least-privilege mysql_cdc_user instead.
    mysql_flavor: str = "mariadb"
    mysql_host: str = "127.0.0.1"
    mysql_port: int = 3306
    mysql_cdc_user: str = "cdc"
    mysql_cdc_password: str = ""

    @property
    def mysql_cdc_dsn(self) -> str:
        """``mysql://`` URI of the least-privilege CDC user (what CDC clients connect as)."""
        auth = quote(self.mysql_cdc_user, safe="")
        if self.mysql_cdc_password:
            auth += ":" + quote(self.mysql_cdc_password, safe="")
        return f"mysql://{auth}@{self.mysql_host}:{self.mysql_port}/"

    def as_dict(self) -> dict[str, object]:
        """Plain dict for JSON files and the report."""
        return asdict(self)


@dataclass(frozen=True)
class StackInfo:
    """What the report header and the Allure environment show about a stack."""

    backend: str
    backend_source: str
    versions: dict[str, str] = field(default_factory=dict)
    start_seconds: dict[str, float] = field(default_factory=dict)


class Stack(abc.ABC):
    """A running CDC stack: PostgreSQL, MySQL/MariaDB, Kafka and Kafka Connect with Debezium."""

    endpoints: Endpoints
    info: StackInfo

    @property
    def postgres_dsn(self) -> str:
        """libpq URI of the server (maintenance database)."""
        return self.endpoints.postgres_dsn

    @property
    def kafka_bootstrap(self) -> str:
        """Kafka bootstrap.servers."""
        return self.endpoints.kafka_bootstrap

    @property
    def connect_url(self) -> str:
        """Base URL of the Kafka Connect REST API."""
        return self.endpoints.connect_url

    @property
    def mysql_dsn(self) -> str | None:
        """MySQL/MariaDB URI, when the stack has one."""
        return self.endpoints.mysql_dsn

    @abc.abstractmethod
    def restart(self, component: str) -> None:
        """Stop and start a component (`postgres`, `mariadb`, `kafka`, `connect`), keeping data."""

    @abc.abstractmethod
    def kill(self, component: str) -> None:
        """Kill one component abruptly (SIGKILL), for fault scenarios."""

    @abc.abstractmethod
    def logs(self, component: str, lines: int = 50) -> str:
        """The last lines of a component's log."""

    def detach(self) -> str:
        """Let the stack outlive this session; returns how to stop it later."""
        raise NotImplementedError(f"{type(self).__name__} cannot be left running")

    @abc.abstractmethod
    def close(self) -> None:
        """Stop everything the stack started and remove its files."""

    def __enter__(self) -> Stack:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.info.backend} kafka={self.kafka_bootstrap}>"
