"""The docker backend on the real engine and the cdc-spec images: every endpoint answers,
faults go through the container API, and nothing of a stack is left once it is closed.

Needs the engine `make setup` starts and the images it builds. Every container these tests
create carries its session's label; only those are looked at and removed.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pymysql
import pytest
import requests

from cdc_support.mysql.source import parse_dsn
from pytest_cdc.errors import StackStartError
from pytest_cdc.stack.docker import cleanup
from pytest_cdc.stack.docker.containers import (
    COMPONENT_LABEL,
    OWNER_PID_LABEL,
    SESSION_LABEL,
    ServiceContainer,
    labels_for,
)
from pytest_cdc.stack.docker.images import image_ref
from pytest_cdc.stack.docker.stack import DockerStack, start_docker_stack
from pytest_cdc.stack.native.stack import _free_ports
from pytest_cdc.stack.probes import KafkaProbe, SqlProbe

pytestmark = pytest.mark.timeout(900)


def session_containers(session: str) -> list[Any]:
    """`docker ps -a --filter label=org.cdc-spec.session=<session>`."""
    return cleanup.labelled_containers(f"{SESSION_LABEL}={session}")


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DockerStack]:
    lines: list[str] = []
    started = start_docker_stack(progress=lines.append, base_temp=tmp_path_factory.mktemp("docker"))
    started.progress_lines = lines  # type: ignore[attr-defined]
    try:
        yield started
    finally:
        started.close()
    assert session_containers(started.session) == []
    assert not started.workdir.exists()


def test_every_endpoint_answers_with_the_generated_accounts(stack: DockerStack) -> None:
    ep = stack.endpoints
    with psycopg.connect(ep.postgres_dsn) as conn:
        assert conn.execute("SHOW wal_level").fetchone() == ("logical",)
    cdc = psycopg.conninfo.make_conninfo(
        ep.postgres_dsn, user=ep.postgres_cdc_user, password=ep.postgres_cdc_password
    )
    with psycopg.connect(cdc) as conn:
        role = conn.execute(
            "SELECT rolreplication, rolsuper FROM pg_roles WHERE rolname = current_user"
        ).fetchone()
    assert (ep.postgres_cdc_user, role) == ("cdc_replication", (True, False))
    assert ep.mysql_dsn is not None
    for dsn in (ep.mysql_dsn, ep.mysql_cdc_dsn):
        address = parse_dsn(dsn)
        conn = pymysql.connect(**address.connect_kwargs())
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT @@binlog_format, @@binlog_row_image, current_user()")
                binlog_format, row_image, user = cur.fetchone()
        finally:
            conn.close()
        assert (binlog_format, row_image) == ("ROW", "FULL")
        assert user.split("@")[0] == address.user
    assert KafkaProbe(ep.kafka_bootstrap).check() is None
    assert requests.get(f"{ep.connect_url}/connectors", timeout=10).json() == []
    plugins = requests.get(f"{ep.connect_url}/connector-plugins", timeout=10).json()
    classes = {plugin["class"] for plugin in plugins}
    assert "io.debezium.connector.postgresql.PostgresConnector" in classes, classes


def test_the_stack_says_what_it_runs_and_keeps_its_passwords_private(stack: DockerStack) -> None:
    info = stack.info
    assert (info.backend, stack.components) == (
        "docker",
        ("postgres", "mariadb", "kafka", "connect", "collector", "prometheus"),
    )
    assert set(info.start_seconds) == set(stack.components)
    assert all(seconds > 0 for seconds in info.start_seconds.values()), info.start_seconds
    for key in ("kafka", "connect", "debezium", "postgres", "mariadb", "prometheus"):
        assert info.versions.get(key), info.versions
    credentials = Path(stack.endpoints.credentials_file)
    assert credentials.parent == stack.workdir
    assert stat.S_IMODE(credentials.stat().st_mode) == 0o600
    assert stack.endpoints.postgres_password in credentials.read_text()
    lines = stack.progress_lines  # type: ignore[attr-defined]
    assert lines[0].startswith(f"cdc: starting docker stack (session {stack.session})")
    for name, container in stack.containers.items():
        assert f"cdc:   {name}: ready in " in "\n".join(lines)
        assert f"(container {container.short_id})" in "\n".join(lines)
    assert not any(stack.endpoints.postgres_password in line for line in lines)
    labelled = {c.labels[COMPONENT_LABEL]: c for c in session_containers(stack.session)}
    assert sorted(labelled) == sorted(stack.components)
    for container in labelled.values():
        assert container.labels[OWNER_PID_LABEL] == str(os.getpid())
        assert container.attrs["HostConfig"]["NetworkMode"] == "host"


def test_restarting_postgres_keeps_its_rows(stack: DockerStack) -> None:
    dsn = stack.endpoints.postgres_dsn
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE kept (id int PRIMARY KEY)")
        conn.execute("INSERT INTO kept SELECT generate_series(1, 100)")
    before = stack.containers["postgres"].short_id
    stack.restart("postgres")
    assert stack.containers["postgres"].short_id == before  # the same container
    with psycopg.connect(dsn) as conn:
        assert conn.execute("SELECT count(*) FROM kept").fetchone() == (100,)


def test_a_killed_kafka_is_down_until_restarted(stack: DockerStack) -> None:
    probe = KafkaProbe(stack.endpoints.kafka_bootstrap)
    stack.kill("kafka")
    assert stack.containers["kafka"].status == "exited"
    assert probe.check() is not None
    stack.restart("kafka")
    assert probe.check() is None


def test_every_component_logs(stack: DockerStack) -> None:
    for name in stack.components:
        assert stack.logs(name, lines=5).strip(), name
        assert len(stack.logs(name, lines=5).splitlines()) <= 5
    with pytest.raises(ValueError, match="unknown component 'mysql'; this stack has: postgres"):
        stack.logs("mysql")


def test_a_stack_without_mariadb_has_no_mariadb_container_and_removes_them(tmp_path: Path) -> None:
    started = start_docker_stack(progress=lambda line: None, base_temp=tmp_path, with_mysql=False)
    try:
        assert started.components == ("postgres", "kafka", "connect", "collector", "prometheus")
        assert started.endpoints.mysql_dsn is None
        labelled = sorted(c.labels[COMPONENT_LABEL] for c in session_containers(started.session))
        assert labelled == sorted(started.components)
    finally:
        started.close()
    assert session_containers(started.session) == []
    assert list(tmp_path.iterdir()) == []


def test_a_container_whose_owner_is_gone_is_removed_as_an_orphan(tmp_path: Path) -> None:
    """What a SIGKILLed run leaves: its containers, labelled with a pid that no longer runs,
    and its temp dir; a container whose owner runs (this process) stays."""
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    workdir = tmp_path / "cdc-docker-orphan"
    workdir.mkdir()
    orphan_labels = {**labels_for("orphan-test-dead", "postgres", str(workdir))}
    orphan_labels[OWNER_PID_LABEL] = str(dead.pid)
    made = [
        _postgres("orphan-test-dead", orphan_labels),
        _postgres("orphan-test-live", labels_for("orphan-test-live", "postgres")),
    ]
    try:
        for container in made:
            container.start()
        lines = cleanup.remove_orphans()
        assert (
            "removed container cdc-spec-orphan-test-dead (postgres, session orphan-test-dead)"
            in lines
        )
        assert f"removed {workdir}" in lines
        assert session_containers("orphan-test-dead") == []
        assert len(session_containers("orphan-test-live")) == 1  # its owner (this process) runs
    finally:
        for container in made:
            container.remove()


def _postgres(session: str, labels: dict[str, str]) -> ServiceContainer:
    port = _free_ports(1)[0]
    return ServiceContainer(
        "postgres",
        image_ref("postgres"),
        env={"PGPORT": str(port), "POSTGRES_PASSWORD": "pw", "CDC_REPLICATION_PASSWORD": "r"},
        labels=labels,
        probe=SqlProbe(f"postgresql://postgres:pw@127.0.0.1:{port}/postgres"),
        timeout=60,
        name=f"cdc-spec-{session}",
    )


def _cdc_spec(state: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CDC_")}
    env["CDC_STATE_DIR"] = str(state)
    command = [sys.executable, "-m", "cdc_support.cli", *args]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)


def test_cdc_spec_up_docker_then_status_then_down_leaves_nothing(tmp_path: Path) -> None:
    up = _cdc_spec(tmp_path, "up", "--backend", "docker", "--components", "postgres,kafka,connect")
    record = tmp_path / "stack.json"
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        assert "cdc: stack up (docker), recorded in" in up.stdout, up.stdout
        session = up.stdout.split("(session ")[1].split(")")[0]
        running = 5  # postgres, kafka, connect, collector, prometheus
        assert len(session_containers(session)) == running  # left running by `up`, now exited
        status = _cdc_spec(tmp_path, "status")
        assert status.returncode == 0, status.stdout + status.stderr
        assert "docker stack started by cdc-spec up" in status.stdout
        assert "connector lag: no Debezium connector streams (Prometheus: http" in status.stdout
        again = _cdc_spec(tmp_path, "up", "--backend", "docker")
        assert "cdc: a stack is already up: docker stack" in again.stdout, again.stdout
        down = _cdc_spec(tmp_path, "down")
        assert down.returncode == 0, down.stdout + down.stderr
        assert down.stdout.count("removed container cdc-spec-") == running, down.stdout
        assert session_containers(session) == []
        assert not record.exists()
    finally:
        if record.exists():
            _cdc_spec(tmp_path, "down")


def test_cdc_spec_down_removes_the_containers_of_a_run_that_is_gone(tmp_path: Path) -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    labels = {**labels_for("down-test-dead", "postgres"), OWNER_PID_LABEL: str(dead.pid)}
    container = _postgres("down-test-dead", labels)
    try:
        container.start()
        down = _cdc_spec(tmp_path, "down")
        assert down.returncode == 0, down.stdout + down.stderr
        assert down.stdout == (
            "cdc: removed container cdc-spec-down-test-dead (postgres, session down-test-dead) "
            "(its run is gone)\n"
        )
        assert session_containers("down-test-dead") == []
    finally:
        container.remove()


def test_a_container_that_exits_fails_its_start_at_once_with_its_log(tmp_path: Path) -> None:
    port = _free_ports(1)[0]
    container = ServiceContainer(
        "postgres",
        image_ref("postgres"),
        env={"PGPORT": str(port)},  # no POSTGRES_PASSWORD: the image refuses to start
        labels=labels_for("exit-test", "postgres"),
        probe=SqlProbe(f"postgresql://postgres:pw@127.0.0.1:{port}/postgres"),
        timeout=300,
    )
    try:
        with pytest.raises(StackStartError) as raised:
            container.start()
        message = str(raised.value)
        assert message.startswith("postgres did not start: waited for SELECT 1 on postgresql://")
        assert "is exited (exit code " in message and "POSTGRES_PASSWORD" in message, message
        assert container.created  # removed by its owner, as a stack does on a failed start
    finally:
        container.remove()
    assert session_containers("exit-test") == []


def test_a_container_that_never_answers_fails_at_the_deadline_with_what_it_saw() -> None:
    port, wrong = _free_ports(2)
    container = ServiceContainer(
        "postgres",
        image_ref("postgres"),
        env={"PGPORT": str(port), "POSTGRES_PASSWORD": "pw", "CDC_REPLICATION_PASSWORD": "r"},
        labels=labels_for("deadline-test", "postgres"),
        probe=SqlProbe(f"postgresql://postgres:pw@127.0.0.1:{wrong}/postgres"),
        timeout=5,
    )
    try:
        with pytest.raises(StackStartError) as raised:
            container.start()
        message = str(raised.value)
        assert (
            f"SELECT 1 on postgresql://postgres:***@127.0.0.1:{wrong}/postgres within 5s" in message
        )
        assert "seen: OperationalError: connection failed" in message, message
        assert "last lines of the postgres log:" in message, message
    finally:
        container.remove()
    assert session_containers("deadline-test") == []
