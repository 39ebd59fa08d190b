"""Endpoints: where a stack's services answer, as plain data that travels as JSON.

Two views of the databases are kept apart. The DSNs (``postgres_dsn``, ``mysql_dsn``) are
how this host reaches them: the test data, the janitor and the host-side CDC clients (logical
decoding, the binlog reader) use them. ``postgres_host``/``postgres_port`` and
``mysql_host``/``mysql_port`` are how Debezium, running inside Kafka Connect, reaches them
(another name on a container network); when not given they are the DSNs' host and port.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, fields
from typing import Any
from urllib.parse import quote, urlsplit

REDACTED = "***"
REQUIRED_FIELDS = ("postgres_dsn", "kafka_bootstrap", "connect_url")
DSN_SCHEMES = {
    "postgres_dsn": ("postgresql://", "postgres://"),
    "mysql_dsn": ("mysql://", "mariadb://"),
}
"""The DSNs are URIs: the host-side address is read from them."""
SECRET_FIELDS = ("postgres_password", "postgres_cdc_password", "mysql_cdc_password")
_URI_PASSWORD = re.compile(r"(://[^:/@\s]+:)[^@\s]*(@)")
_JSON_TYPES: dict[str, tuple[type, ...]] = {
    "str": (str,),
    "int": (int,),
    "str | None": (str, type(None)),
}


class EndpointsError(ValueError):
    """An endpoints JSON that cannot be read; the one-line message names the fix."""


def redact_uri(uri: str) -> str:
    """``scheme://user:secret@host/...`` -> ``scheme://user:***@host/...`` (others unchanged)."""
    return _URI_PASSWORD.sub(rf"\g<1>{REDACTED}\g<2>", uri)


def _host_port(uri: str | None, default_port: int) -> tuple[str, int]:
    """Host and port of a ``scheme://...`` URI; ("", 0) when there is none to read."""
    try:
        parts = urlsplit(uri or "")
        return (parts.hostname or "", parts.port or default_port) if parts.hostname else ("", 0)
    except ValueError:
        return "", 0


@dataclass(frozen=True)
class Endpoints:
    """Where the stack's services answer; ``to_json``/``from_json`` carry it between processes.

    The admin DSNs carry their passwords; ``as_dict()`` and ``repr()`` show them as ``***``,
    ``to_json()`` does not (write it to a file only its owner can read).
    """

    postgres_dsn: str
    kafka_bootstrap: str
    connect_url: str
    mysql_dsn: str | None = None
    # host/port as Debezium (running inside Connect) reaches PostgreSQL; default: the DSN's
    postgres_host: str = ""
    postgres_port: int = 0
    postgres_user: str = "postgres"
    postgres_password: str = "postgres"
    # the replication role CDC clients (Debezium, logical decoding) connect as: LOGIN
    # REPLICATION, SELECT on captured tables only. Empty user: they use the admin account.
    postgres_cdc_user: str = ""
    postgres_cdc_password: str = ""
    # MySQL/MariaDB: mysql_dsn is the admin URI (creates databases, writes test data); CDC
    # clients (Debezium, the binlog reader) use the least-privilege mysql_cdc_user instead.
    mysql_flavor: str = "mariadb"
    # host/port as Debezium (running inside Connect) reaches MySQL/MariaDB; default: the DSN's
    mysql_host: str = ""
    mysql_port: int = 0
    mysql_cdc_user: str = "cdc"
    mysql_cdc_password: str = ""
    credentials_file: str = ""
    """A file (mode 0600) holding the passwords, for people who need them after the run."""
    # observability: empty when the stack has none (e.g. an external stack without them)
    prometheus_url: str = ""
    """Base URL of the Prometheus that scrapes every component below (and the sink workers)."""
    kafka_metrics_url: str = ""
    """The broker's JMX exporter: ``http://host:port/metrics``."""
    connect_metrics_url: str = ""
    """The Connect worker's JMX exporter (Debezium and Connect MBeans)."""
    collector_url: str = ""
    """cdc-spec's collector: slot lag, binlog position, consumer-group lag."""
    scrape_targets_dir: str = ""
    """A folder Prometheus reads file_sd target files from: sink workers register there."""
    log_dir: str = ""
    """A folder of JSON-lines logs, one file per component."""

    def __post_init__(self) -> None:
        for prefix, dsn, default_port in (
            ("postgres", self.postgres_dsn, 5432),
            ("mysql", self.mysql_dsn, 3306),
        ):
            host, port = _host_port(dsn, default_port)
            if not getattr(self, f"{prefix}_host"):
                object.__setattr__(self, f"{prefix}_host", host)
            if not getattr(self, f"{prefix}_port"):
                object.__setattr__(self, f"{prefix}_port", port)

    @property
    def postgres_cdc_login(self) -> tuple[str, str]:
        """(user, password) PostgreSQL CDC clients connect as: the replication role, if any."""
        if self.postgres_cdc_user:
            return self.postgres_cdc_user, self.postgres_cdc_password
        return self.postgres_user, self.postgres_password

    @property
    def postgres_cdc_dsn(self) -> str:
        """libpq URI of the replication role on this host's address of the server (the admin
        DSN when the stack has no such role)."""
        if not self.postgres_cdc_user:
            return self.postgres_dsn
        host, port = _host_port(self.postgres_dsn, 5432)
        auth = _userinfo(self.postgres_cdc_user, self.postgres_cdc_password)
        return f"postgresql://{auth}@{host}:{port}/postgres"

    @property
    def mysql_cdc_dsn(self) -> str:
        """``mysql://`` URI of the least-privilege CDC user on this host's address of the
        server (what the binlog reader connects as)."""
        if not self.mysql_dsn:
            raise EndpointsError("this stack has no MySQL/MariaDB server (no mysql_dsn)")
        host, port = _host_port(self.mysql_dsn, 3306)
        return f"mysql://{_userinfo(self.mysql_cdc_user, self.mysql_cdc_password)}@{host}:{port}/"

    def as_dict(self, *, reveal: bool = False) -> dict[str, object]:
        """Plain dict for the report and the terminal; passwords read ``***`` unless ``reveal``."""
        values = asdict(self)
        if reveal:
            return values
        for key, value in values.items():
            if key in SECRET_FIELDS and value:
                values[key] = REDACTED
            elif isinstance(value, str) and "://" in value:
                values[key] = redact_uri(value)
        return values

    def to_json(self) -> str:
        """Every field as JSON, passwords included: ``from_json`` gives back an equal object."""
        return json.dumps(self.as_dict(reveal=True), indent=2)

    @classmethod
    def from_json(cls, text: str, *, source: str = "endpoints JSON") -> Endpoints:
        """Read what ``to_json`` wrote; EndpointsError (one line, no secrets) when it cannot."""
        try:
            values = json.loads(text)
        except ValueError as exc:
            raise EndpointsError(f"{source} is not JSON ({exc}): {_FIX}") from None
        if not isinstance(values, dict):
            raise EndpointsError(f"{source} is not a JSON object of endpoint fields: {_FIX}")
        return cls(**_checked(values, source))

    def __repr__(self) -> str:
        shown = ", ".join(f"{k}={v!r}" for k, v in self.as_dict().items())
        return f"Endpoints({shown})"


_FIX = (
    "write it with Endpoints.to_json() (fields: "
    + ", ".join(f.name for f in fields(Endpoints))
    + ")"
)


def _checked(values: dict[str, Any], source: str) -> dict[str, Any]:
    """The values, after checking names, required fields and JSON types."""
    known = {f.name: f for f in fields(Endpoints)}
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise EndpointsError(f"{source} has unknown {', '.join(unknown)}: {_FIX}")
    missing = [name for name in REQUIRED_FIELDS if name not in values]
    if missing:
        raise EndpointsError(f"{source} is missing {', '.join(missing)}: {_FIX}")
    for name, value in values.items():
        allowed = _JSON_TYPES[str(known[name].type)]
        if isinstance(value, bool) or not isinstance(value, allowed):
            wanted = " or ".join("null" if t is type(None) else t.__name__ for t in allowed)
            raise EndpointsError(
                f"{source}: {name} must be a JSON {wanted}, not {type(value).__name__}: {_FIX}"
            )
    for name, schemes in DSN_SCHEMES.items():
        dsn = values.get(name)
        if dsn is not None and not (dsn.startswith(schemes) and _host_port(dsn, 0)[0]):
            raise EndpointsError(
                f"{source}: {name} is not a URI with a host: write it as "
                f"{schemes[0]}user:password@host:port/"
            )
    return values


def _userinfo(user: str, password: str) -> str:
    auth = quote(user, safe="")
    return auth + (":" + quote(password, safe="") if password else "")
