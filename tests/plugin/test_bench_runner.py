"""The `make bench` runner: every benchmark it names exists, bad choices are refused."""

from __future__ import annotations

import importlib

import pytest

import pytest_cdc.backends
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
        mysql_dsn="mysql://root:x@127.0.0.1:3307/",
        mysql_cdc_user="cdc",
        mysql_cdc_password="p@ss:w/rd",
    )
    address = parse_dsn(ep.mysql_cdc_dsn)
    assert (address.user, address.password, address.port) == ("cdc", "p@ss:w/rd", 3307)


def test_the_runner_opens_its_stack_through_the_plugins_seam(monkeypatch, tmp_path) -> None:
    assert bench.open_stack is pytest_cdc.backends.open_stack  # what the plugin's state calls
    opened = []

    def fake_open_stack(*args: object) -> None:
        opened.append(args)
        raise KeyboardInterrupt  # stop before any benchmark runs

    monkeypatch.setattr(bench, "open_stack", fake_open_stack)
    with pytest.raises(KeyboardInterrupt):
        bench.main(["--only", "binlog", "--backend", "native", "--output", str(tmp_path)])
    setting = opened[0][0]
    assert (setting.value, setting.source) == ("native", "make bench --backend")


def test_a_backend_that_cannot_run_is_one_line_from_the_runner(
    capsys, monkeypatch, tmp_path
) -> None:
    monkeypatch.delenv("CDC_BACKEND", raising=False)
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-engine.sock")
    assert bench.main(["--only", "binlog", "--backend", "docker", "--output", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "the docker backend (from make bench --backend) needs a Docker engine" in err
    assert len(err.strip().splitlines()) == 1


def test_a_bad_backend_in_the_environment_is_refused_by_the_runner(
    capsys, monkeypatch, tmp_path
) -> None:
    monkeypatch.setenv("CDC_BACKEND", "podman")
    assert bench.main(["--only", "binlog", "--output", str(tmp_path)]) == 2
    assert "'podman' (from env CDC_BACKEND) is not one of: auto, native" in capsys.readouterr().err
