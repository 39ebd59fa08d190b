"""The docker images: tags follow their inputs, refs, the one-line `make setup` messages, and
the images' entrypoints render the same settings as the native backend.

A tmp folder stands in for the checkout; the engine (which refs exist) and the host's apt are
faked. The images themselves are built and started in tests/integration/test_docker_images_run.py.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from types import SimpleNamespace

import pytest

from pytest_cdc.errors import CdcSetupError, ImagesMissing
from pytest_cdc.stack.docker import image_inputs, images
from pytest_cdc.stack.docker.engine import EngineUnavailable
from pytest_cdc.stack.docker.image_inputs import IMAGE_NAMES, component_versions
from pytest_cdc.stack.docker.image_inputs import image_inputs as inputs_of
from pytest_cdc.stack.native import kafka, mariadb, postgres

CHECKOUT = Path(__file__).resolve().parents[2]
DEBIAN = {
    "postgresql-15": "15.20-0+deb12u1",
    "postgresql-15-wal2json": "2.5-1+b1",
    "mariadb-server": "1:10.11.19-0+deb12u1",
    "openjdk-17-jre-headless": "17.0.21.1+2-1~deb12u1",
    "python3": "3.11.2-1+b1",
    "python3-venv": "3.11.2-1+b1",
    "prometheus": "2.42.0+ds-5+deb12u1",
}
PG_PLUGIN = "runtime/dist/plugins/debezium-connector-postgres"
AGENT_JAR = "runtime/dist/agents/jmx_prometheus_javaagent-1.0.1.jar"
KAFKA_RULES = image_inputs.JMX_RULES.format("kafka")
CONNECT_RULES = image_inputs.JMX_RULES.format("connect")
FILES = {
    AGENT_JAR: b"agent",
    "runtime/dist/broker/kafka_2.13-4.3.1.jar": b"broker",
    "runtime/dist/connect/connect-runtime-4.3.1.jar": b"connect",
    f"{PG_PLUGIN}/debezium-connector-postgres-3.6.1.Final.jar": b"pg",
    "cdc_support/__init__.py": b"",
    "pytest_cdc/sink.py": b"x = 1\n",
}


@pytest.fixture
def debian(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The host's apt candidates (a dict the test may change) and the sink's dependency pins."""
    versions = dict(DEBIAN)
    monkeypatch.setattr(
        image_inputs, "debian_versions", lambda pkgs: {p: versions[p] for p in pkgs}
    )
    monkeypatch.setattr(image_inputs, "dependency_pins", lambda: {"pyarrow": "17.0.0"})
    return versions


@pytest.fixture
def checkout(tmp_path: Path, debian: dict[str, str]) -> Path:
    """A checkout: the real docker/ files, fake jars and package sources."""
    root = tmp_path / "checkout"
    shutil.copytree(CHECKOUT / "docker", root / "docker")
    for rel in (".dockerignore", "pyproject.toml", image_inputs.LOG4J, KAFKA_RULES, CONNECT_RULES):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(CHECKOUT / rel, root / rel)
    for rel, data in FILES.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    return root


def _digests(root: Path) -> dict[str, str]:
    return {name: inputs_of(name, root).digest for name in IMAGE_NAMES}


def test_the_hash_is_stable_when_nothing_changes(checkout: Path) -> None:
    before = _digests(checkout)
    for path in checkout.rglob("*"):
        os.utime(path, (1, 1))  # timestamps are not inputs
    assert _digests(checkout) == before
    assert all(re.fullmatch(r"[0-9a-f]{12}", digest) for digest in before.values())
    assert len(set(before.values())) == len(IMAGE_NAMES)


def _append(rel: str):
    return lambda root, _: (root / rel).open("a").write("# changed\n")


CHANGES = {
    "postgres entrypoint": (_append("docker/postgres/entrypoint.sh"), {"postgres"}),
    "postgres Dockerfile": (_append("docker/postgres/Dockerfile"), {"postgres"}),
    "postgres pinned version": (
        lambda _, debian: debian.update({"postgresql-15": "15.21-0+deb12u1"}),
        {"postgres"},
    ),
    "mariadb entrypoint": (_append("docker/mariadb/entrypoint.sh"), {"mariadb"}),
    "shared apt-install": (_append("docker/apt-install.sh"), set(IMAGE_NAMES)),
    "java Dockerfile": (_append("docker/java/Dockerfile"), {"kafka", "connect"}),
    "java version": (
        lambda _, debian: debian.update({"openjdk-17-jre-headless": "17.0.22+7-1~deb12u1"}),
        {"kafka", "connect"},
    ),
    "kafka entrypoint": (_append("docker/java/kafka.sh"), {"kafka"}),
    "kafka JMX rules": (_append(KAFKA_RULES), {"kafka", "sink"}),
    "connect JMX rules": (_append(CONNECT_RULES), {"connect", "sink"}),
    "JMX agent jar": (_append(AGENT_JAR), {"kafka", "connect"}),
    "prometheus Dockerfile": (_append("docker/prometheus/Dockerfile"), {"prometheus"}),
    "prometheus version": (
        lambda _, debian: debian.update({"prometheus": "2.42.0+ds-5+deb12u2"}),
        {"prometheus"},
    ),
    "connect entrypoint": (_append("docker/java/connect.sh"), {"connect"}),
    "broker jar size": (_append("runtime/dist/broker/kafka_2.13-4.3.1.jar"), {"kafka"}),
    "new plugin jar": (
        lambda root, _: (root / PG_PLUGIN / "x.jar").touch(),
        {"connect"},
    ),
    # it lives in pytest_cdc/, which the sink's wheel packages
    "log4j config": (_append(image_inputs.LOG4J), {"kafka", "connect", "sink"}),
    "package source": (_append("pytest_cdc/sink.py"), {"sink"}),
    "sink Dockerfile": (_append("docker/sink/Dockerfile"), {"sink"}),
    "python version": (lambda _, debian: debian.update({"python3": "3.11.4-1"}), {"sink"}),
}


@pytest.mark.parametrize("change", CHANGES, ids=list(CHANGES))
def test_the_hash_changes_with_an_input_of_that_image_only(
    checkout: Path, debian: dict[str, str], change: str
) -> None:
    before = _digests(checkout)
    mutate, affected = CHANGES[change]
    mutate(checkout, debian)
    after = _digests(checkout)
    assert {name for name in IMAGE_NAMES if after[name] != before[name]} == affected


def test_a_dependency_version_changes_the_sink_hash(
    checkout: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = _digests(checkout)
    monkeypatch.setattr(image_inputs, "dependency_pins", lambda: {"pyarrow": "18.0.0"})
    after = _digests(checkout)
    assert {name for name in IMAGE_NAMES if after[name] != before[name]} == {"sink"}


def test_build_args_pin_the_hosts_versions_and_labels_name_components(checkout: Path) -> None:
    pg = inputs_of("postgres", checkout)
    assert pg.build_args == {"PG_VERSION": "15.20-0+deb12u1", "WAL2JSON_VERSION": "2.5-1+b1"}
    assert component_versions("postgres", checkout) == {"postgres": "15.20"}
    assert component_versions("mariadb", checkout) == {"mariadb": "10.11.19"}
    assert component_versions("kafka", checkout) == {"kafka": "4.3.1", "jmx_exporter": "1.0.1"}
    assert component_versions("sink", checkout) == {"cdc-spec": "0.1.0"}
    assert component_versions("prometheus", checkout) == {"prometheus": "2.42.0+ds"}
    assert component_versions("connect", checkout) == {
        "connect": "4.3.1",
        "debezium": "postgres 3.6.1.Final",
        "jmx_exporter": "1.0.1",
    }


def test_apt_policy_output_gives_candidates() -> None:
    text = (
        "postgresql-15:\n  Installed: 15.18-0+deb12u1\n  Candidate: 15.20-0+deb12u1\n"
        "  Version table:\n     15.20-0+deb12u1 500\nnot-known:\n  Installed: (none)\n"
        "  Candidate: (none)\n"
    )
    assert image_inputs._parse_policy(text) == {"postgresql-15": "15.20-0+deb12u1"}


def test_dependency_pins_follow_extras_and_leave_out_dev_tools() -> None:
    pins = image_inputs.dependency_pins.__wrapped__()
    assert {"pytest", "confluent-kafka", "psycopg-binary", "deltalake"} <= set(pins)
    assert "ruff" not in pins and "cdc-spec" not in pins


def test_missing_inputs_name_make_setup(checkout: Path) -> None:
    shutil.rmtree(checkout / "runtime/dist/broker")
    with pytest.raises(ImagesMissing, match=r"runtime/dist/broker not found.*`make setup`"):
        inputs_of("kafka", checkout)


@pytest.fixture
def engine(monkeypatch: pytest.MonkeyPatch) -> dict[str, object]:
    """The engine as the module sees it: the refs it holds, the CLI calls made, builds run."""
    state: dict[str, object] = {"refs": set(), "docker": [], "built": []}
    monkeypatch.setattr(images, "_present_refs", lambda: state["refs"])
    monkeypatch.setattr(images, "_docker", lambda *args, **_: state["docker"].append(args) or "")
    monkeypatch.setattr(images, "_build", lambda name, *_: state["built"].append(name))
    return state


def test_image_ref_in_a_checkout_is_version_and_hash(checkout: Path, engine: dict) -> None:
    ref = f"cdc-spec/postgres:0.1.0-{inputs_of('postgres', checkout).digest}"
    engine["refs"] = {ref}
    assert images.image_ref("postgres", root=checkout) == ref


def test_image_ref_outside_a_checkout_is_the_version_tag(tmp_path: Path, engine: dict) -> None:
    engine["refs"] = {"cdc-spec/kafka:0.1.0"}
    assert images.image_ref("kafka", root=tmp_path) == "cdc-spec/kafka:0.1.0"


def test_a_missing_image_is_one_line_naming_make_setup(checkout: Path, engine: dict) -> None:
    with pytest.raises(ImagesMissing) as raised:
        images.image_ref("mariadb", root=checkout)
    message = str(raised.value)
    assert "\n" not in message and "cdc-spec/mariadb:0.1.0-" in message
    assert message.endswith("run `make setup`")
    assert isinstance(raised.value, CdcSetupError)


def test_missing_images_lists_the_absent_ones(checkout: Path, engine: dict) -> None:
    engine["refs"] = {f"cdc-spec/{n}:0.1.0-{inputs_of(n, checkout).digest}" for n in ("kafka",)}
    expected = ["postgres", "mariadb", "connect", "sink", "prometheus"]
    assert images.missing_images(root=checkout) == expected


def test_build_skips_what_is_up_to_date(checkout: Path, engine: dict) -> None:
    ref = f"cdc-spec/postgres:0.1.0-{inputs_of('postgres', checkout).digest}"
    engine["refs"] = {ref}
    lines: list[str] = []
    seconds = images.build_images(["postgres", "kafka"], progress=lines.append, root=checkout)
    assert engine["built"] == ["kafka"]
    assert seconds["postgres"] == 0.0
    assert lines[0] == f"postgres: up to date ({ref})"
    assert re.fullmatch(
        r"kafka: built in \d+\.\ds \(cdc-spec/kafka:0\.1\.0-[0-9a-f]{12}\)", lines[1]
    )
    assert engine["docker"] == [("tag", ref, "cdc-spec/postgres:0.1.0")]


def test_check_prints_one_line_per_missing_image(
    checkout: Path, engine: dict, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    monkeypatch.setattr(images, "CHECKOUT", checkout)
    engine["refs"] = {f"cdc-spec/sink:0.1.0-{inputs_of('sink', checkout).digest}"}
    assert images.main(["check", "postgres", "sink"]) == 1
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 2 and out[0].startswith("postgres: image cdc-spec/postgres:0.1.0-")
    assert out[0].endswith("run `make setup`") and out[1].startswith("sink: ok (")


def test_no_engine_is_one_line_naming_make_setup(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    def no_engine(for_what: str = "") -> None:
        raise EngineUnavailable(f"{for_what} needs a Docker engine: run `make setup`")

    monkeypatch.setattr(images, "require_engine", no_engine)
    assert images.main(["check"]) == 1
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "`make setup`" in err


def test_a_failed_build_names_the_cause_the_log_and_make_setup(tmp_path: Path) -> None:
    log = tmp_path / "postgres.log"
    log.write_text("Step 5/12 : RUN ...\nE: Version '15.99' for 'postgresql-15' was not found\nx\n")
    message = images._build_failure("postgres", log, 1)
    assert "\n" not in message and "E: Version '15.99'" in message
    assert "apt-get update" in message and str(log) in message and "`make setup`" in message


# --- the entrypoints render the native backend's settings ------------------------------------


def _print(script: str, *args: str, **env: str) -> str:
    return subprocess.run(
        ["bash", str(CHECKOUT / "docker" / script), *args],
        env={"PATH": os.environ["PATH"], **env},
        capture_output=True,
        text=True,
        check=True,
    ).stdout


def _properties(text: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in text.splitlines() if "=" in line)


FAKE_RUNTIME = SimpleNamespace(
    java=Path("java"), broker_classpath="b/*", connect_classpath="c/*", plugin_path=Path("/p")
)


def test_kafka_properties_match_native(tmp_path: Path) -> None:
    (tmp_path / "kafka-data").mkdir()  # no storage format
    kafka.kafka_service(FAKE_RUNTIME, tmp_path, 19092, 19093, timeout=1)
    native = _properties((tmp_path / "server.properties").read_text())
    image = _properties(
        _print("java/kafka.sh", "--print-config", KAFKA_PORT="19092", KAFKA_CONTROLLER_PORT="19093")
    )
    assert image.pop("log.dirs") == "/var/lib/kafka/data"
    native.pop("log.dirs")
    assert image == native


def test_connect_properties_match_native(tmp_path: Path) -> None:
    kafka.connect_service(FAKE_RUNTIME, tmp_path, 18083, "127.0.0.1:19092", timeout=1)
    native = _properties((tmp_path / "connect.properties").read_text())
    image = _properties(
        _print(
            "java/connect.sh",
            "--print-config",
            CONNECT_PORT="18083",
            KAFKA_BOOTSTRAP="127.0.0.1:19092",
        )
    )
    assert image.pop("plugin.path") == "/opt/connect/plugins"
    native.pop("plugin.path")
    assert image == native


def test_connect_topic_prefix_and_group_come_from_the_environment() -> None:
    image = _properties(
        _print(
            "java/connect.sh", "--print-config", CONNECT_GROUP_ID="g2", CONNECT_TOPIC_PREFIX="_s2"
        )
    )
    assert image["group.id"] == "g2" and image["status.storage.topic"] == "_s2_status"
    assert image["listeners"] == "http://127.0.0.1:8083"


def test_postgres_settings_and_hba_match_native(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(postgres, "run_as_postgres_kwargs", lambda: {})
    (tmp_path / "pgdata").mkdir()  # no initdb
    service = postgres.postgres_service(Path("/bin"), tmp_path, 15432, password="p", timeout=1)
    command = service.command
    native = dict(command[i + 1].split("=", 1) for i, a in enumerate(command) if a == "-c")
    image = _properties(_print("postgres/entrypoint.sh", "--print-config", PGPORT="15432"))
    assert image.pop("unix_socket_directories") == "/var/run/postgresql"
    native.pop("unix_socket_directories")
    assert image == native
    assert _print("postgres/entrypoint.sh", "--print-hba") == postgres.PG_HBA


MARIADB_PATH_FLAGS = ("--datadir", "--socket", "--pid-file", "--log-bin", "--init-file")


def test_mariadb_flags_and_accounts_match_native(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bindir = tmp_path / "bin"
    bindir.mkdir()
    for binary in ("mariadbd", "mariadb-install-db"):
        (bindir / binary).touch()
    monkeypatch.setenv("CDC_MARIADB_BINDIR", str(bindir))
    monkeypatch.setattr(mariadb, "_as_mysql_user", lambda: False)
    (tmp_path / "mariadb" / "data").mkdir(parents=True)  # no install-db
    service = mariadb.mariadb_service(
        tmp_path, 13306, root_password="r", cdc_password="c", timeout=1
    )
    image = _print("mariadb/entrypoint.sh", "--print-config", MARIADB_PORT="13306").split()

    def without_paths(flags: list[str]) -> list[str]:
        return sorted(f for f in flags if not f.startswith(MARIADB_PATH_FLAGS))

    assert without_paths(image) == without_paths(service.command[1:])
    accounts = _print(
        "mariadb/entrypoint.sh",
        "--print-accounts",
        MARIADB_ROOT_PASSWORD="r",
        MARIADB_CDC_PASSWORD="c",
    )
    assert accounts == mariadb.accounts_sql("r", "c")
