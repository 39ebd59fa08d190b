"""What the report shows as each step's parameters: short names, never default object reprs.

allure-pytest-bdd records every argument of a step function (Gherkin values and fixtures) as a
step parameter, by ``repr``. This runs scenarios whose steps take connections, factories,
tables and the scenario's fixtures, with ``--alluredir``, and reads the parameters back from the
results: none may read ``<… object at 0x…>`` (or ``<psycopg.Connection … at 0x…>``) or
``<FixtureRequest for …>``.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = (
    # mysql_conn, the MariaDB approach chosen by name, its factories
    "features/mysql/binlog.feature::test_approach_delivers_inserts_updates_and_deletes_with_"
    "before_and_after_in_commit_order",
    "features/mysql/binlog.feature::test_the_binlog_reader_stopped_midworkload_resumes_from_its"
    "_saved_position",
    # pg_conn, connect_client, pg_connector_factory, kafka_reader_factory
    "features/postgres/keyless_tables.feature",
    # sink_worker_factory, a source picked by the <source> column, cdc_stack
    "features/pipelines/sink_poison.feature::test_postgresql__delta_a_sink_worker_whose_key_is_"
    "not_in_the_rows_of_a_table_without_a_primary_key_stops_with_one_line_naming_key",
    "features/pipelines/lakehouse_sinks.feature::test_source__format_a_record_the_worker_cannot_"
    "parse_goes_to_the_deadletter_topic_and_the_worker_goes_on[MariaDB-Delta]",
)
PYTEST = (sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "--timeout=900")
UNREADABLE = re.compile(r" at 0x[0-9a-fA-F]+>|<FixtureRequest\b|<SubRequest\b")


def _step_parameters(steps: list[dict[str, Any]]) -> Iterator[tuple[str, str, str]]:
    for step in steps:
        for param in step.get("parameters", []):
            yield step["name"], param["name"], param["value"]
        yield from _step_parameters(step.get("steps", []))


def test_step_parameters_in_the_report_have_short_reprs(tmp_path: Path) -> None:
    results = tmp_path / "allure-results"
    proc = subprocess.run(
        [*PYTEST, f"--alluredir={results}", *SCENARIOS],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    tests = [json.loads(p.read_text()) for p in results.glob("*-result.json")]
    assert len(tests) >= len(SCENARIOS), f"scenarios did not run:\n{proc.stdout[-3000:]}"
    params = [p for test in tests for p in _step_parameters(test.get("steps", []))]
    names = {name for _, name, _ in params}
    assert {"mysql_conn", "pg_conn", "sink_worker_factory"} <= names, sorted(names)
    unreadable = sorted(
        {
            f"{step!r}: {name}={value[:200]}"
            for step, name, value in params
            if UNREADABLE.search(value)
        }
    )
    assert not unreadable, "step parameters shown as default reprs:\n" + "\n".join(unreadable)
