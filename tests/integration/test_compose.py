"""docker-compose.yml: the file agrees with the images and with the endpoints file it documents,
and (driven by testcontainers' DockerCompose) the `core` profile comes up healthy and a Debezium
scenario passes against it through the external backend; the `sinks` profile applies a topic to
Delta and Iceberg tables this host reads; `down` leaves no container of the project."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from confluent_kafka.admin import AdminClient

from cdc_support.checks.integrity import compare_tables
from cdc_support.endpoints import Endpoints
from cdc_support.sinks.config import SinkTarget
from cdc_support.sinks.dlq import ensure_topic
from cdc_support.sinks.envelopes import customer_changes, produce
from cdc_support.waiting import wait_until
from cdc_support.workload import NORMALIZERS
from pytest_cdc.fixtures._sink_containers import IMAGE_UID
from pytest_cdc.stack.docker.image_inputs import RECIPES, SINK_STAGE, project_version

os.environ["TESTCONTAINERS_RYUK_DISABLED"] = "true"  # its reaper image cannot be pulled here

from testcontainers.compose import DockerCompose  # after the line above

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = "docker-compose.yml"
ENDPOINTS = ROOT / "docker" / "compose-endpoints.json"
SCENARIO = "inserts_updates_and_deletes_arrive"
"""One P1 scenario of features/postgres/debezium.feature (pytest -k)."""
TIMEOUT = 900


def _compose_env(project: str = "") -> dict[str, str]:
    """This environment without CDC_* overrides (so the file's defaults apply)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CDC_", "COMPOSE_"))}
    return {**env, "COMPOSE_PROJECT_NAME": project} if project else env


def _config() -> dict[str, Any]:
    """`docker compose config` of every profile, defaults interpolated."""
    result = subprocess.run(
        ["docker", "compose", "-f", COMPOSE_FILE, "--profile", "core", "--profile", "sinks",
         "config", "--format", "json"],
        cwd=ROOT, env=_compose_env(), capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_every_service_is_host_networked_pinned_and_built_like_the_images() -> None:
    services = _config()["services"]
    version = project_version(ROOT)
    assert set(services) >= {"postgres", "mariadb", "kafka", "connect", "sink-delta"}
    assert "networks" not in _config() or not _config()["networks"]
    for name, service in services.items():
        assert service.get("network_mode") == "host", name
        assert not service.get("ports") and not service.get("networks"), name
        image, _, tag = service["image"].partition(":")
        assert tag == version, f"{name}: {service['image']} is not pinned to {version}"
        recipe = RECIPES[image.removeprefix("cdc-spec/")]
        build = service["build"]
        assert Path(build["context"]) == ROOT / recipe.context, name
        staged = recipe.context == SINK_STAGE  # images.py copies the Dockerfile there
        dockerfile = f"{SINK_STAGE}/Dockerfile" if staged else recipe.dockerfile
        assert Path(build["context"], build.get("dockerfile", "Dockerfile")) == ROOT / dockerfile
        assert build.get("target") == recipe.target, name
        assert build.get("network") == "host", f"{name}: builds need the host network here"
    assert services["connect"]["depends_on"]["kafka"]["condition"] == "service_healthy"
    assert {"core"} <= set(services["postgres"]["profiles"])
    assert services["sink-iceberg"]["profiles"] == ["sinks"]


def test_the_endpoints_file_is_the_compose_defaults() -> None:
    env = {name: s.get("environment") or {} for name, s in _config()["services"].items()}
    ep = Endpoints.from_json(ENDPOINTS.read_text(), source=str(ENDPOINTS))
    pg = urlsplit(ep.postgres_dsn)
    assert (str(pg.port), pg.password) == (
        env["postgres"]["PGPORT"],
        env["postgres"]["POSTGRES_PASSWORD"],
    )
    assert ep.postgres_password == env["postgres"]["POSTGRES_PASSWORD"]
    assert ep.postgres_cdc_user == "cdc_replication"
    assert ep.postgres_cdc_password == env["postgres"]["CDC_REPLICATION_PASSWORD"]
    my = urlsplit(ep.mysql_dsn or "")
    assert (str(my.port), my.username, my.password) == (
        env["mariadb"]["MARIADB_PORT"],
        "root",
        env["mariadb"]["MARIADB_ROOT_PASSWORD"],
    )
    assert (ep.mysql_flavor, ep.mysql_cdc_user) == ("mariadb", "cdc")
    assert ep.mysql_cdc_password == env["mariadb"]["MARIADB_CDC_PASSWORD"]
    assert ep.kafka_bootstrap == f"127.0.0.1:{env['kafka']['KAFKA_PORT']}"
    assert env["connect"]["KAFKA_BOOTSTRAP"] == ep.kafka_bootstrap
    assert ep.connect_url == f"http://127.0.0.1:{env['connect']['CONNECT_PORT']}"


def _project_containers(project: str) -> list[str]:
    result = subprocess.run(
        ["docker", "ps", "-a", "--format", "{{.Names}}",
         "--filter", f"label=com.docker.compose.project={project}"],
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    return result.stdout.split()


def _features_on(endpoints: Path) -> subprocess.CompletedProcess[str]:
    """One P1 Debezium scenario through the external backend, in a pytest of its own."""
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", f"--timeout={TIMEOUT}",
         "--cdc-backend=external", f"--cdc-endpoints={endpoints}",
         "features/postgres/debezium.feature", "-k", SCENARIO],
        cwd=ROOT, env=_compose_env(), capture_output=True, text=True, timeout=TIMEOUT,
    )  # fmt: skip


@contextlib.contextmanager
def _compose_up(
    monkeypatch: pytest.MonkeyPatch, profile: str, services: tuple[str, ...], **env: str
) -> Iterator[str]:
    """`up --wait` of a profile as a project of its own (the file's defaults, plus ``env``);
    `down --volumes` after, and then no container of the project is left."""
    build = os.environ.get("CDC_COMPOSE_BUILD") == "1"  # `up --build` (cached layers)
    project = f"cdcspec-smoke-{uuid.uuid4().hex[:8]}"
    for name in [k for k in os.environ if k.startswith(("CDC_", "COMPOSE_"))]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("COMPOSE_PROJECT_NAME", project)  # compose reads it: -p wins over name:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    compose = DockerCompose(
        context=ROOT, compose_file_name=COMPOSE_FILE, profiles=[profile], wait=True, build=build
    )
    try:
        try:
            compose.start()
        except subprocess.CalledProcessError as exc:
            output = (exc.stderr or exc.stdout or b"").decode(errors="replace")[-3000:]
            pytest.fail(f"compose up failed: {output}\n{_logs(compose)}")
        expected = sorted(f"{project}-{service}-1" for service in services)
        assert sorted(_project_containers(project)) == expected
        yield project
    finally:
        compose.stop(down=True)  # down --volumes
    assert _project_containers(project) == [], f"compose down left containers of {project}"


def test_compose_core_runs_a_debezium_scenario_through_the_external_backend(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with _compose_up(monkeypatch, "core", ("postgres", "mariadb", "kafka", "connect")):
        run = _features_on(ENDPOINTS)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    header = (
        f"cdc: backend=external (from command line; endpoints from --cdc-endpoints {ENDPOINTS})"
    )
    assert header in run.stdout, run.stdout[:3000]
    assert re.search(r"\n=+ 1 passed", run.stdout), run.stdout[-2000:]
    assert "was not started by this run: left as it was" in run.stdout


def test_compose_sinks_apply_a_topic_to_delta_and_iceberg_tables_this_host_reads(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    folder = tmp_path / "sinks"  # created by compose, handed to the workers' uid
    topic = f"compose_sinks_{uuid.uuid4().hex[:8]}"
    bootstrap = Endpoints.from_json(ENDPOINTS.read_text()).kafka_bootstrap
    changes = customer_changes(300, seed=11, initial_rows=30)
    services = ("kafka", "sink-data", "sink-delta", "sink-iceberg")
    with _compose_up(
        monkeypatch, "sinks", services, CDC_SINK_DIR=str(folder), CDC_SINK_TOPIC=topic
    ):
        ensure_topic(AdminClient({"bootstrap.servers": bootstrap}), topic)
        produce(bootstrap, topic, changes.records)
        for target in (
            SinkTarget("delta", ("id",), table_uri=str(folder / "delta" / "customers")),
            SinkTarget(
                "iceberg", ("id",), warehouse=str(folder / "iceberg"), table="sink.customers"
            ),
        ):
            wait_until(
                lambda target=target: _rows(target),
                done=lambda rows: compare_tables(changes.rows, rows, normalizers=NORMALIZERS).ok,
                timeout=120,
                interval=0.5,
                expected=f"the {target} to equal the {len(changes.rows)} rows produced",
                describe=lambda rows: f"{len(rows)} rows",
                ignore=(Exception,),  # the table does not exist yet
            )
        assert folder.stat().st_uid == IMAGE_UID
    shutil.rmtree(folder)  # this host removes what the workers wrote


def _rows(target: SinkTarget) -> dict[tuple[Any, ...], dict[str, Any]]:
    sink = target.open()
    try:
        return sink.read_rows()
    finally:
        sink.close()


def _logs(compose: DockerCompose) -> str:
    try:
        out, err = compose.get_logs()
    except Exception as exc:
        return f"(no logs: {exc})"
    return "\n".join((out + err).splitlines()[-60:])
