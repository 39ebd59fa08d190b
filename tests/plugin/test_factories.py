"""The plugin in pytest-postgresql's shape: hooks + fixture modules, and user-facing factories.

A user makes a second database fixture in a conftest with ``pytest_cdc.factories``; the old
fixture name ``debezium_connector_factory`` still works for one release, with a warning.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import pytest_cdc.plugin

pytest_plugins = ["pytester"]

FIXTURES_DIR = Path(pytest_cdc.plugin.__file__).parent / "fixtures"


@pytest.fixture(autouse=True)
def _no_cdc_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("CDC_BACKEND", "CDC_RUNTIME_DIR", "CDC_DELTA_URI", "CDC_ICEBERG_CATALOG_URI"):
        monkeypatch.delenv(name, raising=False)


def test_plugin_module_is_hooks_and_pytest_plugins_of_the_fixture_modules() -> None:
    source = Path(pytest_cdc.plugin.__file__).read_text()
    tree = ast.parse(source)
    functions = [n.name for n in tree.body if isinstance(n, ast.FunctionDef)]
    assert functions and all(name.startswith("pytest_") for name in functions), functions
    imported = {
        n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module is not None
    }
    assert not {m for m in imported if m.startswith("pytest_cdc.fixtures")}, imported
    assert "noqa" not in source
    modules = sorted(
        f"pytest_cdc.fixtures.{p.stem}"
        for p in FIXTURES_DIR.glob("*.py")
        if not p.stem.startswith("_")
    )
    assert sorted(pytest_cdc.plugin.pytest_plugins) == modules


def test_pytest_lists_the_fixtures_of_every_fixture_module(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest_subprocess("--fixtures")
    out = result.stdout.str()
    for module, fixture in [
        ("factories", "cdc_stack"),  # made by a factory: listed where its function is
        ("factories", "pg_database"),
        ("factories", "mysql_database"),
        ("fixtures.stack", "cdc_fixtures"),
        ("fixtures.postgres", "pg_connector_factory"),
        ("fixtures.mysql", "mysql_connector_factory"),
        ("fixtures.capture", "pg_capture_factory"),
        ("fixtures.lakehouse", "delta_location"),
        ("fixtures.lakehouse", "iceberg_warehouse"),
        ("fixtures.sinks", "sink_worker_factory"),
    ]:
        section = out.split(f"fixtures defined from pytest_cdc.{module} ", 1)
        assert len(section) == 2, f"no fixtures listed from pytest_cdc.{module}"
        assert f"\n{fixture} " in section[1].split(" fixtures defined from ")[0], fixture


DEPRECATED = """
import pytest

@pytest.fixture
def pg_connector_factory():
    return "the new factory"

def test_old_name(debezium_connector_factory):
    assert debezium_connector_factory == "the new factory"
"""


def test_the_old_connector_factory_name_warns_and_gives_the_new_one(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(DEPRECATED)
    result = pytester.runpytest_subprocess("-W", "error::DeprecationWarning")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        ["*the fixture debezium_connector_factory is deprecated: use pg_connector_factory *"]
    )
    result = pytester.runpytest_subprocess()
    result.assert_outcomes(passed=1, warnings=1)


OTHER_BACKEND = """
from pytest_cdc import factories

other_stack = factories.cdc_stack(backend="{backend}")
"""


def test_a_stack_fixture_of_another_backend_starts_it_through_the_backend_seam(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"unix://{pytester.path}/no-engine.sock")  # it says so
    pytester.makeconftest(OTHER_BACKEND.format(backend="docker"))
    pytester.makepyfile("def test_other(other_stack):\n    pass\n")
    result = pytester.runpytest_subprocess("--cdc-backend=native")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        ["*the docker backend (from factories.cdc_stack(backend='docker')) needs a Docker engine*"]
    )
    assert "Traceback" not in result.stdout.str()


def test_a_stack_fixture_of_an_unknown_backend_names_the_allowed_ones(
    pytester: pytest.Pytester,
) -> None:
    pytester.makeconftest(OTHER_BACKEND.format(backend="kubernetes"))
    pytester.makepyfile("def test_other(other_stack):\n    pass\n")
    result = pytester.runpytest_subprocess()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        [
            "*cdc backend 'kubernetes' (from factories.cdc_stack(backend='kubernetes')) is not "
            "one of: auto, native, docker, external"
        ]
    )


SECOND_DATABASE = """
from pytest_cdc import factories

other_db = factories.pg_database(stack="cdc_stack")
other_mysql = factories.mysql_database(stack="cdc_stack")
"""

TWO_DATABASES = """
import psycopg
from cdc_support.mysql.source import connect

def test_two_of_each(pg_database, other_db, pg_conn, mysql_database, other_mysql):
    assert other_db.name != pg_database.name
    pg_conn.execute("CREATE TABLE only_in_the_first (id int)")
    with psycopg.connect(other_db.dsn) as other:
        names = other.execute("SELECT current_database(), to_regclass('only_in_the_first')")
        assert names.fetchone() == (other_db.name, None)
    assert other_mysql.name != mysql_database.name
    with connect(other_mysql.admin) as conn, conn.cursor() as cur:
        cur.execute("SELECT DATABASE()")
        assert cur.fetchone()[0] == other_mysql.name
    print("databases:", pg_database.name, other_db.name, mysql_database.name, other_mysql.name)
"""


@pytest.mark.postgres
@pytest.mark.mysql
def test_a_user_makes_a_second_database_fixture_in_three_lines(
    pytester: pytest.Pytester,
) -> None:
    pytester.makeconftest(SECOND_DATABASE)
    pytester.makepyfile(TWO_DATABASES)
    result = pytester.runpytest_subprocess("--cdc-backend=native", "-s", "--timeout=900")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["databases: *_pg_database *_other_db *_mysql_database *"])
