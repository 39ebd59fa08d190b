"""Stack, StackInfo and Backend: what every backend (native, docker, external) provides."""

from __future__ import annotations

import abc
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from cdc_support.endpoints import Endpoints

Progress = Callable[[str], None]
"""Prints one progress line (the plugin's terminal writer, or `print`)."""


def component_names(endpoints: Endpoints) -> tuple[str, ...]:
    """The components a stack with these endpoints has, in start order: `postgres`, the MySQL
    flavour (`mariadb` or `mysql`) when there is a MySQL server, `kafka`, `connect`, then
    `collector` and `prometheus` when it has them."""
    mysql = (endpoints.mysql_flavor,) if endpoints.mysql_dsn else ()
    collector = ("collector",) if endpoints.collector_url else ()
    prometheus = ("prometheus",) if endpoints.prometheus_url else ()
    return ("postgres", *mysql, "kafka", "connect", *collector, *prometheus)


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
    def components(self) -> tuple[str, ...]:
        """The names `restart`, `kill` and `logs` take."""
        return component_names(self.endpoints)

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

    @property
    def started_here(self) -> bool:
        """True when this run started the services (and so stops them); False for a stack
        started elsewhere (the external backend), which is left as it was."""
        return True

    @property
    def can_fault(self) -> bool:
        """True when `restart` and `kill` can fault the services: only a stack started here."""
        return self.started_here

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


class Service(Protocol):
    """One running component of a stack started here: a process or a container."""

    def restart(self) -> None: ...

    def kill(self) -> None: ...

    def logs(self, lines: int = 50) -> str: ...


class ServicesStack(Stack):
    """A stack whose components are services started here (native processes, containers):
    `restart`, `kill` and `logs` go to the service of that name."""

    services: Mapping[str, Service]

    def _service(self, component: str) -> Service:
        try:
            return self.services[component]
        except KeyError:
            raise ValueError(
                f"unknown component {component!r}; this stack has: {', '.join(self.services)}"
            ) from None

    def restart(self, component: str) -> None:
        """Stop and start one component, keeping its data; wait until it answers."""
        self._service(component).restart()

    def kill(self, component: str) -> None:
        """SIGKILL one component (`restart` starts it again)."""
        self._service(component).kill()

    def logs(self, component: str, lines: int = 50) -> str:
        """The last lines of a component's log."""
        return self._service(component).logs(lines)


class Backend(abc.ABC):
    """A way to run the stack, chosen by name (`--cdc-backend`): names its versions before
    anything starts (for the report header), and starts a Stack."""

    name: str
    source: str
    """Why this backend runs, e.g. "from command line" or "auto: no Docker engine answers"."""

    @abc.abstractmethod
    def versions(self) -> dict[str, str]:
        """Component versions, read without starting anything; CdcSetupError (naming the
        fix) when the backend is not ready to run."""

    @abc.abstractmethod
    def start(self, progress: Progress) -> Stack:
        """Start (or connect to) the stack; everything started is stopped again on failure."""
