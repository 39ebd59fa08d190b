"""cdc-spec's own metrics collector: what CDC costs at the sources, measured at scrape time.

Why the harness has its own collector instead of Debian's ``prometheus-postgres-exporter`` and
``prometheus-mysqld-exporter``: the lesson needs exactly

* the WAL each replication slot makes PostgreSQL keep (``pg_current_wal_lsn() - restart_lsn``)
  and the WAL its consumer has not confirmed (``- confirmed_flush_lsn``), per slot;
* the MariaDB binlog position a binlog reader is compared with;
* the consumer-group lag of the sink workers, measured at the broker: a sink that stopped
  cannot report its own lag, so it must be measured outside it;

and no Debian exporter provides these: the PostgreSQL one reports a slot's LSNs but not the
WAL its ``restart_lsn`` retains, the MySQL one binlog sizes but not the position written, and
neither knows Kafka consumer groups (custom queries could add the first two, and would be ours
to maintain all the same).

The sources are :mod:`~cdc_support.observability.postgres_wal`,
:mod:`~cdc_support.observability.mysql_binlog` and :mod:`~cdc_support.observability.kafka_lag`;
this module runs them for each scrape.

Each scrape asks every source at once, each in its own thread with a deadline (``timeout``,
shortened to fit Prometheus' ``X-Prometheus-Scrape-Timeout-Seconds``). A source that fails or
does not answer in time is left out of that scrape, never the others::

    cdc_collector_source_up{source}            1 when the source answered this scrape, else 0
    cdc_collector_errors_total{source}         scrapes the source did not answer
    cdc_collector_source_duration_seconds{source}  how long its last answer took

An outage is logged once (and its end once). A query still running from an earlier scrape
is waited for rather than started again, so a hung source holds one thread, not one per scrape.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from typing import Any, Protocol
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CollectorRegistry, make_wsgi_app
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import ThreadingWSGIServer
from prometheus_client.registry import Collector

from cdc_support.endpoints import redact_uri

__all__ = ["HarnessCollector", "Source", "serve"]

log = logging.getLogger("cdc_support.observability")

HEADROOM = 0.8
"""Share of Prometheus' scrape timeout the sources may use (the rest is for the answer)."""


class Source(Protocol):
    """What the collector asks: ``read`` returns metric families or raises; ``where`` names
    the address (no password) for the log."""

    name: str
    where: str

    def read(self, timeout: float) -> list[Metric]: ...

    def close(self) -> None: ...


@dataclass
class _State:
    """One source's scrape state (guarded by ``lock``)."""

    source: Source
    lock: threading.Lock = field(default_factory=threading.Lock)
    query: Future[tuple[list[Metric], float]] | None = None
    up: bool | None = None
    errors: int = 0
    duration: float = 0.0


def error_text(exc: BaseException) -> str:
    """An error on one line, passwords in URIs hidden."""
    text = " ".join(str(exc).split())
    return redact_uri(f"{type(exc).__name__}: {text}" if text else type(exc).__name__)


class HarnessCollector(Collector):
    """A prometheus_client collector querying ``sources`` on every scrape."""

    def __init__(self, sources: Sequence[Source], *, timeout: float = 2.0) -> None:
        self.timeout = timeout
        self._states = [_State(source) for source in sources]
        self._local = threading.local()

    def __repr__(self) -> str:
        return f"HarnessCollector({', '.join(s.source.name for s in self._states)})"

    @contextlib.contextmanager
    def budget(self, seconds: float | None) -> Iterator[None]:
        """Within this block (this thread's scrapes) the sources get at most ``seconds``."""
        self._local.budget = seconds
        try:
            yield
        finally:
            self._local.budget = None

    def describe(self) -> list[Metric]:
        return []  # families vary with the sources' answers; nothing to check at registration

    def collect(self) -> Iterator[Metric]:
        limit = getattr(self._local, "budget", None)
        timeout = self.timeout if limit is None else max(0.05, min(self.timeout, limit))
        deadline = time.monotonic() + timeout
        queries = [(state, self._query(state, timeout)) for state in self._states]
        up = GaugeMetricFamily(
            "cdc_collector_source_up", "1 when the source answered this scrape", labels=["source"]
        )
        errors = CounterMetricFamily(
            "cdc_collector_errors", "Scrapes the source did not answer", labels=["source"]
        )
        durations = GaugeMetricFamily(
            "cdc_collector_source_duration_seconds",
            "How long the source's last answer took",
            labels=["source"],
        )
        for state, query in queries:
            name = state.source.name
            try:
                families, seconds = query.result(max(0.0, deadline - time.monotonic()))
            except FutureTimeout:
                self._failed(state, f"no answer within {timeout:.1f}s")
            except Exception as exc:
                self._failed(state, error_text(exc))
            else:
                self._answered(state, seconds)
                yield from families
            up.add_metric([name], 1.0 if state.up else 0.0)
            errors.add_metric([name], state.errors)
            durations.add_metric([name], state.duration)
        yield from (up, errors, durations)

    def close(self) -> None:
        """Close the sources' connections, once a query still running has ended (a client is
        not closed under the thread that is using it)."""
        for state in self._states:
            with state.lock:
                running = state.query
            if running is not None:
                with contextlib.suppress(Exception):
                    running.exception(timeout=self.timeout + 1.0)
            if running is None or running.done():
                with contextlib.suppress(Exception):
                    state.source.close()

    def _query(self, state: _State, timeout: float) -> Future[tuple[list[Metric], float]]:
        """The source's running query, or a new one in a thread of its own."""
        with state.lock:
            if state.query is None or state.query.done():
                future: Future[tuple[list[Metric], float]] = Future()
                future.set_running_or_notify_cancel()
                thread = threading.Thread(
                    target=_run,
                    args=(state.source, timeout, future),
                    name=f"collector-{state.source.name}",
                    daemon=True,  # a hung source must not hold up exit
                )
                thread.start()
                state.query = future
            return state.query

    def _failed(self, state: _State, reason: str) -> None:
        with state.lock:
            state.errors += 1
            was_up, state.up = state.up, False
        if was_up is not False:
            source = state.source
            log.warning(
                "%s at %s does not answer: %s",
                source.name,
                source.where,
                reason,
                extra=_extra(state),
            )

    def _answered(self, state: _State, seconds: float) -> None:
        with state.lock:
            was_up, state.up, state.duration = state.up, True, seconds
        if was_up is False:
            log.info("%s answers again", state.source.name, extra=_extra(state))
        elif was_up is None:
            log.info("%s answers", state.source.name, extra=_extra(state))


def _extra(state: _State) -> dict[str, Any]:
    return {"source": state.source.name}


def _run(source: Source, timeout: float, future: Future[tuple[list[Metric], float]]) -> None:
    started = time.monotonic()
    try:
        families = source.read(timeout)
    except BaseException as exc:
        future.set_exception(exc)
    else:
        future.set_result((families, time.monotonic() - started))


class _QuietHandler(WSGIRequestHandler):
    """No access log line per scrape."""

    def log_message(self, format: str, *args: Any) -> None:
        pass


def serve(collector: HarnessCollector, host: str, port: int) -> WSGIServer:
    """Serve ``collector`` as Prometheus text on ``http://host:port/metrics`` from a daemon
    thread; OSError when the port cannot be bound. ``server.shutdown()`` stops it."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    app = make_wsgi_app(registry)

    def with_budget(environ: dict[str, Any], start_response: Any) -> Any:
        header = environ.get("HTTP_X_PROMETHEUS_SCRAPE_TIMEOUT_SECONDS")
        try:
            limit = float(header) * HEADROOM if header else None
        except ValueError:
            limit = None
        with collector.budget(limit):
            return app(environ, start_response)

    server = make_server(host, port, with_budget, ThreadingWSGIServer, _QuietHandler)
    threading.Thread(target=server.serve_forever, name="collector-http", daemon=True).start()
    return server
