"""The benchmarks' command lines take the stack's endpoints whatever the passwords look like."""

from __future__ import annotations

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
