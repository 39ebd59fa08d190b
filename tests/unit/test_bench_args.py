"""The benchmarks' command lines take the stack's endpoints whatever the passwords look like."""

from __future__ import annotations

import pytest

from cdc_support.bench import pg_approaches
from pytest_cdc.bench import pg_stack_args
from pytest_cdc.stack import Endpoints


class _StackWith:
    def __init__(self, endpoints: Endpoints) -> None:
        self.endpoints = endpoints


def test_a_password_that_starts_with_a_dash_reaches_the_pg_benchmark() -> None:
    # secrets.token_urlsafe draws "-" first one time in 64: argparse took it for an option
    endpoints = Endpoints(
        postgres_dsn="postgresql://postgres:-x@127.0.0.1:5432/postgres",
        kafka_bootstrap="127.0.0.1:9092",
        connect_url="http://127.0.0.1:8083",
        postgres_cdc_user="cdc_replication",
        postgres_cdc_password="-Kq_2--only",
    )
    args = pg_approaches.argument_parser().parse_args(pg_stack_args(_StackWith(endpoints)))  # type: ignore[arg-type]
    assert args.pg_password == "-Kq_2--only"
    assert args.pg_user == "cdc_replication"
    assert args.only is None


def test_the_binlog_benchmark_on_a_stack_without_mysql_is_one_line_naming_the_fix() -> None:
    # main() prints a CdcSetupError as `error: ...` (exit 2); an AssertionError was a traceback
    from pytest_cdc.bench import mysql_stack_args
    from pytest_cdc.errors import CdcSetupError

    endpoints = Endpoints(
        postgres_dsn="postgresql://postgres:pw@127.0.0.1:5432/postgres",
        kafka_bootstrap="127.0.0.1:9092",
        connect_url="http://127.0.0.1:8083",
    )
    with pytest.raises(CdcSetupError, match=r"^the stack has no MySQL/MariaDB server: .*") as e:
        mysql_stack_args(_StackWith(endpoints))  # type: ignore[arg-type]
    assert "without --components" in str(e.value) and "--backend native" in str(e.value)


def test_a_bench_on_an_external_stack_does_not_say_it_stopped_it(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from pathlib import Path

    from pytest_cdc import bench
    from pytest_cdc.options import Setting

    class _External:
        started_here = False

        def detach(self) -> str:
            return "the external stack (record X) was not started by this run: left as it was"

        def close(self) -> None:
            pass

    monkeypatch.setattr(bench, "open_stack", lambda *args, **kwargs: _External())
    with bench._stack_if(True, Setting("external", "test"), Path("unused")):
        pass
    out = capsys.readouterr().out
    assert "stack stopped" not in out
    assert "cdc: the external stack (record X) was not started by this run: left as it was" in out
