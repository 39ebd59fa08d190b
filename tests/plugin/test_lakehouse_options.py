"""Where the lakehouse fixtures put their tables: options > env > ini > default, in the header.

``delta_location`` and ``iceberg_warehouse`` are plugin fixtures; ``--cdc-delta-uri`` (with
``--cdc-delta-storage-options``) and ``--cdc-iceberg-catalog-uri`` choose where they write.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

ENV = ("CDC_DELTA_URI", "CDC_DELTA_STORAGE_OPTIONS", "CDC_ICEBERG_CATALOG_URI", "CDC_BACKEND")

SHOW = """
import json

def test_show(delta_location, iceberg_warehouse, tmp_path):
    print("DELTA", json.dumps([delta_location.uri, dict(delta_location.storage_options)]))
    print("ICEBERG", json.dumps([iceberg_warehouse.uri, iceberg_warehouse.catalog.name]))
    print("TMP", json.dumps(str(tmp_path)))
"""


@pytest.fixture(autouse=True)
def _no_cdc_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ENV:
        monkeypatch.delenv(name, raising=False)


def _printed(result: pytest.RunResult, label: str) -> str:
    """What the test printed after ``label`` (-s: it may follow the test file's name)."""
    return next(x for x in result.outlines if f"{label} " in x).split(f"{label} ", 1)[1]


def _shown(result: pytest.RunResult, label: str) -> list[str]:
    return json.loads(_printed(result, label))


def _run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    pytester.makepyfile(SHOW)
    result = pytester.runpytest_subprocess("-s", *args)
    result.assert_outcomes(passed=1)
    return result


def test_by_default_tables_go_to_the_tests_tmp_path(pytester: pytest.Pytester) -> None:
    result = _run(pytester)
    tmp = _shown(result, "TMP")
    delta_uri, options = _shown(result, "DELTA")
    assert delta_uri.startswith(tmp) and options == {}
    catalog_uri, catalog = _shown(result, "ICEBERG")
    assert catalog_uri == f"sqlite:///{tmp}/warehouse/catalog.db" and catalog == "cdc"
    result.stdout.fnmatch_lines(
        [
            "cdc: lakehouse delta_uri=a folder in each test's tmp_path (from default), "
            "delta_storage_options=none (from default), "
            "iceberg_catalog_uri=a SQLite file in each test's tmp_path (from default)"
        ]
    )


def test_command_line_then_env_then_ini(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    lake = {src: tmp_path / f"lake-{src}" for src in ("cli", "env", "ini")}
    catalogs = {src: f"sqlite:///{tmp_path}/catalog-{src}.db" for src in ("cli", "env", "ini")}
    pytester.makeini(
        f"""
        [pytest]
        cdc_delta_uri = {lake["ini"]}
        cdc_delta_storage_options = {{"from": "ini"}}
        cdc_iceberg_catalog_uri = {catalogs["ini"]}
        """
    )
    ini = _run(pytester)
    assert _shown(ini, "DELTA")[0].startswith(f"{lake['ini']}/delta_")
    assert _shown(ini, "DELTA")[1] == {"from": "ini"}
    assert _shown(ini, "ICEBERG")[0] == catalogs["ini"]
    assert _shown(ini, "ICEBERG")[1].startswith("cdc_")  # a catalog of its own in a shared db
    ini.stdout.fnmatch_lines(
        [
            f"cdc: lakehouse delta_uri={lake['ini']} (from ini), delta_storage_options=from "
            f"(from ini), iceberg_catalog_uri={catalogs['ini']} (from ini)"
        ]
    )

    monkeypatch.setenv("CDC_DELTA_URI", str(lake["env"]))
    monkeypatch.setenv("CDC_DELTA_STORAGE_OPTIONS", '{"from": "env", "AWS_ALLOW_HTTP": true}')
    monkeypatch.setenv("CDC_ICEBERG_CATALOG_URI", catalogs["env"])
    env = _run(pytester)
    assert _shown(env, "DELTA")[0].startswith(f"{lake['env']}/delta_")
    assert _shown(env, "DELTA")[1] == {"from": "env", "AWS_ALLOW_HTTP": "true"}
    assert _shown(env, "ICEBERG")[0] == catalogs["env"]
    env.stdout.fnmatch_lines(
        [
            f"cdc: lakehouse delta_uri={lake['env']} (from env CDC_DELTA_URI), "
            "delta_storage_options=AWS_ALLOW_HTTP, from (from env CDC_DELTA_STORAGE_OPTIONS), "
            f"iceberg_catalog_uri={catalogs['env']} (from env CDC_ICEBERG_CATALOG_URI)"
        ]
    )

    cli = _run(
        pytester,
        f"--cdc-delta-uri={lake['cli']}",
        '--cdc-delta-storage-options={"from": "cli"}',
        f"--cdc-iceberg-catalog-uri={catalogs['cli']}",
    )
    assert _shown(cli, "DELTA")[0].startswith(f"{lake['cli']}/delta_")
    assert _shown(cli, "DELTA")[1] == {"from": "cli"}
    assert _shown(cli, "ICEBERG")[0] == catalogs["cli"]
    cli.stdout.fnmatch_lines(["cdc: lakehouse delta_uri=* (from command line), *"])
    assert not any(lake[src].exists() and any(lake[src].iterdir()) for src in lake), (
        "each test's folder below the Delta URI is removed after it"
    )


def test_the_header_hides_secrets(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_nothing(): pass")
    result = pytester.runpytest_subprocess(
        "--cdc-delta-uri=s3://lake/cdc",
        '--cdc-delta-storage-options={"AWS_SECRET_ACCESS_KEY": "s3cr3t", "AWS_REGION": "x"}',
        "--cdc-iceberg-catalog-uri=postgresql+psycopg://app:s3cr3t@127.0.0.1:5432/catalog",
    )
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        [
            "cdc: lakehouse delta_uri=s3://lake/cdc (from command line), "
            "delta_storage_options=AWS_REGION, AWS_SECRET_ACCESS_KEY (from command line), "
            "iceberg_catalog_uri=postgresql+psycopg://app:***@127.0.0.1:5432/catalog "
            "(from command line)"
        ]
    )
    assert "s3cr3t" not in result.stdout.str() + result.stderr.str()


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (
            ["--cdc-delta-uri=s3://x", "--cdc-delta-storage-options=[1]"],
            {},
            "ERROR: --cdc-delta-storage-options (from command line) must be a JSON object of "
            "delta-rs storage options, e.g. *; got '[[]1]' (not a JSON object)",
        ),
        (
            [],
            {"CDC_DELTA_URI": "s3://x", "CDC_DELTA_STORAGE_OPTIONS": "{nope"},
            "ERROR: --cdc-delta-storage-options (from env CDC_DELTA_STORAGE_OPTIONS) must be a "
            "JSON object of delta-rs storage options, e.g. *; got '{nope' (*)",
        ),
        (
            ['--cdc-delta-storage-options={"AWS_REGION": "x"}'],
            {},
            "ERROR: --cdc-delta-storage-options (from command line) needs a Delta URI: set "
            "--cdc-delta-uri, env CDC_DELTA_URI or ini cdc_delta_uri",
        ),
        (
            [],
            {"CDC_ICEBERG_CATALOG_URI": "nosuchdb://app:s3cr3t@host/db"},
            "ERROR: --cdc-iceberg-catalog-uri (from env CDC_ICEBERG_CATALOG_URI): the catalog "
            "URI 'nosuchdb://app:***@host/db' is not a SQLAlchemy URL *Fix: use *",
        ),
    ],
    ids=["options-not-an-object", "options-not-json", "options-without-uri", "catalog-uri"],
)
def test_a_bad_value_is_one_usage_line_naming_the_option(
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    args: list[str],
    env: dict[str, str],
    message: str,
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    pytester.makepyfile("def test_nothing(): pass")
    result = pytester.runpytest_subprocess(*args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    errors = [line for line in result.errlines if line.strip()]
    assert len(errors) == 1, errors
    result.stderr.fnmatch_lines([message])
    assert "s3cr3t" not in result.stderr.str()


def test_a_catalog_database_that_does_not_answer_fails_the_test_in_one_line(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile("def test_iceberg(iceberg_warehouse): pass")
    uri = "postgresql+psycopg://app:s3cr3t@127.0.0.1:1/db"  # port 1: refused on loopback
    result = pytester.runpytest_subprocess(f"--cdc-iceberg-catalog-uri={uri}")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        [
            "--cdc-iceberg-catalog-uri (from command line): the catalog database "
            "postgresql+psycopg://app:***@127.0.0.1:1/db does not answer (*): start it or "
            "fix the URI"
        ]
    )
    shown = result.stdout.str()
    assert "During handling" not in shown and "sqlalche.me" not in shown, shown
    assert "s3cr3t" not in result.stdout.str()
