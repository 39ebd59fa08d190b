"""The `make bench` runner: every benchmark it names exists, bad choices are refused."""

from __future__ import annotations

import importlib

import pytest

from cdc_support.bench import BENCHMARKS
from cdc_support.mysql.source import parse_dsn
from pytest_cdc import bench
from pytest_cdc.stack import Endpoints


@pytest.mark.parametrize("name", BENCHMARKS)
def test_every_benchmark_is_a_module_with_main(name: str) -> None:
    module = importlib.import_module(f"cdc_support.bench.{name}")
    assert callable(module.main)


def test_the_runner_only_knows_benchmarks_that_exist() -> None:
    assert set(bench.ENDPOINT_ARGS) <= set(BENCHMARKS)
    assert set(bench.QUICK_ARGS) <= set(BENCHMARKS)


def test_an_unknown_benchmark_is_refused_with_the_choices(capsys) -> None:
    with pytest.raises(SystemExit) as exited:
        bench.main(["--only", "nosuch"])
    assert exited.value.code == 2
    assert "binlog" in capsys.readouterr().err


def test_the_cdc_user_dsn_round_trips_with_odd_passwords() -> None:
    ep = Endpoints(
        postgres_dsn="",
        kafka_bootstrap="",
        connect_url="",
        mysql_port=3307,
        mysql_cdc_user="cdc",
        mysql_cdc_password="p@ss:w/rd",
    )
    address = parse_dsn(ep.mysql_cdc_dsn)
    assert (address.user, address.password, address.port) == ("cdc", "p@ss:w/rd", 3307)
