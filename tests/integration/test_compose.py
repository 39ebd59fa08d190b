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
import requests
from confluent_kafka.admin import AdminClient

from cdc_support.checks.integrity import compare_tables
from cdc_support.endpoints import Endpoints
from cdc_support.observability.dashboard import DASHBOARD, load_dashboard, panel_queries, read_yaml
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


def _config(profiles: tuple[str, ...] = ("core", "sinks")) -> dict[str, Any]:
    """`docker compose config` of the profiles (default: the built ones), defaults interpolated."""
    selected = [arg for profile in profiles for arg in ("--profile", profile)]
    result = subprocess.run(
        ["docker", "compose", "-f", COMPOSE_FILE, *selected, "config", "--format", "json"],
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
        _assert_built_like_its_image(name, service, version)
    assert services["connect"]["depends_on"]["kafka"]["condition"] == "service_healthy"
    assert {"core"} <= set(services["postgres"]["profiles"])
    assert services["sink-iceberg"]["profiles"] == ["sinks"]


def _assert_built_like_its_image(name: str, service: dict[str, Any], version: str) -> None:
    """A cdc-spec service: pinned to the project version, built as images.py builds it."""
    image, _, tag = service["image"].partition(":")
    assert tag == version, f"{name}: {service['image']} is not pinned to {version}"
    assert image.removeprefix("cdc-spec/") in RECIPES, f"{name}: images.py has no {image} recipe"
    recipe = RECIPES[image.removeprefix("cdc-spec/")]
    build = service["build"]
    assert Path(build["context"]) == ROOT / recipe.context, name
    staged = recipe.context == SINK_STAGE  # images.py copies the Dockerfile there
    dockerfile = f"{SINK_STAGE}/Dockerfile" if staged else recipe.dockerfile
    assert Path(build["context"], build.get("dockerfile", "Dockerfile")) == ROOT / dockerfile
    assert build.get("target") == recipe.target, name
    assert build.get("network") == "host", f"{name}: builds need the host network here"


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


# --- profile observability: Grafana, Loki and Promtail are upstream images that cannot be pulled
# here, so their files are validated, not run; Prometheus's configuration by Prometheus 2.42's
# own promtool (Debian's package `prometheus`, as in the cdc-spec/prometheus image).
OBSERVABILITY = ROOT / "docker" / "observability"
OBSERVABILITY_SERVICES = {"collector", "prometheus", "grafana", "loki", "promtail"}
SCRAPED_WITH_CORE = ("kafka", "connect", "collector")
"""The Prometheus jobs whose targets run with `core` (the sink workers come with `sinks`)."""
UPSTREAM = re.compile(r"grafana/(?P<name>grafana|loki|promtail):(?P<major>\d+)\.\d+\.\d+")
"""Upstream images, pinned to a release (major 11 for Grafana, 3 for Loki and Promtail)."""


def _all_profiles() -> dict[str, Any]:
    return _config(("core", "sinks", "observability"))["services"]


def _flag(service: dict[str, Any], flag: str) -> str:
    """The value of ``--flag=value`` (or ``-flag=value``) in a service's command."""
    values = [arg.split("=", 1)[1] for arg in service["command"] if arg.startswith(f"{flag}=")]
    assert len(values) == 1, f"{flag} in {service['command']}"
    return values[0]


def _mounts(service: dict[str, Any]) -> dict[str, Path]:
    """Container path -> host path of a service's bind mounts."""
    return {v["target"]: Path(v["source"]) for v in service.get("volumes", [])}


def _promtool(*args: str) -> subprocess.CompletedProcess[str]:
    promtool = shutil.which("promtool")
    assert promtool, "promtool not found: install Debian's `prometheus` package (make setup)"
    version = subprocess.run([promtool, "--version"], capture_output=True, text=True, timeout=30)
    assert "version 2.42." in version.stdout + version.stderr, version.stdout + version.stderr
    return subprocess.run([promtool, *args], capture_output=True, text=True, timeout=60)


def test_the_observability_profile_is_host_networked_and_pinned() -> None:
    services = _config(("observability",))["services"]  # valid on its own, too
    assert set(services) == OBSERVABILITY_SERVICES
    version = project_version(ROOT)
    for name, service in services.items():
        assert service["profiles"] == ["observability"], name
        assert service.get("network_mode") == "host", name
        assert not service.get("ports") and not service.get("networks"), name
        assert set(service.get("depends_on") or {}) <= OBSERVABILITY_SERVICES, name
        upstream = UPSTREAM.fullmatch(service["image"])
        if service["image"].startswith("cdc-spec/"):
            _assert_built_like_its_image(name, service, version)
        else:
            assert upstream and upstream["name"] == name, f"{name}: {service['image']}"
            assert upstream["major"] == {"grafana": "11"}.get(name, "3"), service["image"]
            assert "build" not in service, f"{name}: upstream images are pulled, not built"
        for host_path in _mounts(service).values():
            if host_path.is_relative_to(ROOT):
                assert host_path.exists(), f"{name} mounts {host_path}, which is not there"


def test_the_observability_services_answer_on_127_0_0_1_and_find_each_other() -> None:
    services = _all_profiles()
    grafana, prometheus = services["grafana"]["environment"], services["prometheus"]
    assert grafana["GF_SERVER_HTTP_ADDR"] == "127.0.0.1"
    listen = _flag(prometheus, "--web.listen-address")
    assert listen.startswith("127.0.0.1:"), listen
    loki = read_yaml(OBSERVABILITY / "loki" / "loki.yaml")
    promtail = read_yaml(OBSERVABILITY / "promtail" / "promtail.yaml")
    for config in (loki, promtail):
        server = config["server"]
        assert (server["http_listen_address"], server["grpc_listen_address"]) == (
            "127.0.0.1",
            "127.0.0.1",
        )
    assert loki["auth_enabled"] == "false" and loki["common"]["instance_addr"] == "127.0.0.1"
    assert {(c["store"], c["schema"]) for c in loki["schema_config"]["configs"]} == {
        ("tsdb", "v13")
    }
    loki_url = f"http://127.0.0.1:{loki['server']['http_listen_port']}"
    assert [c["url"] for c in promtail["clients"]] == [f"{loki_url}/loki/api/v1/push"]
    assert _flag(services["loki"], "-config.file") in _mounts(services["loki"])
    assert _flag(services["promtail"], "-config.file") in _mounts(services["promtail"])
    assert "/var/log/cdc-spec" in _mounts(services["promtail"])
    assert promtail["scrape_configs"][0]["static_configs"][0]["labels"]["__path__"] == (
        "/var/log/cdc-spec/*.log"
    )
    provisioning = OBSERVABILITY / "grafana" / "provisioning"
    datasources = read_yaml(provisioning / "datasources" / "datasources.yaml")["datasources"]
    assert {d["type"]: d["url"] for d in datasources} == {
        "prometheus": f"http://{listen}",
        "loki": loki_url,
    }
    assert {d["uid"] for d in datasources} == {"cdc-prometheus", "cdc-loki"}
    mounts = _mounts(services["grafana"])
    assert mounts["/etc/grafana/provisioning"] == provisioning
    (provider,) = read_yaml(provisioning / "dashboards" / "dashboards.yaml")["providers"]
    assert mounts[provider["options"]["path"]] == DASHBOARD.parent
    home = Path(grafana["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"])
    assert home.parent.as_posix() == provider["options"]["path"]
    assert (DASHBOARD.parent / home.name).is_file()


def test_prometheus_yml_is_valid_for_prometheus_2_42_and_scrapes_the_compose_defaults() -> None:
    services = _all_profiles()
    config_file = _flag(services["prometheus"], "--config.file")
    host_file = _mounts(services["prometheus"])[config_file]
    check = _promtool("check", "config", str(host_file))
    assert check.returncode == 0, check.stdout + check.stderr
    config = read_yaml(host_file)
    assert config["global"]["scrape_interval"] == "1s"
    targets = {
        job["job_name"]: sorted(t for s in job["static_configs"] for t in s["targets"])
        for job in config["scrape_configs"]
    }
    sinks = [_flag(services[s], "--metrics-port") for s in ("sink-delta", "sink-iceberg")]
    assert targets == {
        "kafka": [f"127.0.0.1:{services['kafka']['environment']['METRICS_PORT']}"],
        "connect": [f"127.0.0.1:{services['connect']['environment']['METRICS_PORT']}"],
        "collector": [f"127.0.0.1:{_flag(services['collector'], '--port')}"],
        "sink": sorted(f"127.0.0.1:{port}" for port in sinks),
    }


def test_the_endpoints_file_names_the_observability_defaults() -> None:
    services = _all_profiles()
    ep = Endpoints.from_json(ENDPOINTS.read_text(), source=str(ENDPOINTS))
    assert ep.prometheus_url == f"http://{_flag(services['prometheus'], '--web.listen-address')}"
    for field, service in (("kafka_metrics_url", "kafka"), ("connect_metrics_url", "connect")):
        port = services[service]["environment"]["METRICS_PORT"]
        assert getattr(ep, field) == f"http://127.0.0.1:{port}/metrics", field
    collector = services["collector"]
    assert _flag(collector, "--host") == "127.0.0.1"
    port = _flag(collector, "--port")
    assert ep.collector_url == f"http://127.0.0.1:{port}/metrics"


def test_every_dashboard_promql_query_parses_in_prometheus_2_42(tmp_path: Path) -> None:
    queries = [q for q in panel_queries(load_dashboard()) if q.datasource == "prometheus"]
    rules = {
        "groups": [
            {
                "name": "cdc-pipeline-dashboard",
                "rules": [
                    {"record": f"dashboard:query_{i}", "expr": q.query}
                    for i, q in enumerate(queries)
                ],
            }
        ]
    }
    rules_file = tmp_path / "dashboard-rules.yml"
    rules_file.write_text(json.dumps(rules))  # JSON is YAML
    check = _promtool("check", "rules", str(rules_file))
    assert check.returncode == 0, check.stdout + check.stderr
    assert f"SUCCESS: {len(queries)} rules found" in check.stdout, check.stdout


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
    monkeypatch: pytest.MonkeyPatch,
    profiles: tuple[str, ...],
    services: tuple[str, ...],
    **env: str,
) -> Iterator[str]:
    """`up --wait` of ``services`` of the profiles as a project of its own (the file's defaults,
    plus ``env``); `down --volumes` after, and then no container of the project is left."""
    build = os.environ.get("CDC_COMPOSE_BUILD") == "1"  # `up --build` (cached layers)
    project = f"cdcspec-smoke-{uuid.uuid4().hex[:8]}"
    for name in [k for k in os.environ if k.startswith(("CDC_", "COMPOSE_"))]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("COMPOSE_PROJECT_NAME", project)  # compose reads it: -p wins over name:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    compose = DockerCompose(
        context=ROOT,
        compose_file_name=COMPOSE_FILE,
        profiles=list(profiles),
        services=list(services),
        wait=True,
        build=build,
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
    # the endpoints file names Prometheus and the collector too: the buildable part of the
    # observability profile comes up with the core (Grafana, Loki, Promtail cannot be pulled)
    services = ("postgres", "mariadb", "kafka", "connect", "collector", "prometheus")
    with _compose_up(monkeypatch, ("core", "observability"), services):
        run = _features_on(ENDPOINTS)
        prometheus = Endpoints.from_json(ENDPOINTS.read_text()).prometheus_url
        wait_until(
            lambda: _target_health(prometheus),
            done=lambda health: all(health.get(job) == "up" for job in SCRAPED_WITH_CORE),
            timeout=60,
            interval=1,
            expected=f"Prometheus to scrape {', '.join(SCRAPED_WITH_CORE)}",
            describe=str,
        )
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
        monkeypatch, ("sinks",), services, CDC_SINK_DIR=str(folder), CDC_SINK_TOPIC=topic
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


def test_compose_prometheus_runs_the_provisioned_configuration(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    config = read_yaml(OBSERVABILITY / "prometheus" / "prometheus.yml")
    expected = {
        (job["job_name"], f"http://{target}/metrics")
        for job in config["scrape_configs"]
        for static in job["static_configs"]
        for target in static["targets"]
    }
    url = Endpoints.from_json(ENDPOINTS.read_text()).prometheus_url
    with _compose_up(monkeypatch, ("observability",), ("prometheus",)):  # healthy: ready
        wait_until(  # its scrape manager takes the targets a few seconds after start
            lambda: _scrape_urls(url),
            done=lambda seen: seen == expected,
            timeout=30,
            interval=0.5,
            expected=f"the targets of prometheus.yml: {sorted(expected)}",
            describe=lambda seen: str(sorted(seen)),
        )
        flags = requests.get(f"{url}/api/v1/status/flags", timeout=10).json()["data"]
    assert flags["web.listen-address"].startswith("127.0.0.1:")


def _scrape_urls(prometheus_url: str) -> set[tuple[str, str]]:
    """(job, scrape URL) of every active target of a Prometheus."""
    response = requests.get(f"{prometheus_url}/api/v1/targets", timeout=5)
    return {(t["labels"]["job"], t["scrapeUrl"]) for t in response.json()["data"]["activeTargets"]}


def _target_health(prometheus_url: str) -> dict[str, str]:
    """job -> "up" when every target of the job is up, else the health of one that is not."""
    response = requests.get(f"{prometheus_url}/api/v1/targets", timeout=5)
    health: dict[str, str] = {}
    for target in response.json()["data"]["activeTargets"]:
        job = target["labels"]["job"]
        if health.get(job, "up") == "up":
            health[job] = target["health"]
    return health


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
