"""``make bench``: run the benchmarks in cdc_support.bench, on a native stack where needed.

``python -m pytest_cdc.bench [--quick] [--only NAME ...]`` prints each table and saves it
to ``reports/bench/<name>.txt``. Benchmarks that need servers (binlog CDC) get the
endpoints of a native stack started here and stopped at the end, as the features do.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import io
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from cdc_support.bench import BENCHMARKS
from pytest_cdc.native.stack import start_native_stack
from pytest_cdc.options import default_runtime_dir
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
    assert ep.mysql_dsn is not None, "the stack has no MySQL/MariaDB server"
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


@contextlib.contextmanager
def _stack_if(needed: bool, runtime_dir: Path) -> Iterator[Stack | None]:
    if not needed:
        yield None
        return
    stack = start_native_stack(runtime_dir, backend_source="make bench")
    try:
        yield stack
    finally:
        stack.close()
        print("cdc: stack stopped", flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the chosen benchmarks one after another; print and save their tables."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (a smoke run)")
    parser.add_argument("--only", nargs="+", choices=BENCHMARKS, help="run only these")
    parser.add_argument("--output", type=Path, default=Path("reports/bench"), help="table folder")
    parser.add_argument("--runtime-dir", type=Path, help="jars (default: runtime/dist)")
    args = parser.parse_args(argv)
    names = args.only or list(BENCHMARKS)
    args.output.mkdir(parents=True, exist_ok=True)
    status = 0
    needs_stack = any(name in ENDPOINT_ARGS for name in names)
    with _stack_if(needs_stack, args.runtime_dir or default_runtime_dir()) as stack:
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
