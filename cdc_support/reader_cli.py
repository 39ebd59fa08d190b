"""``cdc-spec reader``: a native CDC reader as a process of its own, killable for real.

Examples::

    CDC_READER_DSN=postgresql://cdc:secret@127.0.0.1:5432/shop \\
    cdc-spec reader postgres --table public.orders --slot orders_reader \\
        --publication orders_reader_pub --out orders.jsonl

    CDC_READER_DSN=mysql://cdc:secret@127.0.0.1:3306 \\
    cdc-spec reader mariadb --schema shop --table orders --position-file orders.pos.json \\
        --server-id 4242 --out orders.jsonl

``postgres`` runs :class:`~cdc_support.postgres.logical_decoding.LogicalDecodingConsumer`
(creating its slot and publication unless they exist; ``CDC_READER_ADMIN_DSN``, the tables'
owner, creates the publication when the streaming role may not); ``mariadb`` (or ``mysql``)
runs :class:`~cdc_support.mysql.binlog_reader.BinlogReader`. Addresses come from the
environment so no password shows in the process table (``--dsn`` is accepted too).

Each handed-over transaction's events are appended to ``--out`` as JSON lines
(:meth:`ChangeEvent.to_json_dict`) and flushed, and they are on disk before the reader
confirms them (the flush LSN the consumer reports; the binlog position the reader saves):
PostgreSQL fsyncs each transaction, the binlog reader fsyncs the file before each position
save (``--durability flush``: no fsync, several times faster; a killed reader still loses
nothing, a crashed machine may). A crash between writing and confirming repeats those
transactions after a restart: at-least-once, never a loss. A crash mid-write leaves a torn
last line: :func:`read_events` skips it and the next run cuts it off before appending.

Logs are JSON lines (:mod:`cdc_support.logs`) on stderr, and in ``--log-file`` when given; the
line whose message starts with ``streaming`` says the reader reads the source (again, after a
lost source came back). Once streaming, a lost source is retried every second for
``--retry-for`` seconds. SIGTERM/SIGINT stop the reader cleanly: it confirms what it wrote
and keeps its slot / position file, so a restart resumes where it stopped.

Exit status: 0 after SIGTERM/SIGINT; 1 when the source cannot be read (at the first start, or
for longer than ``--retry-for``) or ``--out`` cannot be written; 2 for a bad option (one line
naming it).
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

from cdc_support.arguments import LOG_LEVELS
from cdc_support.event_file import EventFile, read_events
from cdc_support.logs import configure_json_logging

__all__ = ["ENV_ADMIN_DSN", "ENV_DSN", "STREAMING", "EventFile", "add_parser", "read_events"]

ENV_DSN = "CDC_READER_DSN"
ENV_ADMIN_DSN = "CDC_READER_ADMIN_DSN"
STREAMING = "streaming"
"""The start of the log message that says the reader reads its source."""
DURABILITY = ("fsync", "flush")
EXIT_FAILED = 1
EXIT_CONFIG = 2
_SLOT = re.compile(r"[a-z0-9_]{1,63}")
log = logging.getLogger("cdc_support.reader")


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``reader`` (with ``postgres`` and ``mariadb``) on a ``cdc-spec`` parser."""
    parser = subparsers.add_parser(
        "reader",
        help="run a native CDC reader (logical decoding, binlog) writing events to a file",
        description=(__doc__ or "").split("\n")[0],
    )
    sources = parser.add_subparsers(dest="source", required=True, metavar="SOURCE")
    pg = sources.add_parser(
        "postgres",
        help="pgoutput logical decoding from a replication slot",
        description="Stream a PostgreSQL table's changes from a logical replication slot.",
    )
    pg.add_argument("--slot", required=True, help="replication slot (created unless it exists)")
    pg.add_argument("--publication", required=True, help="publication (created unless it exists)")
    pg.add_argument(
        "--admin-dsn",
        default=os.environ.get(ENV_ADMIN_DSN),
        help=f"the tables' owner, to create the publication (default: ${ENV_ADMIN_DSN}, "
        "else the DSN)",
    )
    maria = sources.add_parser(
        "mariadb",
        aliases=["mysql"],
        help="the binlog, read as a replica",
        description="Stream a MariaDB/MySQL table's row changes from the binary log.",
    )
    maria.add_argument("--schema", required=True, help="the database the tables are in")
    maria.add_argument(
        "--position-file", required=True, help="where the binlog position is kept (JSON)"
    )
    maria.add_argument(
        "--server-id", type=_server_id, required=True, help="replica id, unique per reader"
    )
    maria.add_argument(
        "--save-every",
        type=_seconds,
        default=0.1,
        help="seconds between two position saves, always after the events are written "
        "(0.1; 0: after every transaction, ~4x slower; a crash repeats up to this much)",
    )
    for sub, dsn_help in (
        (pg, "postgresql://user:password@host:port/db"),
        (maria, "mysql://user:password@host:port"),
    ):
        sub.add_argument(
            "--table",
            action="append",
            required=True,
            help="table to capture (repeat for more); schema.table for postgres",
        )
        sub.add_argument("--out", required=True, help="append the events here (JSON lines)")
        sub.add_argument(
            "--durability",
            choices=DURABILITY,
            default="fsync",
            help="fsync (default): the events are on disk before they are confirmed; flush: "
            "written to the OS before they are confirmed (a killed reader loses nothing, a "
            "crashed machine may; several times faster)",
        )
        sub.add_argument(
            "--dsn", default=os.environ.get(ENV_DSN), help=f"{dsn_help} (default: ${ENV_DSN})"
        )
        sub.add_argument(
            "--retry-for",
            type=_seconds,
            default=300.0,
            help="seconds a lost source is retried before giving up (300)",
        )
        sub.add_argument(
            "--progress-every", type=_seconds, default=10.0, help="seconds between progress lines"
        )
        sub.add_argument("--log-level", default="INFO", choices=LOG_LEVELS, help="(INFO)")
        sub.add_argument("--log-file", help="also append the log to this file")
        sub.set_defaults(handler=lambda args, sub=sub: run(args, sub))
    return parser


def _server_id(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not 1 <= value < 2**32:
        raise argparse.ArgumentTypeError(f"a server id is within 1..4294967295, got {value}")
    return value


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected seconds >= 0, got {value}")
    return value


# -------------------------------------------------------------------- the sources
def _postgres(args: argparse.Namespace, parser: argparse.ArgumentParser, out: EventFile) -> Any:
    import psycopg

    from cdc_support.postgres.logical_decoding import LogicalDecodingConsumer

    for option, dsn in (("--dsn", args.dsn), ("--admin-dsn", args.admin_dsn)):
        try:
            if dsn:
                psycopg.conninfo.conninfo_to_dict(dsn)
        except psycopg.Error:  # no message: it may quote the password
            parser.error(f"{option}: not a PostgreSQL DSN; expected postgresql://user@host/db")
    if not _SLOT.fullmatch(args.slot):
        parser.error(f"--slot {args.slot!r}: a slot name is 1-63 of a-z, 0-9 and _")
    return LogicalDecodingConsumer(
        args.dsn,
        slot=args.slot,
        publication=args.publication,
        tables=args.table,
        admin_dsn=args.admin_dsn,
        on_transaction=lambda tx: out.append(tx.events),
    )


def _mariadb(args: argparse.Namespace, parser: argparse.ArgumentParser, out: EventFile) -> Any:
    from cdc_support.mysql.binlog_reader import BinlogReader, PositionStore, binlog_source
    from cdc_support.mysql.source import parse_dsn

    try:
        address = parse_dsn(args.dsn).with_database(None)
    except ValueError as exc:  # its message shows the URI without the password
        parser.error(f"--dsn: {exc}")

    class SyncingStore(PositionStore):
        """Saves a position only once the events before it are on disk (group commit)."""

        def save(self, position: Any) -> None:
            if args.durability == "fsync":
                out.sync()
            super().save(position)

    source = binlog_source(address, args.schema, args.table)  # bound as the reader binds it
    return BinlogReader(
        address,
        schema=args.schema,
        tables=args.table,
        store=SyncingStore(Path(args.position_file), source),
        server_id=args.server_id,
        save_every=args.save_every,
        on_transaction=out.append,
    )


def _where(source: Any) -> str:
    """Where the reader resumed from: the slot's confirmed LSN, the binlog position."""
    if hasattr(source, "resumed_from"):
        return f"slot {source.slot} from {source.resumed_from or 'its creation'}"
    return f"binlog from {source.started_at}"


# -------------------------------------------------------------------- the run loop
def run(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    """Stream until SIGTERM/SIGINT (0), or until the source is lost for good (1)."""
    if not args.dsn:
        parser.error(f"--dsn (or ${ENV_DSN}) is required")
    # psycopg2 may report any handed-over transaction at its next status message
    out = EventFile(args.out, fsync_each=args.source == "postgres" and args.durability == "fsync")
    make = _postgres if args.source == "postgres" else _mariadb
    source = make(args, parser, out)
    try:
        out.open()
    except OSError as exc:
        parser.error(f"--out {args.out}: cannot write it ({exc.strerror or exc})")
    try:
        configure_json_logging(sys.stderr, "reader", args.log_level, fields=_fields(args))
        if args.log_file:
            configure_json_logging(args.log_file, "reader", args.log_level, fields=_fields(args))
    except OSError as exc:
        parser.error(f"--log-file {args.log_file}: cannot write it ({exc.strerror or exc})")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    if out.cut_bytes:
        log.warning("cut a torn last line of %s (%d bytes)", out.path, out.cut_bytes)
    try:
        source.start()
    except Exception as exc:
        out.close()
        print(
            f"cdc-spec reader: error: cannot read the source ({_one_line(exc)}); check the "
            "DSN, the table and the role's replication privileges",
            file=sys.stderr,
        )
        return EXIT_FAILED
    log.info("%s %s", STREAMING, _where(source), extra={"out": str(out.path)})
    try:
        return _loop(source, out, stop, args)
    finally:
        out.close()


def _loop(source: Any, out: EventFile, stop: threading.Event, args: argparse.Namespace) -> int:
    started = time.monotonic()
    progress = (started, 0)  # when, and how many events, at the last progress line
    lost_since: float | None = None
    while not stop.wait(0.2):
        source.events.clear()  # the file holds them; keep the process's memory flat
        if time.monotonic() - progress[0] >= args.progress_every:
            progress = _progress(out, *progress)
        if source.running:
            continue
        if out.error is not None:
            log.error("cannot write %s: %s", out.path, _one_line(out.error))
            return EXIT_FAILED
        now = time.monotonic()
        if lost_since is None:
            lost_since = now
            log.warning("lost the source (%s); retrying every second", _one_line(source.error))
        elif now - lost_since > args.retry_for:
            log.error("gave up: the source did not answer for %.0f s", args.retry_for)
            return EXIT_FAILED
        if stop.wait(1.0):
            break
        try:
            source.start()
        except Exception as exc:
            log.info("source still unavailable: %s", _one_line(exc))
            continue
        down = time.monotonic() - lost_since
        log.info("%s again after %.1f s: %s", STREAMING, down, _where(source))
        lost_since = None
    source.stop()
    seconds = time.monotonic() - started
    log.info(
        "stopped: %d events in %d transactions in %.1f s",
        out.events,
        out.transactions,
        seconds,
        extra={"events": out.events, "transactions": out.transactions, "seconds": seconds},
    )
    return 0


def _progress(out: EventFile, at: float, events: int) -> tuple[float, int]:
    """Log the events written and the events/s since the last progress line."""
    now = time.monotonic()
    rate = round((out.events - events) / max(now - at, 1e-9), 1)
    extra = {"events": out.events, "events_per_s": rate}
    log.info("progress: %d events, %.0f events/s", out.events, rate, extra=extra)
    return now, out.events


def _fields(args: argparse.Namespace) -> dict[str, Any]:
    return {"table": ",".join(args.table), "source": args.source}


def _one_line(exc: BaseException | None) -> str:
    text = " ".join(str(exc).split()) if exc is not None else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
