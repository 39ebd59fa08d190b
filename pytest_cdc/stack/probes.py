"""Readiness over endpoints: is a service answering? Needs only an address, never a process.

Each probe's ``check()`` returns None when the service answers, else one line saying what it
saw (a refused connection, an HTTP status, no broker in the metadata). Every backend can use
them: the native one once its processes are up, an external one on addresses it was given.
Waiting for a log line ("started") is a process detail and stays with the native backend.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

import psycopg
import pymysql
import requests
from confluent_kafka.admin import AdminClient

from cdc_support.endpoints import Endpoints, redact_uri
from cdc_support.mysql.source import parse_dsn
from cdc_support.waiting import wait_until
from pytest_cdc.stack.base import component_names

CHECK_SECONDS = 2.0
MYSQL_SCHEMES = ("mysql://", "mariadb://")
_quiet = logging.getLogger("pytest_cdc.stack.probes.librdkafka")
_quiet.addHandler(logging.NullHandler())
_quiet.propagate = False


class Probe(Protocol):
    """A readiness check on one address."""

    awaited: str
    """What ready looks like, for messages: "SELECT 1 on postgresql://postgres:***@..."."""

    def check(self) -> str | None:
        """None when ready, else what was seen instead."""


def _seen(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or "no message"
    return redact_uri(f"{type(exc).__name__}: {text}")


@dataclass(frozen=True)
class TcpProbe:
    """Something accepts TCP connections on host:port."""

    host: str
    port: int

    @property
    def awaited(self) -> str:
        return f"a TCP connection to {self.host}:{self.port}"

    def check(self) -> str | None:
        try:
            socket.create_connection((self.host, self.port), timeout=CHECK_SECONDS).close()
        except OSError as exc:
            return _seen(exc)
        return None


@dataclass(frozen=True)
class HttpProbe:
    """An HTTP GET answers 200 (Kafka Connect: ``/connectors``, which needs a working worker)."""

    url: str

    @property
    def awaited(self) -> str:
        return f"HTTP 200 from GET {self.url}"

    def check(self) -> str | None:
        try:
            response = requests.get(self.url, timeout=CHECK_SECONDS)
        except requests.RequestException as exc:
            return _seen(exc)
        return None if response.status_code == 200 else f"HTTP {response.status_code}"


@dataclass(frozen=True)
class SqlProbe:
    """`SELECT 1` answers through a DSN: libpq (``postgresql://``) or ``mysql://``/``mariadb://``.

    The DSN's password is part of what is checked; messages show it as ``***``.
    """

    dsn: str

    @property
    def awaited(self) -> str:
        return f"SELECT 1 on {redact_uri(self.dsn)}"

    def check(self) -> str | None:
        try:
            self._select_one()
        except (psycopg.Error, pymysql.Error) as exc:
            return _seen(exc)
        return None

    def _select_one(self) -> None:
        if self.dsn.startswith(MYSQL_SCHEMES):
            address = parse_dsn(self.dsn)
            conn = pymysql.connect(**address.connect_kwargs(), connect_timeout=CHECK_SECONDS)
            try:
                with conn.cursor() as cur:
                    cur.execute("SELECT 1")
            finally:
                conn.close()
            return
        with psycopg.connect(self.dsn, connect_timeout=int(CHECK_SECONDS)) as conn:
            conn.execute("SELECT 1")


@dataclass(frozen=True)
class KafkaProbe:
    """A broker answers a metadata request on the bootstrap servers (librdkafka kept quiet)."""

    bootstrap: str

    @property
    def awaited(self) -> str:
        return f"Kafka metadata from {self.bootstrap}"

    def check(self) -> str | None:
        admin = AdminClient({"bootstrap.servers": self.bootstrap, "logger": _quiet})
        try:
            metadata = admin.list_topics(timeout=CHECK_SECONDS)
        except Exception as exc:  # KafkaException: no broker answered in time
            return _seen(exc)
        return None if metadata.brokers else "metadata without a broker"


def endpoint_probes(endpoints: Endpoints) -> dict[str, Probe]:
    """One probe per component of a stack with these endpoints (see `component_names`)."""
    probes: dict[str, Probe] = {
        "postgres": SqlProbe(endpoints.postgres_dsn),
        "kafka": KafkaProbe(endpoints.kafka_bootstrap),
        "connect": HttpProbe(endpoints.connect_url.rstrip("/") + "/connectors"),
    }
    if endpoints.mysql_dsn:
        probes[endpoints.mysql_flavor] = SqlProbe(endpoints.mysql_dsn)
    if endpoints.collector_url:
        probes["collector"] = HttpProbe(endpoints.collector_url)
    if endpoints.prometheus_url:
        probes["prometheus"] = HttpProbe(endpoints.prometheus_url.rstrip("/") + "/-/ready")
    return {name: probes[name] for name in component_names(endpoints)}


def not_ready(probes: Mapping[str, Probe]) -> dict[str, str]:
    """component -> what its probe saw, for every component that does not answer yet."""
    seen = {name: probe.check() for name, probe in probes.items()}
    return {name: text for name, text in seen.items() if text is not None}


def wait_ready(probes: Mapping[str, Probe], *, timeout: float, interval: float = 0.5) -> None:
    """Poll every probe until all answer; WaitTimeout naming each one still not ready."""
    waiting = dict(probes)

    def still_waiting() -> dict[str, str]:
        left = not_ready(waiting)
        for name in [n for n in waiting if n not in left]:
            del waiting[name]  # answered once: not asked again
        return left

    wait_until(
        still_waiting,
        done=lambda left: not left,
        timeout=timeout,
        interval=interval,
        expected="; ".join(f"{name}: {probe.awaited}" for name, probe in probes.items()),
        describe=lambda left: "; ".join(f"{name}: {text}" for name, text in left.items()),
    )
