"""`cdc-spec up → status → up → generate → down → status` on real processes: the stack outlives
the `up` command (in process groups of its own), `down` leaves no process and no files."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import psutil
import psycopg
import pytest

from pytest_cdc.stack import record as records

ROOT = Path(__file__).resolve().parents[2]


def _cdc_spec(env: dict[str, str], *argv: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "cdc_support.cli", *argv],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _alive(pids: list[int]) -> list[int]:
    left = []
    for pid in pids:
        try:
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                left.append(pid)
        except psutil.NoSuchProcess:
            continue
    return left


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {**os.environ, "CDC_STATE_DIR": str(tmp_path / "state"), "CDC_BACKEND": "native"}


def test_up_status_generate_down_leaves_nothing_behind(env: dict[str, str], tmp_path: Path) -> None:
    path = tmp_path / "state" / "stack.json"
    try:
        up = _cdc_spec(env, "up")
        assert up.returncode == 0, up.stdout + up.stderr
        assert "cdc:   postgres: ready in" in up.stdout  # the plugin's progress lines
        record = records.load(path)
        assert record is not None, up.stdout
        components = ["postgres", "mariadb", "kafka", "connect", "collector", "prometheus"]
        assert sorted(entry["name"] for entry in record.processes) == sorted(components)
        pids = record.pids
        assert _alive(pids) == pids, "a process did not outlive `cdc-spec up`"
        assert all(os.getpgid(pid) != os.getpgid(0) for pid in pids), "in the caller's group"
        credentials = json.loads(Path(record.endpoints.credentials_file).read_text())
        assert credentials["postgres_password"] not in up.stdout + up.stderr
        assert f"passwords: in {record.endpoints.credentials_file}" in up.stdout
        assert "cdc:   stop it with: cdc-spec down" in up.stdout

        status = _cdc_spec(env, "status")
        assert status.returncode == 0, status.stdout + status.stderr
        rows = status.stdout.splitlines()[1 : 1 + len(components)]
        assert [row.split()[0] for row in rows] == components
        assert all(row.split()[2] == "up" for row in rows), status.stdout
        assert "connector lag: no Debezium connector streams (Prometheus: " in status.stdout

        again = _cdc_spec(env, "up")
        assert again.returncode == 0, again.stdout + again.stderr
        assert "cdc: a stack is already up: native stack started by cdc-spec up" in again.stdout
        assert f"recorded in {path}" in again.stdout
        assert records.load(path) == record

        generate = _cdc_spec(env, "generate", "--table", "customers", "--rows", "1000")
        assert generate.returncode == 0, generate.stdout + generate.stderr
        assert "generated 1000 customers rows (seed 1)" in generate.stdout
        assert generate.stdout.rstrip().endswith("rows/s")
        with psycopg.connect(record.endpoints.postgres_dsn) as conn:
            count = conn.execute("SELECT count(*), max(id) FROM customers").fetchone()
        assert count == (1000, 1000)
    finally:
        down = _cdc_spec(env, "down")
    assert down.returncode == 0, down.stdout + down.stderr
    assert down.stdout.splitlines()[-1] == f"cdc: stack stopped, {path} removed"
    assert _alive(pids) == []  # gone when `down` returns
    assert not Path(record.workdir).exists()
    assert not path.exists()

    after = _cdc_spec(env, "status")
    assert after.returncode == 1
    assert after.stdout.startswith("no stack is up")
    again = _cdc_spec(env, "down")
    assert (again.returncode, again.stdout.startswith("no stack is up")) == (0, True)


def test_up_without_mariadb_starts_no_mariadb(env: dict[str, str], tmp_path: Path) -> None:
    path = tmp_path / "state" / "stack.json"
    pids: list[int] = []
    try:
        up = _cdc_spec(env, "up", "--components", "postgres,kafka,connect")
        assert up.returncode == 0, up.stdout + up.stderr
        record = records.load(path)
        assert record is not None, up.stdout
        pids = record.pids
        components = ["postgres", "kafka", "connect", "collector", "prometheus"]
        assert sorted(entry["name"] for entry in record.processes) == sorted(components)
        assert record.endpoints.mysql_dsn is None
        names = " ".join(psutil.Process(pid).name() for pid in pids)
        assert "mariadbd" not in names, names
        status = _cdc_spec(env, "status")
        assert status.returncode == 0, status.stdout + status.stderr
        rows = status.stdout.splitlines()[1 : 1 + len(components)]
        assert [row.split()[0] for row in rows] == components
    finally:
        down = _cdc_spec(env, "down")
    assert down.returncode == 0, down.stdout + down.stderr
    assert _alive(pids) == []
