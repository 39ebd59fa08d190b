"""`--cdc-backend=external` as a user meets it, in pytester projects (no stack: every address
here is a closed port on 127.0.0.1, so nothing answers and nothing is started)."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from pytest_cdc.options import EXTERNAL_ADDRESSES
from pytest_cdc.stack import Endpoints, StackInfo
from pytest_cdc.stack import record as records

pytest_plugins = ["pytester"]

USES_STACK = """
def test_needs_stack(cdc_stack):
    pass


def test_needs_it_too(cdc_stack):
    pass
"""


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


PG, KAFKA, CONNECT = _closed_port(), _closed_port(), _closed_port()
ENDPOINTS = Endpoints(
    postgres_dsn=f"postgresql://admin:s3cret@127.0.0.1:{PG}/postgres",
    kafka_bootstrap=f"127.0.0.1:{KAFKA}",
    connect_url=f"http://127.0.0.1:{CONNECT}",
)
ADDRESSES = (
    f"--cdc-postgres-dsn={ENDPOINTS.postgres_dsn}",
    f"--cdc-kafka-bootstrap={ENDPOINTS.kafka_bootstrap}",
    f"--cdc-connect-url={ENDPOINTS.connect_url}",
)


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No backend or address from the environment; an empty state dir (no `cdc-spec up`)."""
    for name in ("CDC_BACKEND", "CDC_ENDPOINTS", *(f"CDC_{n.upper()}" for n in EXTERNAL_ADDRESSES)):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv(records.STATE_ENV, str(tmp_path / "state"))
    return tmp_path / "state" / records.RECORD_NAME


def _unreachable_lines(output: str) -> list[str]:
    return [line for line in output.splitlines() if "does not answer:" in line]


def test_header_names_where_each_address_came_from(pytester, monkeypatch) -> None:
    """Per address: command line > env > ini; the header says which one set it."""
    pytester.makeini(
        f"[pytest]\ncdc_connect_url = {ENDPOINTS.connect_url}\n"
        f"cdc_kafka_bootstrap = 127.0.0.1:1\ncdc_postgres_dsn = postgresql://x@127.0.0.1:1/\n"
    )
    monkeypatch.setenv("CDC_KAFKA_BOOTSTRAP", ENDPOINTS.kafka_bootstrap)
    monkeypatch.setenv("CDC_POSTGRES_DSN", "postgresql://y@127.0.0.1:2/")
    pytester.makepyfile("def test_nothing(): pass")
    result = pytester.runpytest("--cdc-backend=external", ADDRESSES[0])
    result.stdout.fnmatch_lines(
        [
            "cdc: backend=external (from command line; endpoints from --cdc-postgres-dsn, "
            "env CDC_KAFKA_BOOTSTRAP, ini cdc_connect_url), postgres=?, connect=?, debezium=?"
        ]
    )
    result.assert_outcomes(passed=1)  # a test without the stack runs; nothing is probed for it


def test_an_endpoints_file_wins_over_single_addresses(pytester, tmp_path: Path) -> None:
    endpoints_file = tmp_path / "endpoints.json"
    endpoints_file.write_text(ENDPOINTS.to_json())
    pytester.makepyfile(USES_STACK)
    result = pytester.runpytest(
        "--cdc-backend=external", f"--cdc-endpoints={endpoints_file}", "--cdc-kafka-bootstrap=x:1"
    )
    result.stdout.fnmatch_lines(
        [
            "cdc: backend=external (from command line; endpoints from --cdc-endpoints "
            f"{endpoints_file})*"
        ]
    )
    lines = _unreachable_lines(result.stdout.str())
    assert f"kafka at {ENDPOINTS.kafka_bootstrap} (from --cdc-endpoints {endpoints_file}) " in (
        "\n".join(lines)
    )


def test_unreachable_services_one_line_each_naming_address_and_option(pytester) -> None:
    pytester.makepyfile(USES_STACK)
    result = pytester.runpytest("--cdc-backend=external", *ADDRESSES)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.assert_outcomes(errors=2)
    first_error = result.stdout.str().split("ERROR at setup of test_needs_stack")[1]
    first_error = first_error.split("ERROR at setup of")[0]
    lines = _unreachable_lines(first_error)
    assert [line.split(" does not answer:")[0] for line in lines] == [
        f"postgres at 127.0.0.1:{PG} (from --cdc-postgres-dsn)",
        f"kafka at 127.0.0.1:{KAFKA} (from --cdc-kafka-bootstrap)",
        f"connect at http://127.0.0.1:{CONNECT} (from --cdc-connect-url)",
    ]
    assert "Connection refused" in lines[0]
    assert "Traceback" not in result.stdout.str() and "s3cret" not in result.stdout.str()
    assert " starting" not in result.stdout.str()  # nothing was started


def test_no_endpoints_and_no_stack_up_names_the_options_and_cdc_spec_up(
    pytester, _clean_env: Path
) -> None:
    pytester.makepyfile(USES_STACK)
    result = pytester.runpytest("--cdc-backend=external")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.assert_outcomes(errors=2)
    message = (
        "--cdc-backend=external needs the stack's endpoints: start one with `cdc-spec up` "
        f"(recorded in {_clean_env}), or pass --cdc-endpoints=FILE, or --cdc-postgres-dsn, "
        "--cdc-kafka-bootstrap and --cdc-connect-url (--cdc-mysql-dsn optional)"
    )
    result.stdout.fnmatch_lines([f"cdc: backend=external (from command line); *{message}", message])


def test_some_addresses_without_the_others_name_the_missing_options(pytester) -> None:
    pytester.makepyfile(USES_STACK)
    result = pytester.runpytest("--cdc-backend=external", ADDRESSES[1])
    result.stdout.fnmatch_lines(
        [
            "--cdc-backend=external with --cdc-kafka-bootstrap also needs --cdc-postgres-dsn, "
            "--cdc-connect-url (or --cdc-endpoints=FILE, or none of them to use the stack "
            "`cdc-spec up` started)"
        ]
    )


@pytest.mark.parametrize(
    ("content", "seen"),
    [
        ("not json", "is not JSON"),
        ('{"kafka_bootstrap": "x:1"}', "is missing postgres_dsn, connect_url"),
        (None, "cannot be read (No such file or directory)"),
    ],
)
def test_a_bad_endpoints_file_is_one_line(pytester, tmp_path: Path, content, seen) -> None:
    endpoints_file = tmp_path / "endpoints.json"
    if content is not None:
        endpoints_file.write_text(content)
    pytester.makepyfile(USES_STACK)
    result = pytester.runpytest("--cdc-backend=external", f"--cdc-endpoints={endpoints_file}")
    result.assert_outcomes(errors=2)
    result.stdout.fnmatch_lines([f"--cdc-endpoints {endpoints_file} {seen}*"])


def _record(versions: dict[str, str]) -> records.StackRecord:
    return records.StackRecord(
        endpoints=ENDPOINTS,
        backend="native",
        started_by="cdc-spec up",
        started_at="2026-01-01T00:00:00+00:00",
        versions=versions,
    )


def test_without_endpoints_it_uses_the_stack_cdc_spec_up_recorded(
    pytester, _clean_env: Path
) -> None:
    records.save(_record({"postgres": "16.9", "kafka": "4.0.0"}), _clean_env)
    pytester.makepyfile(USES_STACK)
    result = pytester.runpytest("--cdc-backend=external")
    result.stdout.fnmatch_lines(
        [
            "cdc: backend=external (from command line; endpoints from the stack `cdc-spec up` "
            f"started, record {_clean_env}), postgres=16.9, kafka=4.0.0"
        ]
    )
    result.assert_outcomes(errors=2)
    lines = _unreachable_lines(result.stdout.str())
    assert f"postgres at 127.0.0.1:{PG} (from the stack record {_clean_env}) " in lines[0]


def test_an_endpoints_file_may_be_a_stack_record(pytester, tmp_path: Path) -> None:
    record_file = records.save(_record({"postgres": "16.9"}), tmp_path / "copy" / "stack.json")
    pytester.makepyfile("def test_nothing(): pass")
    result = pytester.runpytest("--cdc-backend=external", f"--cdc-endpoints={record_file}")
    result.stdout.fnmatch_lines(
        [
            "cdc: backend=external (from command line; endpoints from --cdc-endpoints "
            f"{record_file}), postgres=16.9"
        ]
    )


FAULT_CONFTEST = f"""
import pytest
from pytest_cdc.stack import Endpoints, StackInfo
from pytest_cdc.stack.external import ExternalStack


@pytest.fixture(scope="session")
def cdc_stack():
    endpoints = Endpoints.from_json({ENDPOINTS.to_json()!r})
    return ExternalStack(endpoints, StackInfo("external", "from command line"), "from a test")
"""


def test_fault_scenarios_skip_on_an_external_stack_saying_why(pytester) -> None:
    """The stack itself is faked here (no services): what is tested is the fixture's skip."""
    pytester.makeconftest(FAULT_CONFTEST)
    pytester.makepyfile("def test_kill_kafka(cdc_faultable_stack): pass")
    result = pytester.runpytest("-rs")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(
        ["SKIPPED * an external stack cannot be faulted (backend=external)"]
    )


def test_an_external_stack_refuses_faults_and_stops_nothing() -> None:
    from pytest_cdc.errors import StackCannotBeFaulted
    from pytest_cdc.stack.external import ExternalStack

    stack = ExternalStack(ENDPOINTS, StackInfo("external", "test"), "from a test")
    assert (stack.started_here, stack.can_fault) == (False, False)
    with pytest.raises(StackCannotBeFaulted) as refused:
        stack.kill("kafka")
    assert str(refused.value) == (
        "an external stack cannot be faulted: killing kafka needs a stack this run started; "
        "use --cdc-backend=native (a stack this run starts)"
    )
    with pytest.raises(StackCannotBeFaulted, match="restarting postgres"):
        stack.restart("postgres")
    assert "was not started by this run: left as it was" in stack.detach()
    stack.close()  # nothing to do: no process of its own


def test_a_mysql_dsn_gives_the_cdc_account_and_the_mysql_component() -> None:
    from pytest_cdc.options import ExternalSettings, Setting
    from pytest_cdc.stack.external import resolve_endpoints

    settings = ExternalSettings(
        addresses={
            "postgres_dsn": Setting(ENDPOINTS.postgres_dsn, "command line"),
            "kafka_bootstrap": Setting(ENDPOINTS.kafka_bootstrap, "env CDC_KAFKA_BOOTSTRAP"),
            "connect_url": Setting(ENDPOINTS.connect_url, "ini"),
            "mysql_dsn": Setting("mariadb://me:pw@127.0.0.1:3307/", "command line"),
        }
    )
    resolved = resolve_endpoints(settings)
    ep = resolved.endpoints
    assert (ep.postgres_user, ep.postgres_password) == ("admin", "s3cret")
    assert (ep.mysql_cdc_user, ep.mysql_cdc_password, ep.mysql_flavor) == ("me", "pw", "mariadb")
    assert resolved.origins["mysql_dsn"] == "--cdc-mysql-dsn"
    assert resolved.origins["connect_url"] == "ini cdc_connect_url"
    assert json.loads(ep.to_json())["mysql_dsn"] == "mariadb://me:pw@127.0.0.1:3307/"
