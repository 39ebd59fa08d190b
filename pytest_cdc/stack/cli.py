"""``cdc-spec up | status | down | generate | report | bench``: the stack from the command line.

``up`` starts a stack in the background (progress as the plugin prints it), records it (see
:mod:`pytest_cdc.stack.record`) and prints its endpoints, passwords as ``***``; ``status``
probes each recorded service; ``down`` stops them and waits until every process is gone,
then removes the cdc-spec containers left by docker stacks whose run is gone (found by label:
Ryuk cannot run here).

Exit status: 0 done (also `up` when a stack is already up and `down` when none is); 1 `status`
with a service down, a stale record or no stack up, and a failure of what a command ran;
2 bad input (one line naming the fix).

Only argparse and the record are imported here: the stack, probes, drivers and pytest are
imported by the command that needs them, so ``cdc-spec --help`` and ``cdc-spec sink`` stay light.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cdc_support.sinks.cli import _positive  # one check of a count, shared
from pytest_cdc.stack import record as records

if TYPE_CHECKING:
    from pytest_cdc.options import Setting

__all__ = ["COMPONENTS", "CommandError", "add_parsers"]

COMPONENTS = ("postgres", "mariadb", "kafka", "connect")
REQUIRED_COMPONENTS = ("postgres", "kafka", "connect")
UP_BACKENDS = ("auto", "native", "docker")
TABLES = ("customers", "products", "orders")  # cdc_support.workload.WORKLOAD_TABLES
EXIT_FAILED = 1
EXIT_USAGE = 2


class CommandError(Exception):
    """What a command says in one line before it exits with ``status``."""

    def __init__(self, message: str, status: int = EXIT_USAGE) -> None:
        super().__init__(message)
        self.status = status


Handler = Callable[[argparse.Namespace], int]


def _guarded(name: str, handler: Handler) -> Handler:
    """The handler, with a CommandError, a StackRecordError or Ctrl-C printed as one line."""

    def run(args: argparse.Namespace) -> int:
        try:
            return handler(args)
        except records.StackRecordError as exc:
            error = CommandError(str(exc))
        except CommandError as exc:
            error = exc
        except KeyboardInterrupt:
            error = CommandError("interrupted", 130)
        print(f"cdc-spec {name}: error: {error}", file=sys.stderr)
        return error.status

    return run


def _components(text: str) -> tuple[str, ...]:
    names = tuple(dict.fromkeys(n.strip() for n in text.split(",") if n.strip()))
    unknown = [n for n in names if n not in COMPONENTS]
    if unknown:
        raise argparse.ArgumentTypeError(
            f"unknown component {', '.join(unknown)}: choose from {','.join(COMPONENTS)}"
        )
    missing = [n for n in REQUIRED_COMPONENTS if n not in names]
    if missing:
        raise argparse.ArgumentTypeError(
            f"{','.join(missing)} missing: the stack always runs "
            f"{','.join(REQUIRED_COMPONENTS)} (Debezium needs them); only mariadb is optional"
        )
    return names


def _command(
    commands: argparse._SubParsersAction, name: str, handler: Handler, summary: str, **kwargs: Any
) -> argparse.ArgumentParser:
    """Add ``cdc-spec NAME`` (``summary`` in the command list) running ``handler``."""
    parser = commands.add_parser(name, help=summary, **kwargs)
    parser.set_defaults(handler=_guarded(name, handler))
    return parser


def add_parsers(commands: argparse._SubParsersAction) -> None:
    """Register up, status, down, generate, report and bench on ``cdc-spec``'s subcommands."""
    where = f"the stack record, stack.json in ${records.STATE_ENV} (else in "
    where += "$XDG_STATE_HOME/cdc-spec, else in ~/.local/state/cdc-spec)"
    up = _command(
        commands,
        "up",
        up_command,
        "start a stack in the background and print its endpoints",
        description=f"Start PostgreSQL, MariaDB, Kafka and Connect, write {where}, print the "
        "endpoints (passwords: in the credentials.json it names) and return when all are ready. "
        "Exit 0 also when a stack is already up (it says where).",
    )
    up.add_argument(
        "--backend",
        choices=UP_BACKENDS,
        help="how to run it (default: env CDC_BACKEND, else auto = docker when an engine "
        "answers and the images are built, else native)",
    )
    up.add_argument(
        "--components",
        type=_components,
        default=COMPONENTS,
        metavar="LIST",
        help=f"comma-separated, default {','.join(COMPONENTS)}; only mariadb may be left out",
    )
    up.add_argument(
        "--runtime-dir",
        "--cdc-runtime-dir",  # the name the plugin's messages give
        type=Path,
        metavar="DIR",
        help="Kafka/Connect/Debezium jars (default: env CDC_RUNTIME_DIR, else runtime/dist)",
    )
    _command(
        commands,
        "status",
        status_command,
        "each service of the stack: address, up/down, version",
        description="Probe each service recorded in the stack record. Exit 0 when every one "
        "answers; 1 when one is down, the record is stale, or no stack is up.",
    )
    _command(
        commands,
        "down",
        down_command,
        "stop the stack and wait until every process is gone",
        description="Stop every recorded process, wait until all are gone, remove the stack's "
        "files and the record; then remove the containers of docker stacks whose run is gone "
        "(killed, or left running by --cdc-keep-stack). Exit 0 also when no stack is up.",
    )
    generate = _command(
        commands,
        "generate",
        generate_command,
        "load seeded Faker rows into a PostgreSQL table; prints rows/s",
        description="COPY seeded e-commerce rows into a table (the workload tables are created "
        "if missing; keys continue after the table's largest id).",
    )
    generate.add_argument("--table", choices=TABLES, default="customers", help="(customers)")
    generate.add_argument("--rows", type=_positive, default=1000, help="how many (1000)")
    generate.add_argument("--seed", type=int, default=1, help="Faker/random seed (1)")
    generate.add_argument("--dsn", help="PostgreSQL URI (default: the running stack's)")
    report = _command(
        commands,
        "report",
        report_command,
        "build the single-file Allure report",
        description="Build the offline single-file Allure report (python -m pytest_cdc.report).",
    )
    for option, default, text in (
        ("--results", "reports/allure-results", "allure results"),
        ("--output", "reports/html", "where index.html goes"),
        ("--repo-root", ".", "holds allurerc.mjs and node_modules"),
    ):
        report.add_argument(
            option, type=Path, default=Path(default), metavar="DIR", help=f"{text} ({default})"
        )
    bench = _command(
        commands,
        "bench",
        bench_command,
        "run the benchmarks (what make bench runs); cdc-spec bench --help lists options",
        add_help=False,
        prefix_chars="\0",  # every argument, --help included, goes to pytest_cdc.bench
    )
    bench.add_argument("args", nargs=argparse.REMAINDER)


# --------------------------------------------------------------------------- up / status / down


def _backend(option: str | None) -> Setting:
    from pytest_cdc.options import Setting, check_backend

    if option:
        return Setting(option, "cdc-spec up --backend")
    env = os.environ.get("CDC_BACKEND", "")
    return check_backend(Setting(env, "env CDC_BACKEND") if env else Setting("auto", "default"))


def _runtime_dir(option: Path | None) -> Path:
    from pytest_cdc.options import default_runtime_dir

    return option or Path(os.environ.get("CDC_RUNTIME_DIR") or default_runtime_dir())


def _say(line: str) -> None:
    print(line, flush=True)


def up_command(args: argparse.Namespace) -> int:
    """Start, detach and record a stack; print its endpoints."""
    from pytest_cdc.backends import open_stack
    from pytest_cdc.errors import CdcSetupError, CdcUsageError, StackStartError

    path = records.record_path()
    with records.locked(path, waiting=f"cdc: waiting for another cdc-spec up/down ({path})"):
        existing = records.load(path)
        if existing is not None and existing.running():
            _say(f"cdc: a stack is already up: {existing.describe()}")
            _say(f"cdc:   recorded in {path}; `cdc-spec status` shows it, `cdc-spec down` stops it")
            return 0
        if existing is not None:
            _say(f"cdc: the stack recorded in {path} is gone: cleaning up its files")
            _stop(existing, path)
        try:
            stack = open_stack(
                _backend(args.backend),
                _runtime_dir(args.runtime_dir),
                _say,
                with_mysql="mariadb" in args.components,
            )
        except (CdcSetupError, CdcUsageError) as exc:  # the message names the fix
            raise CommandError(str(exc)) from None
        except StackStartError as exc:  # what was awaited, what was seen, the log's tail
            raise CommandError(str(exc), EXIT_FAILED) from None
        try:
            stack.detach()
        except BaseException:
            stack.close()
            raise
        record = records.record_of(stack, "cdc-spec up")
        try:
            records.save(record, path)
        except BaseException:
            _stop_lines(record)
            raise
    _say(f"cdc: stack up ({record.backend}), recorded in {path}:")
    for key, value in record.endpoints.as_dict().items():
        _say(f"cdc:   {key} = {value}")
    _say(f"cdc:   passwords: in {record.endpoints.credentials_file} (mode 0600)")
    _say("cdc:   stop it with: cdc-spec down")
    return 0


def _stop_lines(record: records.StackRecord) -> list[str]:
    """Stop a recorded stack: a native one's processes, a docker one's containers."""
    if record.backend != "docker":
        return records.stop_recorded(record)
    from pytest_cdc.stack.docker.cleanup import remove_stack_in

    return remove_stack_in(Path(record.workdir))


def _stop(record: records.StackRecord, path: Path) -> None:
    from pytest_cdc.errors import CdcSetupError

    try:
        lines = _stop_lines(record)
    except (RuntimeError, CdcSetupError) as exc:
        raise CommandError(f"{exc}: {path} is kept; try again", EXIT_FAILED) from None
    for line in lines:
        _say(f"cdc:   {line}")
    records.remove(path)


def _remove_leftover_containers() -> list[str]:
    """Remove the containers of docker stacks whose run is gone, when an engine answers."""
    from pytest_cdc.stack.docker.engine import docker_engine_answers

    if not docker_engine_answers():
        return []
    from pytest_cdc.stack.docker.cleanup import remove_orphans

    try:
        return remove_orphans(include_detached=True)
    except RuntimeError as exc:
        raise CommandError(f"{exc}; try again", EXIT_FAILED) from None


LAG_QUERY = "debezium_streaming_milliseconds_behind_source"


def _address(component: str, record: records.StackRecord) -> str:
    from cdc_support.endpoints import redact_uri

    ep = record.endpoints
    address = {
        "postgres": ep.postgres_dsn,
        "kafka": ep.kafka_bootstrap,
        "connect": ep.connect_url,
        "collector": ep.collector_url,
        "prometheus": ep.prometheus_url,
    }.get(component, ep.mysql_dsn or "")
    return redact_uri(address)


def _version(component: str, versions: dict[str, str]) -> str:
    if component == "collector":
        from importlib.metadata import version as installed

        return f"cdc-spec {installed('cdc-spec')}"
    version = versions.get(component, "?")
    if component == "connect" and versions.get("debezium"):
        version += f" (debezium {versions['debezium']})"
    return version


def status_command(args: argparse.Namespace) -> int:
    """Each recorded service: address, up/down, version; 0 only when every one answers."""
    path = records.record_path()
    record = records.load(path)
    if record is None:
        _say(f"no stack is up (no record at {path}): start one with `cdc-spec up`")
        return EXIT_FAILED
    from pytest_cdc.stack.probes import endpoint_probes

    _say(f"{record.describe()} (record: {path})")
    down = 0
    for name, probe in endpoint_probes(record.endpoints).items():
        seen = probe.check()
        down += seen is not None
        line = f"  {name:<10} {_address(name, record):<52} {'up' if seen is None else 'DOWN':<5}"
        _say(f"{line} {_version(name, record.versions)}" + (f"; seen: {seen}" if seen else ""))
    if not record.running():
        _say("the recorded stack is gone (none of its processes runs): `cdc-spec down` clears it")
        return EXIT_FAILED
    for line in _lag_lines(record.endpoints.prometheus_url):
        _say(line)
    return EXIT_FAILED if down else 0


def _lag_lines(prometheus_url: str) -> list[str]:
    """Each Debezium connector's lag as Prometheus has it now (nothing without Prometheus)."""
    if not prometheus_url:
        return []
    from cdc_support.observability.prometheus import PrometheusClient, PrometheusError

    client = PrometheusClient(prometheus_url)
    try:
        samples = client.query(LAG_QUERY)
    except PrometheusError as exc:
        return [f"connector lag: not known ({exc})"]
    if not samples:
        return [f"connector lag: no Debezium connector streams (Prometheus: {prometheus_url})"]
    lines = [f"connector lag (MilliSecondsBehindSource, Prometheus: {prometheus_url}):"]
    for sample in sorted(samples, key=lambda s: s.labels.get("server", "")):
        kind, server = sample.labels.get("connector_type", "?"), sample.labels.get("server", "?")
        lines.append(f"  {server:<40} {kind:<9} {sample.value:,.0f} ms")
    return lines


def down_command(args: argparse.Namespace) -> int:
    """Stop the recorded stack, wait until its processes are gone, remove the record."""
    path = records.record_path()
    with records.locked(path, waiting=f"cdc: waiting for another cdc-spec up/down ({path})"):
        record = records.load(path)
        if record is not None:
            _say(f"cdc: stopping the {record.describe()}")
            _stop(record, path)
            _say(f"cdc: stack stopped, {path} removed")
        leftovers = _remove_leftover_containers()
    for line in leftovers:
        _say(f"cdc: {line} (its run is gone)")
    if record is None and not leftovers:
        _say(f"no stack is up (no record at {path}): nothing to stop")
    return 0


# ----------------------------------------------------------------------- generate / report / bench


def generate_command(args: argparse.Namespace) -> int:
    """COPY seeded rows into a table of the stack's (or --dsn's) PostgreSQL; print rows/s."""
    import psycopg

    from cdc_support.endpoints import redact_uri

    dsn = args.dsn
    if not dsn:
        record = records.load()
        if record is None:
            raise CommandError(
                "no --dsn and no stack is up: start one with `cdc-spec up`, or pass "
                "--dsn postgresql://USER:PASSWORD@HOST:PORT/DATABASE"
            )
        dsn = record.endpoints.postgres_dsn
    try:
        count, seconds = load_generated(dsn, args.table, args.rows, args.seed)
    except psycopg.Error as exc:
        reason = " ".join(str(exc).split())
        raise CommandError(
            f"loading into {redact_uri(dsn)} failed ({reason}): check --dsn or `cdc-spec status`",
            EXIT_FAILED,
        ) from None
    _say(
        f"generated {count} {args.table} rows (seed {args.seed}) into {redact_uri(dsn)} in "
        f"{seconds:.2f}s: {count / seconds:,.0f} rows/s"
    )
    return 0


def load_generated(dsn: str, table: str, rows: int, seed: int) -> tuple[int, float]:
    """Create the workload tables if missing and COPY ``rows`` new rows of ``table`` (keys
    after its largest); (rows written, seconds taken to generate and write them)."""
    import psycopg
    from psycopg import sql

    from cdc_support.postgres.loader import PgTableWriter, bulk_load, create_schema
    from cdc_support.workload import EcommerceGenerator

    with psycopg.connect(dsn, connect_timeout=10) as conn:
        create_schema(conn)
        query = sql.SQL("SELECT max(id) FROM {}").format(sql.Identifier(table))
        gen = EcommerceGenerator(seed)
        gen.reserve_keys_above(table, conn.execute(query).fetchone()[0])  # type: ignore[index]
        customers = PgTableWriter(conn).keys("customers") if table == "orders" else []
        started = time.perf_counter()
        count = bulk_load(conn, table, (gen.new_row(table, customers) for _ in range(rows)))
        return count, time.perf_counter() - started


def report_command(args: argparse.Namespace) -> int:
    """Build the single-file report; print its path."""
    from pytest_cdc.report.html import ReportError, build_report

    try:
        page = build_report(args.results.resolve(), args.output.resolve(), repo_root=args.repo_root)
    except ReportError as exc:
        raise CommandError(str(exc), EXIT_FAILED) from None
    _say(str(page))
    return 0


def bench_command(args: argparse.Namespace) -> int:
    """``python -m pytest_cdc.bench`` with the given arguments."""
    from pytest_cdc.bench import main

    return main(args.args, prog="cdc-spec bench")
