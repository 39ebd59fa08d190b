"""`cdc-spec`: every command has --help, bad input is one line naming the fix (exit 2), and
up/status/down say what they find in the stack record without starting anything."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

from cdc_support.cli import main
from cdc_support.endpoints import Endpoints
from pytest_cdc.stack import record as records
from pytest_cdc.stack.record import StackRecord

COMMANDS = ("sink", "up", "status", "down", "generate", "report", "bench")


@pytest.fixture
def state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A state dir of the test's own; returns where the record goes."""
    monkeypatch.setenv("CDC_STATE_DIR", str(tmp_path / "state"))
    return tmp_path / "state" / "stack.json"


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    try:
        status = main(list(argv))
    except SystemExit as exc:
        status = int(exc.code or 0)
    out, err = capsys.readouterr()
    return status, out, err


def _closed_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]  # nothing listens once the socket is closed


def _record(workdir: Path, processes: list[dict[str, object]]) -> StackRecord:
    port = _closed_port()
    return StackRecord(
        endpoints=Endpoints(
            postgres_dsn=f"postgresql://postgres:s3cret-pw@127.0.0.1:{port}/postgres",
            kafka_bootstrap=f"127.0.0.1:{port}",
            connect_url=f"http://127.0.0.1:{port}",
            postgres_password="s3cret-pw",
        ),
        backend="native",
        started_by="cdc-spec up",
        started_at="2024-05-01T10:00:00+00:00",
        workdir=str(workdir),
        processes=processes,
        versions={"postgres": "15.8", "kafka": "3.9.0", "connect": "3.9.0", "debezium": "2.7"},
    )


def _this_process() -> list[dict[str, object]]:
    me = psutil.Process()
    return [{"name": "kafka", "pid": me.pid, "create_time": me.create_time(), "stop_signal": 15}]


def test_cdc_spec_help_lists_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = _run(capsys, "--help")
    assert status == 0
    for command in COMMANDS:
        assert f"    {command} " in out, out


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = _run(capsys, command, "--help")
    assert status == 0
    if command == "bench":  # pytest_cdc.bench's own help (its usage line names sys.argv[0])
        assert "--quick" in out and "--only" in out, out
    else:
        assert out.startswith(f"usage: cdc-spec {command}"), out


@pytest.mark.parametrize(
    ("argv", "fix"),
    [
        (["generate", "--rows", "0"], "--rows: expected a number >= 1, got 0"),
        (["generate", "--table", "users"], "choose from 'customers', 'products', 'orders'"),
        (["up", "--components", "postgres,kafka"], "connect missing: the stack always runs"),
        (["up", "--components", "postgres,oracle"], "unknown component oracle: choose from"),
        (["up", "--backend", "external"], "choose from 'auto', 'native', 'docker'"),
        (["nope"], "choose from 'sink', 'up'"),
    ],
)
def test_bad_input_is_one_line_naming_the_fix_exit_2(
    argv: list[str], fix: str, capsys: pytest.CaptureFixture[str]
) -> None:
    status, out, err = _run(capsys, *argv)
    assert status == 2
    assert fix in err
    assert err.count("\n") == 1 and not out, err


def test_all_components_in_any_order_are_accepted() -> None:
    from cdc_support.cli import build_parser

    args = build_parser().parse_args(["up", "--components", "connect,kafka,mariadb,postgres"])
    assert sorted(args.components) == ["connect", "kafka", "mariadb", "postgres"]


def test_bench_gets_its_arguments_untouched() -> None:
    from cdc_support.cli import build_parser

    args = build_parser().parse_args(["bench", "--quick", "--only", "binlog", "-h"])
    assert args.args == ["--quick", "--only", "binlog", "-h"]


def test_nothing_up_status_exits_1_down_exits_0(
    state: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status, out, _ = _run(capsys, "status")
    assert (status, out) == (
        1,
        f"no stack is up (no record at {state}): start one with `cdc-spec up`\n",
    )
    status, out, _ = _run(capsys, "down")
    assert (status, out) == (0, f"no stack is up (no record at {state}): nothing to stop\n")


def test_generate_without_dsn_or_stack_says_how_in_one_line(
    state: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status, _, err = _run(capsys, "generate", "--rows", "5")
    assert status == 2
    assert err == (
        "cdc-spec generate: error: no --dsn and no stack is up: start one with `cdc-spec up`, "
        "or pass --dsn postgresql://USER:PASSWORD@HOST:PORT/DATABASE\n"
    )


def test_a_corrupt_record_is_one_line_exit_2(
    state: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state.parent.mkdir(parents=True)
    state.write_text("{")
    for command in ("status", "down", "up"):
        status, _, err = _run(capsys, command)
        assert status == 2
        assert err.startswith(f"cdc-spec {command}: error: {state} is not a stack record")
        assert err.count("\n") == 1


def test_up_with_a_running_stack_says_already_up_and_where(
    state: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    records.save(_record(tmp_path, _this_process()), state)
    status, out, _ = _run(capsys, "up")
    assert status == 0
    assert "cdc: a stack is already up: native stack started by cdc-spec up" in out
    assert f"recorded in {state}" in out
    assert "starting" not in out


def test_status_of_a_stale_record_shows_each_service_down_and_exits_1(
    state: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    records.save(_record(tmp_path, []), state)
    status, out, _ = _run(capsys, "status")
    assert status == 1
    lines = out.splitlines()
    started = "native stack started by cdc-spec up at 2024-05-01T10:00:00+00:00"
    assert lines[0] == f"{started}, files in {tmp_path} (record: {state})"
    assert [line.split()[0] for line in lines[1:4]] == ["postgres", "kafka", "connect"]
    assert all(line.split()[2] == "DOWN" for line in lines[1:4]), out
    assert "postgresql://postgres:***@127.0.0.1:" in lines[1] and "s3cret" not in out
    assert " DOWN  3.9.0 (debezium 2.7); seen: ConnectionError" in lines[3], lines[3]
    assert "the recorded stack is gone" in lines[4]


def test_down_clears_a_stale_record_and_its_files(
    state: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    workdir = tmp_path / "cdc-stack-gone"
    (workdir / "pg").mkdir(parents=True)
    records.save(_record(workdir, []), state)
    status, out, _ = _run(capsys, "down")
    assert status == 0, out
    assert out.splitlines()[-1] == f"cdc: stack stopped, {state} removed"
    assert not state.exists() and not workdir.exists()


def test_the_parser_is_built_without_pytest_or_the_stack() -> None:
    """`cdc-spec --help` and `cdc-spec sink` do not load pytest, the stack or its probes."""
    heavy = {"pytest", "psycopg", "pytest_cdc.backends", "pytest_cdc.stack.probes"}
    code = (
        "import sys; from cdc_support.cli import build_parser; build_parser(); "
        f"print(sorted({heavy!r} & set(sys.modules)))"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(run.stdout.replace("'", '"')) == []


def test_report_without_results_says_how_to_get_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status, _, err = _run(capsys, "report", "--results", str(tmp_path / "none"))
    assert status == 1
    assert err == (
        f"cdc-spec report: error: no allure results in {tmp_path / 'none'}: run the features "
        "first (make demo)\n"
    )


def test_mariadb_may_be_left_out() -> None:
    from cdc_support.cli import build_parser

    args = build_parser().parse_args(["up", "--components", "postgres,kafka,connect"])
    assert args.components == ("postgres", "kafka", "connect")


def test_bench_help_names_the_command_it_was_run_as(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = _run(capsys, "bench", "--help")
    assert status == 0
    assert out.startswith("usage: cdc-spec bench"), out.splitlines()[0]
