"""The one seam between features and services: a Stack hands out endpoints, never processes."""

from __future__ import annotations

import abc
import re
from dataclasses import asdict, dataclass, field
from urllib.parse import quote

REDACTED = "***"
SECRET_FIELDS = ("postgres_password", "postgres_cdc_password", "mysql_cdc_password")
_URI_PASSWORD = re.compile(r"(://[^:/@\s]+:)[^@\s]*(@)")


def redact_uri(uri: str) -> str:
    """``scheme://user:secret@host/...`` -> ``scheme://user:***@host/...`` (others unchanged)."""
    return _URI_PASSWORD.sub(rf"\g<1>{REDACTED}\g<2>", uri)


@dataclass(frozen=True)
class Endpoints:
    """Where the stack's services answer; serialisable so xdist workers can share one stack.

    The admin DSNs carry their passwords; ``as_dict()`` and ``repr()`` show them as ``***``
    (the native stack writes them to ``credentials_file``, mode 0600, instead).
    """

    postgres_dsn: str
    kafka_bootstrap: str
    connect_url: str
    mysql_dsn: str | None = None
    # host/port as Debezium (running inside Connect) must reach the databases
    postgres_host: str = "127.0.0.1"
    postgres_port: int = 5432
    postgres_user: str = "postgres"
    postgres_password: str = "postgres"
    # the replication role CDC clients (Debezium, logical decoding) connect as: LOGIN
    # REPLICATION, SELECT on captured tables only. Empty user: they use the admin account.
    postgres_cdc_user: str = ""
    postgres_cdc_password: str = ""
    # MySQL/MariaDB: mysql_dsn is the admin URI (creates databases, writes test data); CDC
    # clients (Debezium, the binlog reader) use the least-privilege mysql_cdc_user instead.
    mysql_flavor: str = "mariadb"
    mysql_host: str = "127.0.0.1"
    mysql_port: int = 3306
    mysql_cdc_user: str = "cdc"
    mysql_cdc_password: str = ""
    credentials_file: str = ""
    """A file (mode 0600) holding the passwords, for people who need them after the run."""

    @property
    def postgres_cdc_login(self) -> tuple[str, str]:
        """(user, password) PostgreSQL CDC clients connect as: the replication role, if any."""
        if self.postgres_cdc_user:
            return self.postgres_cdc_user, self.postgres_cdc_password
        return self.postgres_user, self.postgres_password

    @property
    def postgres_cdc_dsn(self) -> str:
        """libpq URI of the replication role (the admin DSN when the stack has no such role)."""
        if not self.postgres_cdc_user:
            return self.postgres_dsn
        auth = quote(self.postgres_cdc_user, safe="")
        if self.postgres_cdc_password:
            auth += ":" + quote(self.postgres_cdc_password, safe="")
        return f"postgresql://{auth}@{self.postgres_host}:{self.postgres_port}/postgres"

    @property
    def mysql_cdc_dsn(self) -> str:
        """``mysql://`` URI of the least-privilege CDC user (what CDC clients connect as)."""
        auth = quote(self.mysql_cdc_user, safe="")
        if self.mysql_cdc_password:
            auth += ":" + quote(self.mysql_cdc_password, safe="")
        return f"mysql://{auth}@{self.mysql_host}:{self.mysql_port}/"

    def as_dict(self, *, reveal: bool = False) -> dict[str, object]:
        """Plain dict for JSON files and the report; passwords read ``***`` unless ``reveal``."""
        values = asdict(self)
        if reveal:
            return values
        for key, value in values.items():
            if key in SECRET_FIELDS and value:
                values[key] = REDACTED
            elif isinstance(value, str) and "://" in value:
                values[key] = redact_uri(value)
        return values

    def __repr__(self) -> str:
        shown = ", ".join(f"{k}={v!r}" for k, v in self.as_dict().items())
        return f"Endpoints({shown})"


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
