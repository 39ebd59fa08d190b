"""``cdc-spec sink``: run a sink worker as its own process.

Examples::

    cdc-spec sink --bootstrap 127.0.0.1:9092 --topic shop.public.customers \\
        --group customers-to-delta --format delta --table-uri /data/lake/customers --key id \\
        --metrics-port 9464

    cdc-spec sink --bootstrap 127.0.0.1:9092 --topic shop.public.customers \\
        --group customers-to-iceberg --format iceberg --warehouse /data/warehouse \\
        --table shop.customers --key id --metrics-port 9465 --commit-log sink.jsonl

It logs JSON lines (``cdc_support.logs``: timestamp, level, component "sink", logger, message,
topic, table) to stderr, and to ``--log-file`` when given; ``--log-format text`` makes stderr
plain text for people.

Exit status: 0 after SIGTERM/SIGINT (the batch in hand is committed first); 2 for bad
options and for what they lead to (no Kafka broker answers at --bootstrap, the topic is
missing with --require-topic, a table path that is a file, --key columns the table or the
records lack), with one line naming the option; 3 when another writer changed the table (one
writer per table); 1 for any other error.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from collections.abc import Sequence

from cdc_support.arguments import LOG_LEVELS, port_number
from cdc_support.logs import configure_json_logging
from cdc_support.sinks.base import MaintenancePolicy, SinkConfigError, SinkConflict
from cdc_support.sinks.config import FORMATS, SinkTarget, WorkerConfig
from cdc_support.sinks.unavailable import UNAVAILABLE_PLACEHOLDER

__all__ = ["add_parser", "config_from_args", "log_fields", "main", "parse_config"]

EXIT_CONFIG = 2
EXIT_CONFLICT = 3
LOG_FORMATS = ("json", "text")
TEXT_FORMAT = "%(asctime)s %(levelname)s cdc-spec sink: %(message)s"


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a number >= 1, got {value}")
    return value


def _non_negative(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a number >= 0 (0 turns it off), got {value}")
    return value


def _pair(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    return key, value


def _key(text: str) -> tuple[str, ...]:
    columns = tuple(c.strip() for c in text.split(","))
    if not all(columns):
        raise argparse.ArgumentTypeError(
            f"expected column names separated by commas (e.g. id or order_id,line_no), got {text!r}"
        )
    return columns


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``cdc-spec sink``."""
    kafka = parser.add_argument_group("Kafka")
    kafka.add_argument("--bootstrap", required=True, help="Kafka bootstrap servers (host:port)")
    kafka.add_argument("--topic", required=True, help="the Debezium topic to apply")
    kafka.add_argument("--group", required=True, help="consumer group id of this worker")
    kafka.add_argument(
        "--require-topic",
        action="store_true",
        help="exit (status 2) when the topic does not exist, instead of warning once and "
        "waiting for it",
    )
    kafka.add_argument(
        "--dlq-topic", help="dead-letter topic for records that cannot be applied (<topic>.dlq)"
    )
    kafka.add_argument(
        "--unavailable-placeholder",
        default=UNAVAILABLE_PLACEHOLDER,
        help="the connector's unavailable.value.placeholder: a column holding it (an unchanged "
        "TOAST value) keeps its previous value (%(default)s)",
    )
    kafka.add_argument(
        "--instance-id",
        help="static group membership id (<group>-worker): a restart takes the partitions back "
        "at once; a second worker with the same id fences the first",
    )
    kafka.add_argument(
        "--offset-commit-ms",
        type=_non_negative,
        default=5000,
        help="commit the group's offsets at most this often, always after the table commit "
        "(5000; 0 = after every batch). The table records its own position",
    )
    kafka.add_argument(
        "--consumer-config",
        type=_pair,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra librdkafka consumer setting (repeatable)",
    )
    table = parser.add_argument_group("table")
    table.add_argument(
        "--format", required=True, choices=FORMATS, help="table format: delta or iceberg"
    )
    table.add_argument(
        "--key", required=True, type=_key, help="primary key column(s), comma-separated"
    )
    table.add_argument("--table-uri", help="delta: the table's location (path or s3://...)")
    table.add_argument(
        "--storage-option",
        type=_pair,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="delta: a delta-rs storage option (repeatable)",
    )
    table.add_argument("--warehouse", help="iceberg: the warehouse folder")
    table.add_argument("--table", help="iceberg: NAMESPACE.TABLE")
    table.add_argument(
        "--catalog-uri",
        help="iceberg: SQLAlchemy URL of the SQL catalog (SQLite file in the warehouse)",
    )
    table.add_argument("--catalog-name", default="cdc", help="iceberg: catalog name (cdc)")
    table.add_argument(
        "--table-property",
        type=_pair,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a property of the table when the worker creates it (repeatable)",
    )
    table.add_argument(
        "--app-id",
        default="cdc-spec-sink",
        help="delta: app transaction id prefix (<app-id>:<topic>:<partition>)",
    )
    run = parser.add_argument_group("batches, maintenance, observability")
    run.add_argument("--batch-size", type=_positive, default=2000, help="records per batch (2000)")
    run.add_argument(
        "--batch-ms", type=_positive, default=500, help="longest wait for a batch to fill, ms (500)"
    )
    run.add_argument(
        "--expire-every",
        type=_non_negative,
        default=10,
        help="iceberg: expire snapshots every N commits (10)",
    )
    run.add_argument(
        "--keep-snapshots",
        type=_non_negative,
        default=4,
        help="iceberg: snapshots kept by expiry (4)",
    )
    run.add_argument(
        "--compact-files",
        type=_non_negative,
        default=16,
        help="iceberg: rewrite the table when it has more data files than this (16)",
    )
    run.add_argument(
        "--optimize-every",
        type=_non_negative,
        default=50,
        help="delta: OPTIMIZE every N commits (50)",
    )
    run.add_argument(
        "--metrics-port", type=port_number, help="serve Prometheus /metrics on this port"
    )
    run.add_argument("--metrics-host", default="127.0.0.1", help="metrics address (127.0.0.1)")
    run.add_argument("--commit-log", help="append one JSON line per batch to this file")
    run.add_argument("--log-level", default="INFO", choices=LOG_LEVELS, help="log level (INFO)")
    run.add_argument(
        "--log-format",
        default="json",
        choices=LOG_FORMATS,
        help="stderr: JSON lines, or plain text for people (json)",
    )
    run.add_argument("--log-file", help="also append the log to this file, as JSON lines")


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``sink`` on a ``cdc-spec`` subcommand parser."""
    parser = subparsers.add_parser(
        "sink",
        help="apply a Debezium topic to a Delta or Iceberg table",
        description=__doc__.split("\n")[0],
        epilog="Exit status: 0 after SIGTERM/SIGINT; 2 bad options, unreachable Kafka, missing "
        "topic with --require-topic, a table path that is a file, unusable --key; 3 another "
        "writer; 1 error.",
    )
    add_arguments(parser)
    return parser


def config_from_args(args: argparse.Namespace) -> WorkerConfig:
    """A :class:`WorkerConfig` from parsed options (ValueError naming a bad combination)."""
    target = SinkTarget(
        format=args.format,
        key=tuple(args.key),
        table_uri=args.table_uri,
        storage_options=dict(args.storage_option),
        warehouse=args.warehouse,
        table=args.table,
        catalog_uri=args.catalog_uri,
        catalog_name=args.catalog_name,
        table_properties=dict(args.table_property),
    )
    return WorkerConfig(
        bootstrap=args.bootstrap,
        topic=args.topic,
        group=args.group,
        target=target,
        batch_size=args.batch_size,
        batch_ms=args.batch_ms,
        dlq_topic=args.dlq_topic,
        metrics_port=args.metrics_port,
        metrics_host=args.metrics_host,
        commit_log=args.commit_log,
        app_id=args.app_id,
        policy=MaintenancePolicy(
            expire_every=args.expire_every,
            keep_snapshots=args.keep_snapshots,
            compact_files=args.compact_files,
            optimize_every=args.optimize_every,
        ),
        consumer_config=dict(args.consumer_config),
        offset_commit_ms=args.offset_commit_ms,
        instance_id=args.instance_id,
        require_topic=args.require_topic,
        unavailable_placeholder=args.unavailable_placeholder,
    )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cdc-spec sink", description=__doc__.split("\n")[0])
    add_arguments(parser)
    return parser


def parse_config(argv: Sequence[str]) -> WorkerConfig:
    """Parse ``cdc-spec sink`` options; exits with status 2 and a message for bad ones."""
    parser = _parser()
    args = parser.parse_args(list(argv))
    try:
        return config_from_args(args)
    except ValueError as exc:
        parser.error(str(exc))
        raise  # unreachable: error() exits


def log_fields(config: WorkerConfig) -> dict[str, str]:
    """What every log line of a worker carries: its topic and its table."""
    target = config.target
    table = target.table_uri if target.format == "delta" else target.table
    return {"topic": config.topic, "table": str(table)}


def _configure_logging(args: argparse.Namespace, config: WorkerConfig) -> None:
    """stderr (JSON lines, or text), and ``--log-file`` (JSON lines) when given."""
    fields = log_fields(config)
    if args.log_format == "json":
        configure_json_logging(sys.stderr, "sink", args.log_level, fields=fields)
    else:
        logging.basicConfig(level=args.log_level, format=TEXT_FORMAT, stream=sys.stderr)
    if args.log_file:
        configure_json_logging(args.log_file, "sink", args.log_level, fields=fields)


def run(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    """Run the worker for parsed options until SIGTERM/SIGINT."""
    try:
        config = config_from_args(args)
    except ValueError as exc:
        parser.error(str(exc))
    try:
        _configure_logging(args, config)
    except OSError as exc:
        parser.error(f"--log-file {args.log_file}: cannot write it ({exc.strerror})")
    from cdc_support.sinks.worker import SinkWorker

    log = logging.getLogger("cdc_support.sinks")
    try:
        worker = SinkWorker(config)
        signal.signal(signal.SIGTERM, worker.request_stop)
        signal.signal(signal.SIGINT, worker.request_stop)
        worker.run()
    except SinkConfigError as exc:  # one line naming the option; no traceback
        log.error("%s", exc)
        return EXIT_CONFIG
    except SinkConflict as exc:
        log.error("%s", exc)
        return EXIT_CONFLICT
    except Exception as exc:
        log.exception("the sink worker failed: %s", exc)
        return 1
    log.info("stopped after %d batches", worker.batches)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m cdc_support.sinks.cli ...`` (the options of ``cdc-spec sink``)."""
    parser = _parser()
    args = parser.parse_args(argv)
    return run(args, parser)


if __name__ == "__main__":
    raise SystemExit(main())
