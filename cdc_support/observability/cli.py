"""``cdc-spec collector``: serve the harness collector's metrics until SIGTERM/SIGINT.

Example::

    CDC_COLLECTOR_POSTGRES_DSN=postgresql://postgres:secret@127.0.0.1:5432/postgres \\
    cdc-spec collector --port 9478 --kafka-bootstrap 127.0.0.1:9092 --groups-regex 'sink-.*'

The DSNs may be given by environment (``CDC_COLLECTOR_POSTGRES_DSN``,
``CDC_COLLECTOR_MYSQL_DSN``) so no password shows in the process table. Logs are JSON lines
(:mod:`cdc_support.logs`) on stderr, and in ``--log-file`` when given.

Exit status: 0 after SIGTERM/SIGINT; 2 for a bad option or a port that cannot be bound (one
line naming the option). A source that does not answer never stops the collector: it is
reported as ``cdc_collector_source_up{source} 0``.
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import signal
import sys
from typing import Any

from cdc_support.arguments import LOG_LEVELS, port_number
from cdc_support.logs import configure_json_logging
from cdc_support.stopping import holding_stop_signals, wait_for_stop_signal

__all__ = ["add_parser", "run"]

EXIT_CONFIG = 2
ENV_POSTGRES = "CDC_COLLECTOR_POSTGRES_DSN"
ENV_MYSQL = "CDC_COLLECTOR_MYSQL_DSN"


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds, got {text!r}") from None
    if not 0 < value <= 60:
        raise argparse.ArgumentTypeError(f"expected seconds within (0, 60], got {value}")
    return value


def _regex(text: str) -> re.Pattern[str]:
    try:
        return re.compile(text)
    except re.error as exc:
        raise argparse.ArgumentTypeError(f"not a regular expression: {text!r} ({exc})") from None


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``collector`` on a ``cdc-spec`` subcommand parser."""
    parser = subparsers.add_parser(
        "collector",
        help="serve the harness metrics: slot WAL, binlog position, consumer-group lag",
        description=(__doc__ or "").split("\n")[0],
        epilog="Exit status: 0 after SIGTERM/SIGINT; 2 bad option or port in use.",
    )
    parser.add_argument("--port", type=port_number, required=True, help="port to serve /metrics on")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (127.0.0.1)")
    parser.add_argument(
        "--postgres-dsn",
        default=os.environ.get(ENV_POSTGRES),
        help=f"PostgreSQL URI or key=value DSN (default: ${ENV_POSTGRES}; required)",
    )
    parser.add_argument(
        "--mysql-dsn",
        default=os.environ.get(ENV_MYSQL),
        help=f"mysql://user:password@host:port (default: ${ENV_MYSQL}; optional)",
    )
    parser.add_argument("--kafka-bootstrap", required=True, help="Kafka bootstrap HOST:PORT")
    parser.add_argument(
        "--groups-regex",
        type=_regex,
        help="report only the consumer groups whose whole id matches (default: all but "
        "Kafka Connect's and the _-prefixed internal ones)",
    )
    parser.add_argument(
        "--timeout",
        type=_seconds,
        default=2.0,
        help="seconds each source may take per scrape (2; shortened to fit Prometheus' "
        "scrape timeout)",
    )
    parser.add_argument("--log-level", default="INFO", choices=LOG_LEVELS, help="log level (INFO)")
    parser.add_argument("--log-file", help="also append the log to this file")
    parser.set_defaults(handler=lambda args: run(args, parser))
    return parser


def _sources(args: argparse.Namespace, parser: argparse.ArgumentParser) -> list[Any]:
    """The sources the options name; exits 2 (one line naming the option) for a bad one."""
    from cdc_support.observability.kafka_lag import ConsumerGroupLag
    from cdc_support.observability.mysql_binlog import MySqlBinlog
    from cdc_support.observability.postgres_wal import PostgresWal

    if not args.postgres_dsn:
        parser.error(f"--postgres-dsn (or ${ENV_POSTGRES}) is required")
    try:
        sources: list[Any] = [PostgresWal(args.postgres_dsn)]
    except Exception:  # no message: it may quote the password
        parser.error("--postgres-dsn: not a PostgreSQL DSN; expected postgresql://user@host/db")
    if args.mysql_dsn:
        try:
            sources.append(MySqlBinlog(args.mysql_dsn))
        except ValueError as exc:
            parser.error(f"--mysql-dsn: {exc}")
    sources.append(ConsumerGroupLag(args.kafka_bootstrap, args.groups_regex))
    return sources


def _configure_logs(args: argparse.Namespace, parser: argparse.ArgumentParser) -> None:
    """JSON lines on stderr, and in ``--log-file`` when given."""
    configure_json_logging(sys.stderr, "collector", args.log_level)
    # kafka-python logs every failed reconnect; the collector reports an outage once
    logging.getLogger("kafka").setLevel(logging.CRITICAL)
    if args.log_file:
        try:
            configure_json_logging(args.log_file, "collector", args.log_level)
        except OSError as exc:
            parser.error(f"--log-file {args.log_file}: cannot write it ({exc.strerror or exc})")


def run(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    """Serve until SIGTERM/SIGINT, then exit the process with 0; returns 2 when the port
    cannot be bound."""
    from cdc_support.observability.collector import HarnessCollector, serve

    sources = _sources(args, parser)
    with holding_stop_signals():  # before the server's threads start: see cdc_support.stopping
        collector = HarnessCollector(sources, timeout=args.timeout)
        try:
            server = serve(collector, args.host, args.port)
        except OSError as exc:
            print(
                f"cdc-spec collector: error: cannot serve on {args.host} port {args.port} "
                f"({exc.strerror or exc}); choose a free --port (or another --host)",
                file=sys.stderr,
            )
            return EXIT_CONFIG
        _configure_logs(args, parser)
        log = logging.getLogger("cdc_support.observability")
        host, port = server.server_address[:2]
        log.info(
            "serving http://%s:%s/metrics (sources: %s)",
            host,
            port,
            ", ".join(s.name for s in sources),
        )
        try:
            signum = wait_for_stop_signal()
            log.info("stopping (%s)", signal.Signals(signum).name)
        finally:
            server.shutdown()
            server.server_close()
            collector.close()
            log.info("stopped")
            logging.shutdown()
        # No interpreter finalization: a source's query thread (a daemon, see collector.py) may
        # still be inside its client, hung on an unreachable database or broker.
        os._exit(0)
