"""``make bench``: run the benchmarks in cdc_support.bench, on a stack where one is needed.

``python -m pytest_cdc.bench [--quick] [--only NAME ...] [--backend NAME]`` prints each table
and saves it to ``reports/bench/<name>.txt``. Benchmarks that need servers (binlog CDC) get the
endpoints of a stack opened here and stopped at the end, through the same seam as the plugin
(`pytest_cdc.backends.open_stack`; backend from --backend, env CDC_BACKEND, else auto).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import io
import os
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from cdc_support.bench import BENCHMARKS
from pytest_cdc.backends import open_stack
from pytest_cdc.errors import CdcSetupError, CdcUsageError
from pytest_cdc.options import BACKENDS, Setting, check_backend, default_runtime_dir
from pytest_cdc.stack import Stack

QUICK_ARGS: dict[str, list[str]] = {
    "binlog": ["--ops", "1000"],
    "delta": ["--quick"],
    "iceberg": ["--rows", "2000", "--upserts", "8"],
    "pg_approaches": ["--ops", "1000"],
    "sink": ["--events", "3000", "--initial-rows", "500", "--no-compare"],
}


def mysql_stack_args(stack: Stack) -> list[str]:
    """Command-line endpoints for the binlog benchmark (MariaDB/MySQL, Kafka, Connect)."""
    ep = stack.endpoints
    if ep.mysql_dsn is None:  # one line naming the fix, printed by main()
        raise CdcSetupError(
            "the stack has no MySQL/MariaDB server: the binlog benchmark needs one; start the "
            "stack with `cdc-spec up` without --components, or run with --backend native"
        )
    return [
        "--mysql-admin-dsn",
        ep.mysql_dsn,
        "--mysql-cdc-dsn",
        ep.mysql_cdc_dsn,
        "--kafka",
        ep.kafka_bootstrap,
        "--connect",
        ep.connect_url,
        "--flavor",
        ep.mysql_flavor,
    ]


def pg_stack_args(stack: Stack) -> list[str]:
    """Command-line endpoints for the PostgreSQL approaches benchmark."""
    ep = stack.endpoints
    return [
        "--postgres-dsn",
        ep.postgres_dsn,
        "--kafka",
        ep.kafka_bootstrap,
        "--connect",
        ep.connect_url,
        f"--pg-host={ep.postgres_host}",
        f"--pg-port={ep.postgres_port}",
        f"--pg-user={ep.postgres_cdc_login[0]}",
        # one token: a password may start with "-", which argparse would take for an option
        f"--pg-password={ep.postgres_cdc_login[1]}",
    ]


def kafka_stack_args(stack: Stack) -> list[str]:
    """Command-line endpoints for a benchmark that needs only Kafka (the sink workers)."""
    return ["--kafka", stack.endpoints.kafka_bootstrap]


ENDPOINT_ARGS: dict[str, Callable[[Stack], list[str]]] = {
    "binlog": mysql_stack_args,
    "pg_approaches": pg_stack_args,
    "sink": kafka_stack_args,
}
"""The benchmarks that need servers, and how each is told the stack's endpoints."""


def backend_setting(option: str | None) -> Setting:
    """The backend to open, as the plugin resolves it: --backend, env CDC_BACKEND, else auto."""
    if option:
        return Setting(option, "make bench --backend")
    env = os.environ.get("CDC_BACKEND", "")
    return check_backend(Setting(env, "env CDC_BACKEND") if env else Setting("auto", "default"))


@contextlib.contextmanager
def _stack_if(needed: bool, backend: Setting, runtime_dir: Path) -> Iterator[Stack | None]:
    if not needed:
        yield None
        return
    stack = open_stack(backend, runtime_dir, lambda line: print(line, flush=True))
    try:
        yield stack
    finally:
        if not stack.started_here:  # an external stack: not ours to stop
            print(f"cdc: {stack.detach()}", flush=True)
        else:
            stack.close()
            print("cdc: stack stopped", flush=True)


def main(argv: Sequence[str] | None = None, prog: str = "python -m pytest_cdc.bench") -> int:
    """Run the chosen benchmarks one after another; print and save their tables."""
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (a smoke run)")
    parser.add_argument("--only", nargs="+", choices=BENCHMARKS, help="run only these")
    parser.add_argument("--output", type=Path, default=Path("reports/bench"), help="table folder")
    parser.add_argument("--runtime-dir", type=Path, help="jars (default: runtime/dist)")
    parser.add_argument(
        "--backend", choices=BACKENDS, help="stack backend (default: env CDC_BACKEND, else auto)"
    )
    args = parser.parse_args(argv)
    names = args.only or list(BENCHMARKS)
    needs_stack = any(name in ENDPOINT_ARGS for name in names)
    try:
        return _run(args, names, needs_stack)
    except (CdcSetupError, CdcUsageError) as exc:  # the message names the fix
        print(f"error: {exc}", file=sys.stderr)
        return 2


def _run(args: argparse.Namespace, names: list[str], needs_stack: bool) -> int:
    args.output.mkdir(parents=True, exist_ok=True)
    status = 0
    backend = backend_setting(args.backend)
    with _stack_if(needs_stack, backend, args.runtime_dir or default_runtime_dir()) as stack:
        for name in names:
            module = importlib.import_module(f"cdc_support.bench.{name}")
            bench_args = QUICK_ARGS.get(name, []) if args.quick else []
            if name in ENDPOINT_ARGS and stack is not None:
                bench_args = [*ENDPOINT_ARGS[name](stack), *bench_args]
            print(f"==> bench {name}", flush=True)
            started = time.monotonic()
            out = io.StringIO()
            with contextlib.redirect_stdout(out):
                code = module.main(bench_args)
            text = out.getvalue()
            sys.stdout.write(text)
            (args.output / f"{name}.txt").write_text(text)
            print(f"(bench {name}: {time.monotonic() - started:.1f}s, exit {code})\n", flush=True)
            status = status or code
    print(f"tables written to {args.output}/")
    return status


if __name__ == "__main__":
    raise SystemExit(main())
