"""The docker images really run: each one, built by `images.build_images` (a no-op when up to
date), starts with host networking on free ports, answers as the native backend's component
does, turns healthy through its own HEALTHCHECK and runs as its non-root user. Containers are
removed when a test ends, also when it fails (the `with` of testcontainers' DockerContainer).
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import port_for
import psycopg
import psycopg2
import pymysql
import pytest
import requests
from confluent_kafka.admin import AdminClient
from psycopg2.extras import LogicalReplicationConnection

from cdc_support.waiting import wait_until
from pytest_cdc.stack.docker import engine, images
from pytest_cdc.stack.docker.containers import labels_for
from pytest_cdc.stack.native.mariadb import mysql_dsn
from pytest_cdc.stack.native.postgres import REPLICATION_ROLE, postgres_dsn
from pytest_cdc.stack.probes import HttpProbe, KafkaProbe, Probe, SqlProbe

# isort: off
from testcontainers.core.container import DockerContainer  # after engine: Ryuk disabled

# isort: on

SESSION = f"images-test-{secrets.token_hex(4)}"
START_SECONDS = 180.0
USERS = {
    "postgres": "postgres",
    "mariadb": "mysql",
    "kafka": "kafka",
    "connect": "kafka",
    "prometheus": "prometheus",
}
DEBEZIUM = {
    "io.debezium.connector.postgresql.PostgresConnector",
    "io.debezium.connector.mariadb.MariaDbConnector",
}


@pytest.fixture(scope="module")
def refs() -> dict[str, str]:
    """Every image built (only what is missing or stale) and the ref a stack would run."""
    engine.require_engine("tests/integration/test_docker_images_run.py")
    images.build_images(images.IMAGE_NAMES, progress=print)
    return {name: images.image_ref(name) for name in images.IMAGE_NAMES}


def _password() -> str:
    return secrets.token_urlsafe(12) + "'\\x"  # a quote and a backslash: escaped by the images


@contextmanager
def running(ref: str, component: str, **env: str) -> Iterator[DockerContainer]:
    """The container of ``ref`` on the host network; removed on exit, whatever happened."""
    container = DockerContainer(ref, network_mode="host", labels=labels_for(SESSION, component))
    for key, value in env.items():
        container.with_env(key, value)
    with container:
        yield container


def _tail(container: DockerContainer) -> list[str]:
    return container.get_wrapped_container().logs(tail=30).decode(errors="replace").splitlines()


def wait_ready(container: DockerContainer, probe: Probe) -> None:
    """Poll the probe until it answers; fail at once if the container exits."""

    def seen() -> str | None:
        wrapped = container.get_wrapped_container()
        wrapped.reload()
        if wrapped.status != "running":
            return f"container {wrapped.status}"
        return probe.check()

    wait_until(
        seen,
        done=lambda value: value is None or value.startswith("container exited"),
        timeout=START_SECONDS,
        interval=0.5,
        expected=probe.awaited,
        describe=str,
        log_lines=lambda: _tail(container),
    )
    assert seen() is None, _tail(container)


def assert_healthy_as(container: DockerContainer, user: str) -> None:
    """The image's HEALTHCHECK reports healthy, and the service runs as ``user``."""
    wrapped = container.get_wrapped_container()

    def health() -> str:
        wrapped.reload()
        return wrapped.attrs["State"].get("Health", {}).get("Status", "no healthcheck")

    wait_until(health, done=lambda s: s == "healthy", timeout=60, expected="healthy", describe=str)
    code, out = wrapped.exec_run(["id", "-un"])
    assert (code, out.decode().strip()) == (0, user)


def test_images_carry_tags_labels_and_non_root_users(refs: dict[str, str]) -> None:
    client = engine.engine_client()
    version = images.project_version()
    for name, ref in refs.items():
        image = client.images.get(ref)
        labels = image.labels
        assert f"cdc-spec/{name}:{version}" in image.tags, image.tags
        assert ref == f"cdc-spec/{name}:{version}-{labels['org.cdc-spec.hash']}"
        assert (labels["org.cdc-spec.image"], labels["org.cdc-spec.version"]) == (name, version)
        assert json.loads(labels["org.cdc-spec.component-versions"])
        assert image.attrs["Config"]["User"] == USERS.get(name, "10001")
    assert images.missing_images() == []
    lines: list[str] = []
    assert images.build_images(progress=lines.append) == dict.fromkeys(images.IMAGE_NAMES, 0.0)
    assert all(line.startswith(f"{n}: up to date (") for n, line in zip(refs, lines, strict=True))


def test_postgres_image_logs_in_both_roles_with_scram(refs: dict[str, str]) -> None:
    port, admin_pw, replication_pw = port_for.select_random(), _password(), _password()
    env = {"POSTGRES_PASSWORD": admin_pw, "CDC_REPLICATION_PASSWORD": replication_pw}
    with running(refs["postgres"], "postgres", PGPORT=str(port), **env) as container:
        admin = postgres_dsn(port, password=admin_pw)
        wait_ready(container, SqlProbe(admin))
        with psycopg.connect(admin) as conn:
            settings = dict(
                conn.execute(
                    "SELECT name, setting FROM pg_settings WHERE name IN "
                    "('wal_level', 'max_replication_slots', 'fsync', 'listen_addresses')"
                ).fetchall()
            )
            hashes = conn.execute(
                "SELECT rolname, left(rolpassword, 14) FROM pg_authid WHERE rolpassword IS NOT NULL"
            ).fetchall()
        assert settings == {
            "wal_level": "logical",
            "max_replication_slots": "20",
            "fsync": "off",
            "listen_addresses": "127.0.0.1",
        }
        scram = "SCRAM-SHA-256$"
        assert sorted(hashes) == [(REPLICATION_ROLE, scram), ("postgres", scram)]
        replication = postgres_dsn(port, user=REPLICATION_ROLE, password=replication_pw)
        with psycopg.connect(replication) as conn:
            row = conn.execute(
                "SELECT rolreplication, rolsuper FROM pg_roles WHERE rolname = current_user"
            ).fetchone()
        assert row == (True, False)
        # a replication connection of the role, with pgoutput and the image's wal2json (15.20+
        # lets REPLICATION roles use only plugins in output_plugin_libraries: the image adds it)
        for plugin in ("pgoutput", "wal2json"):
            slots = psycopg2.connect(replication, connection_factory=LogicalReplicationConnection)
            try:
                slots.cursor().create_replication_slot(f"images_{plugin}", output_plugin=plugin)
                slots.cursor().drop_replication_slot(f"images_{plugin}")
            finally:
                slots.close()
        with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
            psycopg.connect(postgres_dsn(port, password="wrong")).close()
        assert_healthy_as(container, "postgres")


def test_mariadb_image_logs_in_root_and_cdc_with_a_row_binlog(refs: dict[str, str]) -> None:
    port, root_pw, cdc_pw = port_for.select_random(), _password(), _password()
    env = {"MARIADB_ROOT_PASSWORD": root_pw, "MARIADB_CDC_PASSWORD": cdc_pw}
    with running(refs["mariadb"], "mariadb", MARIADB_PORT=str(port), **env) as container:
        wait_ready(container, SqlProbe(mysql_dsn(port, "root", root_pw)))
        conn = pymysql.connect(host="127.0.0.1", port=port, user="root", password=root_pw)
        with conn, conn.cursor() as cur:
            cur.execute(
                "SELECT @@binlog_format, @@binlog_row_image, @@binlog_row_metadata, "
                "@@server_id, @@log_bin, @@time_zone, @@bind_address"
            )
            assert cur.fetchone() == ("ROW", "FULL", "FULL", 1, 1, "+00:00", "127.0.0.1")
        conn = pymysql.connect(host="127.0.0.1", port=port, user="cdc", password=cdc_pw)
        with conn, conn.cursor() as cur:
            cur.execute("SHOW GRANTS")
            grants = " ".join(row[0] for row in cur.fetchall())
            cur.execute("SHOW MASTER STATUS")  # needs REPLICATION CLIENT
            assert cur.fetchone()[0].startswith("binlog.")
        assert "REPLICATION SLAVE" in grants and "INSERT" not in grants
        assert_healthy_as(container, "mysql")


@pytest.fixture(scope="module")
def kafka(refs: dict[str, str]) -> Iterator[tuple[DockerContainer, str]]:
    """A broker container (shared by the kafka and connect tests) and its bootstrap address."""
    port, controller = port_for.select_random(), port_for.select_random()
    env = {"KAFKA_PORT": str(port), "KAFKA_CONTROLLER_PORT": str(controller)}
    with running(refs["kafka"], "kafka", **env) as container:
        bootstrap = f"127.0.0.1:{port}"
        wait_ready(container, KafkaProbe(bootstrap))
        yield container, bootstrap


def test_kafka_image_answers_metadata_on_its_port(kafka: tuple[DockerContainer, str]) -> None:
    container, bootstrap = kafka
    metadata = AdminClient({"bootstrap.servers": bootstrap}).list_topics(timeout=10)
    assert [f"{b.host}:{b.port}" for b in metadata.brokers.values()] == [bootstrap]
    assert_healthy_as(container, "kafka")


def test_connect_image_lists_the_debezium_plugins(
    refs: dict[str, str], kafka: tuple[DockerContainer, str]
) -> None:
    _, bootstrap = kafka
    port = port_for.select_random()
    env = {"KAFKA_BOOTSTRAP": bootstrap, "CONNECT_TOPIC_PREFIX": "_images_test"}
    with running(refs["connect"], "connect", CONNECT_PORT=str(port), **env) as container:
        wait_ready(container, HttpProbe(f"http://127.0.0.1:{port}/connectors"))
        plugins = requests.get(f"http://127.0.0.1:{port}/connector-plugins", timeout=10).json()
        assert {plugin["class"] for plugin in plugins} >= DEBEZIUM
        topics = AdminClient({"bootstrap.servers": bootstrap}).list_topics(timeout=10).topics
        assert {"_images_test_configs", "_images_test_offsets", "_images_test_status"} <= set(
            topics
        )
        assert_healthy_as(container, "kafka")


def _run_to_exit(ref: str, command: list[str], **kwargs: Any) -> tuple[int, str]:
    container = DockerContainer(ref, network_mode="host", labels=labels_for(SESSION, "sink"))
    container.with_command(command).with_kwargs(**kwargs)
    with container:
        wrapped = container.get_wrapped_container()
        code = wrapped.wait(timeout=120)["StatusCode"]
        return code, wrapped.logs().decode(errors="replace")


def test_sink_image_runs_cdc_spec(refs: dict[str, str]) -> None:
    code, out = _run_to_exit(refs["sink"], command=["--help"])
    assert code == 0 and "cdc-spec" in out and "sink" in out, out
    code, out = _run_to_exit(refs["sink"], command=["sink", "--help"])
    assert code == 0 and "--bootstrap" in out, out
    imports = "import deltalake, pyarrow, pyiceberg.catalog.sql, confluent_kafka, psycopg"
    code, out = _run_to_exit(refs["sink"], ["-c", imports], entrypoint=["python"])
    assert code == 0, out
