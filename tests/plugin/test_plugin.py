"""The plugin as a user meets it, in a throwaway project built by pytester (no stack started)."""

from __future__ import annotations

import pytest

from cdc_support.mysql.source import parse_dsn
from pytest_cdc.stack import Endpoints

pytest_plugins = ["pytester"]

USES_STACK = """
def test_needs_stack(cdc_stack):
    pass
"""


@pytest.fixture(autouse=True)
def _no_backend_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CDC_BACKEND", raising=False)
    monkeypatch.delenv("CDC_RUNTIME_DIR", raising=False)


def test_header_names_backend_source_and_versions(pytester: pytest.Pytester, monkeypatch) -> None:
    pytester.makepyfile("def test_nothing(): pass")
    result = pytester.runpytest("--cdc-backend=native")
    result.stdout.fnmatch_lines(
        ["cdc: backend=native (from command line), kafka=4.*debezium=*postgres=*mariadb=1*"]
    )
    result.assert_outcomes(passed=1)
    monkeypatch.setenv("DOCKER_HOST", f"unix://{pytester.path}/no-engine.sock")
    pytester.runpytest().stdout.fnmatch_lines(
        ["cdc: backend=native (auto (from default): no Docker engine answers), kafka=4.*"]
    )


def test_ini_then_env_then_command_line(pytester: pytest.Pytester, monkeypatch) -> None:
    pytester.makeini("[pytest]\ncdc_backend = native\n")
    pytester.makepyfile("def test_nothing(): pass")
    pytester.runpytest().stdout.fnmatch_lines(["cdc: backend=native (from ini)*"])
    monkeypatch.setenv("CDC_BACKEND", "native")
    pytester.runpytest().stdout.fnmatch_lines(["cdc: backend=native (from env CDC_BACKEND)*"])


def test_unknown_backend_is_a_usage_error_listing_allowed_values(pytester) -> None:
    pytester.makepyfile("def test_nothing(): pass")
    result = pytester.runpytest("--cdc-backend=foo")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["*cdc backend 'foo' (from command line) is not one of: auto, native, docker, external*"]
    )


def test_the_header_asks_the_backend_object_for_versions(pytester, monkeypatch) -> None:
    from pytest_cdc.stack.native import NativeBackend

    monkeypatch.setattr(NativeBackend, "versions", lambda self: {"kafka": "K", "extra": "E"})
    pytester.makepyfile("def test_nothing(): pass")
    result = pytester.runpytest_inprocess("--cdc-backend=native")
    result.stdout.fnmatch_lines(["cdc: backend=native (from command line), kafka=K, extra=E"])
    docker = pytester.runpytest_inprocess("--cdc-backend=docker")
    docker.stdout.fnmatch_lines(["cdc: backend=docker (from command line)*"])


def test_the_stack_package_exports_what_users_import() -> None:
    import cdc_support.endpoints
    import pytest_cdc.stack

    assert set(pytest_cdc.stack.__all__) >= {"Stack", "Endpoints", "StackInfo", "Backend"}
    assert pytest_cdc.stack.Endpoints is cdc_support.endpoints.Endpoints


def test_docker_without_an_engine_says_so_and_names_make_setup(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"unix://{pytester.path}/no-engine.sock")
    pytester.makepyfile(USES_STACK)
    result = pytester.runpytest("--cdc-backend=docker")
    result.assert_outcomes(errors=1)
    message = "the docker backend (from command line) needs a Docker engine and none answers at "
    message += f"unix://{pytester.path}/no-engine.sock: run `make setup` (it starts one), or use "
    message += "--cdc-backend=native"
    result.stdout.fnmatch_lines(
        [f"cdc: backend=docker (from command line); runtime NOT READY: {message}"]
    )
    result.stdout.fnmatch_lines([message])


def test_missing_jars_name_make_setup(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(USES_STACK)
    missing = pytester.path / "no-runtime"
    result = pytester.runpytest("--cdc-backend=native", f"--cdc-runtime-dir={missing}")
    result.stdout.fnmatch_lines(["cdc: backend=native*runtime NOT READY*make setup*"])
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        [f"*Kafka broker jars not found in {missing}/broker: run `make setup`*"]
    )


def test_feature_files_are_collected_with_allure_labels(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\ncdc_collect_features = true\n")
    pytester.makefile(
        ".feature",
        demo="""
        @epic:Demo_epic @story:S1
        Feature: Demo
          Scenario: Adding
            Given 2 and 3
            Then the sum is 5
        """,
    )
    pytester.makeconftest(
        """
        from pytest_bdd import given, then, parsers

        @given(parsers.parse("{a:d} and {b:d}"), target_fixture="pair")
        def pair(a, b):
            return a, b

        @then(parsers.parse("the sum is {total:d}"))
        def the_sum(pair, total):
            assert sum(pair) == total
        """
    )
    results = pytester.path / "allure"
    result = pytester.runpytest_subprocess("demo.feature", f"--alluredir={results}", "-v")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["demo.feature::test_adding PASSED*"])
    labels = "".join(p.read_text() for p in results.glob("*-result.json"))
    assert '{"name": "epic", "value": "Demo epic"}' in labels
    assert '{"name": "story", "value": "S1"}' in labels


def test_feature_files_are_not_collected_unless_enabled(pytester: pytest.Pytester) -> None:
    pytester.makefile(".feature", demo="Feature: Demo\n  Scenario: Nothing\n")
    result = pytester.runpytest(pytester.path)
    assert result.ret == pytest.ExitCode.NO_TESTS_COLLECTED


def test_endpoints_show_passwords_only_when_asked() -> None:
    ep = Endpoints(
        postgres_dsn="postgresql://postgres:s3cr3t-pg@127.0.0.1:5432/postgres",
        kafka_bootstrap="127.0.0.1:9092",
        connect_url="http://127.0.0.1:8083",
        mysql_dsn="mysql://root:s3cr3t-root@127.0.0.1:3306/",
        postgres_password="s3cr3t-pg",
        postgres_cdc_user="cdc_replication",
        postgres_cdc_password="s3cr3t-cdc",
        mysql_cdc_password="s3cr3t-my",
    )
    shown = ep.as_dict()
    assert "s3cr3t" not in repr(ep) + str(shown) + str(ep)
    assert shown["postgres_dsn"] == "postgresql://postgres:***@127.0.0.1:5432/postgres"
    assert shown["mysql_dsn"] == "mysql://root:***@127.0.0.1:3306/"
    assert shown["postgres_cdc_password"] == "***"
    assert ep.as_dict(reveal=True)["postgres_cdc_password"] == "s3cr3t-cdc"
    assert ep.postgres_cdc_dsn.startswith("postgresql://cdc_replication:s3cr3t-cdc@127.0.0.1")
    assert ep.postgres_cdc_login == ("cdc_replication", "s3cr3t-cdc")


def test_a_bad_mysql_uri_is_reported_without_its_password() -> None:
    with pytest.raises(ValueError, match="not a MySQL URI") as error:
        parse_dsn("postgres://root:s3cr3t@127.0.0.1:3306/")
    assert "s3cr3t" not in str(error.value) and "root:***@" in str(error.value)
