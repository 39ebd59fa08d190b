"""The external backend: a stack someone else runs (`cdc-spec up`, a compose project, a shared
environment), reached by its addresses. Nothing is started, stopped or faulted here.

Where the endpoints come from, first that is given: ``--cdc-endpoints FILE`` (an
``Endpoints.to_json()`` object, or a stack record such as the ``stack.json`` `cdc-spec up`
writes) > the single addresses (``--cdc-postgres-dsn``, ``--cdc-kafka-bootstrap``,
``--cdc-connect-url``, ``--cdc-mysql-dsn``; env and ini too, see ``pytest_cdc.options``) > the
record of the stack `cdc-spec up` started. Every service is probed once before the first test;
each one that does not answer is one line naming its address and what set it.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import psycopg
import pymysql
import requests

from cdc_support.endpoints import Endpoints, EndpointsError
from cdc_support.mysql.source import parse_dsn
from pytest_cdc.errors import (
    ExternalEndpointsError,
    ExternalStackUnreachable,
    StackCannotBeFaulted,
)
from pytest_cdc.options import EXTERNAL_ADDRESSES, ExternalSettings
from pytest_cdc.stack import record as records
from pytest_cdc.stack.base import Backend, Progress, Stack, StackInfo
from pytest_cdc.stack.probes import CHECK_SECONDS, endpoint_probes, not_ready

CANNOT_FAULT = "an external stack cannot be faulted"
"""What restart/kill say; the `cdc_faultable_stack` fixture skips with it."""
_NATIVE = "use --cdc-backend=native (a stack this run starts)"
_FIELD_OF = {"postgres": "postgres_dsn", "kafka": "kafka_bootstrap", "connect": "connect_url"}
_REQUIRED = ("postgres_dsn", "kafka_bootstrap", "connect_url")


@dataclass(frozen=True)
class ExternalEndpoints:
    """Resolved endpoints: the addresses, where they came from (for the header), what set each
    address (for the unreachable lines), and the record's versions when read from one."""

    endpoints: Endpoints
    where: str
    origins: dict[str, str]
    """Endpoints field -> what set it: "--cdc-postgres-dsn", "--cdc-endpoints /x.json", ..."""
    versions: dict[str, str] | None = None
    detect_flavor: bool = False
    """True when the MySQL flavour is to be read from the server (a single --cdc-mysql-dsn)."""


def resolve_endpoints(
    settings: ExternalSettings, record_file: Path | None = None
) -> ExternalEndpoints:
    """The endpoints of the external stack; ExternalEndpointsError (one line naming the options and
    `cdc-spec up`) when none are given and no stack is recorded."""
    if settings.endpoints_file.value:
        return _from_file(Path(settings.endpoints_file.value), settings.origin("endpoints"))
    if settings.addresses:
        return _from_addresses(settings)
    path = record_file or records.record_path()
    try:
        record = records.load(path)
    except records.StackRecordError as exc:
        raise ExternalEndpointsError(str(exc)) from None
    if record is None:
        raise ExternalEndpointsError(
            "--cdc-backend=external needs the stack's endpoints: start one with `cdc-spec up` "
            f"(recorded in {path}), or pass --cdc-endpoints=FILE, or --cdc-postgres-dsn, "
            "--cdc-kafka-bootstrap and --cdc-connect-url (--cdc-mysql-dsn optional)"
        )
    origin = f"the stack record {path}"
    return ExternalEndpoints(
        record.endpoints,
        f"from the stack `cdc-spec up` started, record {path}",
        dict.fromkeys(_fields(record.endpoints), origin),
        versions=dict(record.versions),
    )


def _fields(endpoints: Endpoints) -> tuple[str, ...]:
    return (*_REQUIRED, "mysql_dsn") if endpoints.mysql_dsn else _REQUIRED


def _from_file(path: Path, option: str) -> ExternalEndpoints:
    """An endpoints JSON object, or a stack record (its ``endpoints`` and ``versions``)."""
    source = f"{option} {path}"
    fix = "give the stack.json `cdc-spec up` records, or a file written by Endpoints.to_json()"
    try:
        values = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ExternalEndpointsError(f"{source} cannot be read ({exc.strerror}): {fix}") from None
    except ValueError as exc:
        raise ExternalEndpointsError(f"{source} is not JSON ({exc}): {fix}") from None
    versions = None
    if isinstance(values, dict) and isinstance(values.get("endpoints"), dict):  # a record
        found = values.get("versions")
        versions = {str(k): str(v) for k, v in found.items()} if isinstance(found, dict) else None
        values = values["endpoints"]
    try:
        endpoints = Endpoints.from_json(json.dumps(values), source=source)
    except EndpointsError as exc:
        raise ExternalEndpointsError(str(exc)) from None
    return ExternalEndpoints(
        endpoints, f"from {source}", dict.fromkeys(_fields(endpoints), source), versions
    )


def _from_addresses(settings: ExternalSettings) -> ExternalEndpoints:
    """Endpoints from single addresses; the accounts are the DSNs' users."""
    given = {name: setting.value for name, setting in settings.addresses.items()}
    origins = {name: settings.origin(name) for name in given}
    missing = [EXTERNAL_ADDRESSES[name][0] for name in _REQUIRED if name not in given]
    if missing:
        raise ExternalEndpointsError(
            f"--cdc-backend=external with {', '.join(origins.values())} also needs "
            f"{', '.join(missing)} (or --cdc-endpoints=FILE, or none of them to use the stack "
            "`cdc-spec up` started)"
        )
    values: dict[str, Any] = dict(given)
    try:
        pg = urlsplit(given["postgres_dsn"])
        values["postgres_user"] = unquote(pg.username or "postgres")
        values["postgres_password"] = unquote(pg.password or "")
        if given.get("mysql_dsn"):
            mysql = parse_dsn(given["mysql_dsn"])
            values["mysql_cdc_user"], values["mysql_cdc_password"] = mysql.user, mysql.password
            mariadb = given["mysql_dsn"].startswith("mariadb:")
            values["mysql_flavor"] = "mariadb" if mariadb else "mysql"
        endpoints = Endpoints.from_json(
            json.dumps(values), source=f"the addresses given ({', '.join(origins.values())})"
        )
    except (EndpointsError, ValueError) as exc:
        raise ExternalEndpointsError(str(exc)) from None
    where = "from " + ", ".join(dict.fromkeys(origins.values()))
    return ExternalEndpoints(endpoints, where, origins, detect_flavor="mysql_dsn" in given)


def address(component: str, endpoints: Endpoints) -> str:
    """Where a component answers, without a password: host:port of a DSN, else the address."""
    if component == "kafka":
        return endpoints.kafka_bootstrap
    if component == "connect":
        return endpoints.connect_url
    dsn, port = (
        (endpoints.postgres_dsn, 5432) if component == "postgres" else (endpoints.mysql_dsn, 3306)
    )
    parts = urlsplit(dsn or "")
    return f"{parts.hostname}:{parts.port or port}"


def unreachable(resolved: ExternalEndpoints) -> list[str]:
    """One line per service that does not answer (empty when all do)."""
    endpoints = resolved.endpoints
    lines = []
    for component, seen in not_ready(endpoint_probes(endpoints)).items():
        origin = resolved.origins[_FIELD_OF.get(component, "mysql_dsn")]
        lines.append(
            f"{component} at {address(component, endpoints)} (from {origin}) does not answer: "
            f"{seen}"
        )
    return lines


def service_versions(endpoints: Endpoints) -> dict[str, str]:
    """Versions read from the running services ("?" for one that does not say): PostgreSQL's
    and MySQL/MariaDB's server_version, Connect's Kafka version, the Debezium plugins'."""
    versions = {"postgres": "?", "connect": "?", "debezium": "?"}
    try:
        with psycopg.connect(endpoints.postgres_dsn, connect_timeout=int(CHECK_SECONDS)) as conn:
            row = conn.execute("SHOW server_version").fetchone()
        versions["postgres"] = str(row[0]).split()[0] if row else "?"
    except psycopg.Error:
        pass
    url = endpoints.connect_url.rstrip("/")
    try:
        versions["connect"] = requests.get(url + "/", timeout=CHECK_SECONDS).json()["version"]
        plugins = requests.get(url + "/connector-plugins", timeout=CHECK_SECONDS).json()
        versions["debezium"] = _debezium(plugins)
    except (requests.RequestException, ValueError, KeyError, TypeError):
        pass
    if endpoints.mysql_dsn:
        versions.update(_mysql_version(endpoints))
    return versions


def _debezium(plugins: list[dict[str, str]]) -> str:
    """ "mariadb 3.1.2.Final, postgres 3.1.2.Final" from Connect's /connector-plugins."""
    found = sorted(
        f"{p['class'].rsplit('.', 1)[-1].removesuffix('Connector').lower()} {p['version']}"
        for p in plugins
        if p.get("class", "").startswith("io.debezium.connector.")
    )
    return ", ".join(found) or "?"


def _mysql_version(endpoints: Endpoints) -> dict[str, str]:
    """{flavour: version} from SELECT VERSION(); the flavour from the version when it says."""
    assert endpoints.mysql_dsn
    try:
        address = parse_dsn(endpoints.mysql_dsn)
        conn = pymysql.connect(**address.connect_kwargs(), connect_timeout=CHECK_SECONDS)
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT VERSION()")
                version = str(cur.fetchone()[0])
        finally:
            conn.close()
    except (pymysql.Error, ValueError):
        return {endpoints.mysql_flavor: "?"}
    flavor = "mariadb" if "mariadb" in version.lower() else "mysql"
    return {flavor: version.split("-")[0]}


class ExternalBackend(Backend):
    """The external backend: endpoints resolved on first use (see the module docstring)."""

    name = "external"

    def __init__(
        self, settings: ExternalSettings, backend_source: str, record_file: Path | None = None
    ) -> None:
        self._settings = settings
        self._backend_source = backend_source
        self._record_file = record_file
        self._resolved: ExternalEndpoints | None = None

    def resolved(self) -> ExternalEndpoints:
        """The endpoints and where they came from (read once)."""
        if self._resolved is None:
            self._resolved = resolve_endpoints(self._settings, self._record_file)
        return self._resolved

    @property
    def source(self) -> str:  # type: ignore[override]
        """ "from command line; endpoints from the stack `cdc-spec up` started, record PATH"."""
        try:
            return f"{self._backend_source}; endpoints {self.resolved().where}"
        except ExternalEndpointsError:  # versions() says why, in the header's NOT READY part
            return self._backend_source

    def versions(self) -> dict[str, str]:
        """The record's versions when the endpoints came from one, else read from the services."""
        resolved = self.resolved()
        if resolved.versions is not None:
            return dict(resolved.versions)
        return service_versions(resolved.endpoints)

    def start(self, progress: Progress) -> ExternalStack:
        """Check every service answers (ExternalStackUnreachable: one line per one that does
        not); nothing is started."""
        resolved = self.resolved()
        progress(f"cdc: external stack {resolved.where}: checking that every service answers")
        lines = unreachable(resolved)
        if lines:
            raise ExternalStackUnreachable("\n".join(lines))
        versions = self.versions()
        endpoints = resolved.endpoints
        if resolved.detect_flavor:
            flavor = "mariadb" if "mariadb" in versions else "mysql"
            endpoints = dataclasses.replace(endpoints, mysql_flavor=flavor)
        info = StackInfo(backend=self.name, backend_source=self.source, versions=versions)
        progress("cdc: external stack answers (it is neither started nor stopped by this run)")
        return ExternalStack(endpoints, info, resolved.where)


class ExternalStack(Stack):
    """A stack this run did not start: endpoints only; `close()` leaves every service as it
    was, `restart`/`kill` raise StackCannotBeFaulted."""

    def __init__(self, endpoints: Endpoints, info: StackInfo, where: str) -> None:
        self.endpoints = endpoints
        self.info = info
        self.where = where

    @property
    def started_here(self) -> bool:
        return False

    def _refuse(self, what: str, component: str) -> StackCannotBeFaulted:
        return StackCannotBeFaulted(
            f"{CANNOT_FAULT}: {what} {component} needs a stack this run started; {_NATIVE}"
        )

    def restart(self, component: str) -> None:
        """Refused: this run did not start the services."""
        raise self._refuse("restarting", component)

    def kill(self, component: str) -> None:
        """Refused: this run did not start the services."""
        raise self._refuse("killing", component)

    def logs(self, component: str, lines: int = 50) -> str:
        """No logs: the services run elsewhere."""
        return f"no {component} log here: the external stack runs elsewhere ({self.where})"

    def detach(self) -> str:
        """Nothing to detach: says the stack was not started here."""
        return f"the external stack ({self.where}) was not started by this run: left as it was"

    def close(self) -> None:
        """Nothing: the services were not started by this run and keep running."""
