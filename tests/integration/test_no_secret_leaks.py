"""No password of the stack appears in the Allure results, its environment, or the console.

Runs real scenarios (PostgreSQL and MariaDB through Debezium, whose configs carry passwords) in
a separate pytest with ``--alluredir`` and ``--cdc-keep-stack``, reads the passwords from the
credentials file the kept stack names, and looks for each of them everywhere the run wrote.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from urllib.parse import unquote, urlsplit

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = "replication_role or (delivers_inserts and Debezium)"


def _line_value(output: str, label: str) -> str | None:
    match = re.search(rf"^cdc:\s+{re.escape(label)}\s*(.+)$", output, re.MULTILINE)
    return match.group(1).strip() if match else None


def _passwords(credentials: dict[str, object]) -> dict[str, str]:
    found = {k: str(v) for k, v in credentials.items() if k.endswith("password") and v}
    for key, value in credentials.items():
        if isinstance(value, str) and "://" in value and urlsplit(value).password:
            found[key] = unquote(str(urlsplit(value).password))
    return found


def test_no_password_in_allure_results_environment_or_keep_stack_output(tmp_path: Path) -> None:
    alluredir = tmp_path / "allure-results"
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "no:cacheprovider",
            "features/postgres/debezium.feature",
            "features/mysql/binlog.feature",
            "-k",
            SCENARIOS,
            f"--alluredir={alluredir}",
            "--cdc-keep-stack",
            f"--basetemp={tmp_path / 'basetemp'}",
        ],
        cwd=ROOT,
        env={**os.environ, "CDC_STATE_DIR": str(tmp_path / "state")},
        capture_output=True,
        text=True,
        timeout=900,
    )
    output = run.stdout + run.stderr
    stop_command = _line_value(output, "stop it with:")
    try:
        assert run.returncode == 0, output[-3000:]
        credentials_file = _line_value(output, "credentials_file =")
        assert credentials_file, "the kept stack does not name its credentials file:\n" + output
        passwords = _passwords(json.loads(Path(credentials_file).read_text()))
        assert set(passwords) >= {
            "postgres_dsn",
            "postgres_cdc_password",
            "mysql_dsn",
            "mysql_cdc_password",
        }, sorted(passwords)
        assert all(len(p) >= 16 for p in passwords.values()), "passwords are too short"
        assert "***" in output, "the kept stack's endpoints are not shown (redacted)"
        written = {p: p.read_bytes() for p in alluredir.rglob("*") if p.is_file()}
        assert alluredir / "environment.properties" in written, sorted(map(str, written))
        assert any(p.name.endswith("-result.json") for p in written), "no Allure results"
        for name, secret in passwords.items():
            assert secret not in output, f"the {name} password is printed on the console"
            leaks = [str(p) for p, data in written.items() if secret.encode() in data]
            assert not leaks, f"the {name} password is in the Allure results: {leaks}"
    finally:
        if stop_command:
            subprocess.run(stop_command, shell=True, check=False, timeout=120)
