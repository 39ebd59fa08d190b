"""``cdc-spec sink`` logs JSON lines (stderr, and ``--log-file``) that name its topic and table.

The worker is run for real; it refuses a table path that is a file before it needs Kafka, so
no service is involved.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from cdc_support.logs import LOG_KEYS
from pytest_cdc.process import cdc_spec_command


def _sink(tmp_path: Path, *extra: str) -> tuple[subprocess.CompletedProcess[str], Path]:
    table = tmp_path / "table"
    table.write_text("a file, not a table folder")
    args = [
        "--bootstrap", "127.0.0.1:1", "--topic", "shop.public.customers", "--group", "g",
        "--format", "delta", "--key", "id", "--table-uri", str(table), *extra,
    ]  # fmt: skip
    result = subprocess.run(
        [*cdc_spec_command(), "sink", *args], capture_output=True, text=True, timeout=60
    )
    return result, table


def test_stderr_and_the_log_file_get_the_same_json_line_with_topic_and_table(tmp_path) -> None:
    log_file = tmp_path / "logs" / "sink-demo.log"
    result, table = _sink(tmp_path, "--log-file", str(log_file))
    assert result.returncode == 2, result.stderr
    (line,) = result.stderr.splitlines()
    obj = json.loads(line)
    assert list(obj)[: len(LOG_KEYS)] == list(LOG_KEYS)
    assert (obj["level"], obj["component"], obj["logger"]) == ("ERROR", "sink", "cdc_support.sinks")
    assert obj["topic"] == "shop.public.customers" and obj["table"] == str(table)
    assert f"--table-uri {table}" in obj["message"] and "is a file" in obj["message"]
    assert log_file.read_text().splitlines() == [line]


def test_log_format_text_keeps_stderr_for_people(tmp_path) -> None:
    result, table = _sink(tmp_path, "--log-format", "text")
    assert result.returncode == 2, result.stderr
    (line,) = result.stderr.splitlines()
    assert " ERROR cdc-spec sink: " in line and f"--table-uri {table}" in line


def test_a_log_file_that_cannot_be_written_is_one_line_naming_the_option(tmp_path) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    result, _ = _sink(tmp_path, "--log-file", str(blocker / "sink.log"))
    assert result.returncode == 2, result.stderr
    assert f"--log-file {blocker}/sink.log: cannot write it" in result.stderr.splitlines()[-1]
    assert "Traceback" not in result.stderr
