"""Finds what the native backend runs: Java, the Maven-resolved jars, PostgreSQL binaries."""

from __future__ import annotations

import os
import pwd
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from pytest_cdc.errors import RuntimeMissing, TempDirUnusable
from pytest_cdc.options import default_runtime_dir

SETUP_HINT = "run `make setup` in the cdc-spec checkout"
JMX_AGENT = "jmx_prometheus_javaagent"
"""The artifact runtime/agents/pom.xml copies into dist/agents/."""
RUNTIME_DIR_HINT = (
    "--cdc-runtime-dir=CHECKOUT/runtime/dist (or env CDC_RUNTIME_DIR, or ini cdc_runtime_dir)"
)
DB_USERS_NEED = (
    ("postgres", ("-x",), False, "enter it (PostgreSQL's data dir is inside)"),
    ("mysql", ("-x", "-w"), True, "write to it (MariaDB puts its temporary files there)"),
)
"""What the users the servers run as (when we are root) need of the temp dir: `test` flags,
whether the user's supplementary groups apply (mariadbd keeps them; PostgreSQL is started
without), and what fails otherwise."""


@dataclass(frozen=True)
class NativeRuntime:
    """Paths to every binary and jar folder the native stack needs."""

    java: Path
    broker_classpath: str
    connect_classpath: str
    plugin_path: Path
    pg_bindir: Path
    runtime_dir: Path
    jmx_agent: Path
    """The Prometheus JMX exporter javaagent jar (dist/agents/)."""

    def versions(self) -> dict[str, str]:
        """Versions read from jar names and binaries, for the report header."""
        return {
            "kafka": _jar_version(self.runtime_dir / "broker", "kafka_2.13") or "?",
            "connect": _jar_version(self.runtime_dir / "connect", "connect-runtime") or "?",
            "debezium": _debezium_versions(self.plugin_path),
            "postgres": _pg_version(self.pg_bindir),
            "jmx_exporter": _jar_version(self.jmx_agent.parent, JMX_AGENT) or "?",
        }


def locate_runtime(runtime_dir: Path) -> NativeRuntime:
    """Check that everything is installed; raise RuntimeMissing naming the setup step if not."""
    java = _find_java()
    if not runtime_dir.exists() and not in_checkout(runtime_dir):
        raise RuntimeMissing(
            f"no runtime dir: pytest_cdc is installed in {Path(__file__).parents[3]}, not in a "
            f"cdc-spec checkout, so {runtime_dir} does not exist: run `make setup` in a cdc-spec "
            f"checkout and pass {RUNTIME_DIR_HINT}."
        )
    broker = runtime_dir / "broker"
    connect = runtime_dir / "connect"
    plugins = runtime_dir / "plugins"
    for folder, jar, what in (
        (broker, "kafka_2.13", "Kafka broker"),
        (connect, "connect-runtime", "Kafka Connect"),
    ):
        if _jar_version(folder, jar) is None:
            raise RuntimeMissing(
                f"{what} jars not found in {folder}: {SETUP_HINT} "
                "(it runs `mvn -f runtime/pom.xml package`), or point --cdc-runtime-dir / "
                "CDC_RUNTIME_DIR at a folder holding broker/, connect/, plugins/ and agents/."
            )
    if not (plugins / "debezium-connector-postgres").is_dir():
        raise RuntimeMissing(f"Debezium PostgreSQL connector not found in {plugins}: {SETUP_HINT}.")
    return NativeRuntime(
        java=java,
        broker_classpath=f"{broker}/*",
        connect_classpath=f"{connect}/*",
        plugin_path=plugins,
        pg_bindir=find_pg_bindir(),
        runtime_dir=runtime_dir,
        jmx_agent=find_jmx_agent(runtime_dir),
    )


def find_jmx_agent(runtime_dir: Path) -> Path:
    """The JMX exporter javaagent jar in ``runtime_dir``/agents; RuntimeMissing if absent."""
    agents = runtime_dir / "agents"
    version = _jar_version(agents, JMX_AGENT)
    if version is None:
        raise RuntimeMissing(
            f"Prometheus JMX exporter agent ({JMX_AGENT}-*.jar) not found in {agents}: "
            f"{SETUP_HINT} (it runs `mvn -f runtime/pom.xml package`)."
        )
    return agents / f"{JMX_AGENT}-{version}.jar"


def in_checkout(runtime_dir: Path) -> bool:
    """False for the default runtime dir of a wheel install (site-packages has no runtime/)."""
    if runtime_dir != default_runtime_dir():
        return True
    return (runtime_dir.parent.parent / "pyproject.toml").exists()


def check_temp_dir(base: Path | None = None) -> None:
    """Raise TempDirUnusable when the database users cannot use the temp dir the stack goes in.

    As root the servers run as `postgres` and `mysql`: PostgreSQL must enter the temp dir,
    MariaDB must also write to it (TMPDIR is its tmpdir). Checked before anything starts.
    """
    if os.geteuid() != 0:
        return  # the servers run as us, and we can write where mkdtemp writes
    temp = Path(base) if base is not None else Path(tempfile.gettempdir())
    problems = [
        f"`{user}` cannot {why}"
        for user, flags, with_groups, why in DB_USERS_NEED
        if not _user_passes(user, flags, temp, with_groups=with_groups)
    ]
    if problems:
        name = "temp dir" if base is not None else "TMPDIR"
        raise TempDirUnusable(
            f"{name} {temp} is not usable by the database servers: {'; '.join(problems)}: "
            f"make it like /tmp (`chmod 1777 {temp}`) or point TMPDIR at such a folder "
            "(unset TMPDIR to use /tmp)."
        )


def _user_passes(user: str, flags: tuple[str, ...], path: Path, *, with_groups: bool) -> bool:
    """`test -x PATH -a -w PATH` as `user`; True when there is no such user (its server
    start names the fix)."""
    try:
        entry = pwd.getpwnam(user)
    except KeyError:
        return True
    groups = os.getgrouplist(user, entry.pw_gid) if with_groups else []
    args: list[str] = []
    for flag in flags:
        args += [*(["-a"] if args else []), flag, str(path)]
    result = subprocess.run(
        ["test", *args],
        user=entry.pw_uid,
        group=entry.pw_gid,
        extra_groups=groups,
        capture_output=True,
    )
    return result.returncode == 0


def _find_java() -> Path:
    java_home = os.environ.get("JAVA_HOME")
    candidate = Path(java_home) / "bin" / "java" if java_home else None
    if candidate and candidate.exists():
        return candidate
    found = shutil.which("java")
    if not found:
        raise RuntimeMissing(f"no `java` on PATH (Java 17+ is needed for Kafka 4): {SETUP_HINT}.")
    return Path(found)


def find_pg_bindir() -> Path:
    """The newest PostgreSQL server bin folder (env CDC_PG_BINDIR wins)."""
    override = os.environ.get("CDC_PG_BINDIR")
    candidates = [Path(override)] if override else []
    candidates += sorted(
        Path("/usr/lib/postgresql").glob("*/bin"),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
        reverse=True,
    )
    on_path = shutil.which("postgres")
    if on_path:
        candidates.append(Path(on_path).resolve().parent)
    for bindir in candidates:
        if (bindir / "postgres").exists() and (bindir / "initdb").exists():
            return bindir
    raise RuntimeMissing(
        "PostgreSQL server binaries (postgres, initdb) not found: "
        f"{SETUP_HINT} (installs the Debian package postgresql), or set CDC_PG_BINDIR."
    )


def _jar_version(folder: Path, artifact: str) -> str | None:
    pattern = re.compile(rf"^{re.escape(artifact)}-(\d[\w.\-]*)\.jar$")
    if not folder.is_dir():
        return None
    for jar in folder.iterdir():
        match = pattern.match(jar.name)
        if match:
            return match.group(1)
    return None


def _debezium_versions(plugins: Path) -> str:
    found = []
    for plugin in sorted(plugins.glob("debezium-connector-*")):
        version = _jar_version(plugin, plugin.name)
        if version:
            found.append(f"{plugin.name.removeprefix('debezium-connector-')} {version}")
    return ", ".join(found) or "?"


def _pg_version(bindir: Path) -> str:
    try:
        out = subprocess.run(
            [str(bindir / "postgres"), "--version"], capture_output=True, text=True, check=True
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return "?"
    match = re.search(r"\(PostgreSQL\) (\S+)", out)
    return match.group(1) if match else out.strip()
