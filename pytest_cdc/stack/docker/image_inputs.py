"""What goes into each docker image of the stack, and the content hash that tags it.

An image's inputs are its Dockerfile and the files it copies (entrypoints, docker/apt-install.sh,
the log4j2 configuration), the Debian package versions it pins (what the host's apt would
install: ``apt-cache policy``, else ``dpkg-query``), the jars it copies from runtime/dist (file
names and sizes) and, for the sink, the project's package sources and the versions of its
dependencies installed here (the wheels built from them are a function of those). Any change
gives a new 12-hex hash, hence a new tag; nothing else (timestamps, paths) does.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import subprocess
import tomllib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from pytest_cdc.errors import ImagesMissing

CHECKOUT = Path(__file__).resolve().parents[3]
PROJECT = "cdc-spec"
IMAGE_NAMES: tuple[str, ...] = ("postgres", "mariadb", "kafka", "connect", "sink", "prometheus")
SINK_STAGE = "build/docker/sink"
"""The sink's build context: its Dockerfile, apt-install.sh and wheels/, staged by images.py."""
PACKAGE_DIRS = ("cdc_support", "pytest_cdc")
PACKAGE_ROOT_FILES = ("pyproject.toml", "README.md")
LOG4J = "pytest_cdc/stack/native/log4j2.properties"
JMX_RULES = "pytest_cdc/stack/jmx/{}.yaml"
"""The JMX exporter rules of the kafka and connect images (format with the image name)."""
JMX_AGENTS = "runtime/dist/agents"
APT_INSTALL = "docker/apt-install.sh"
JAVA = (("JAVA_VERSION", "openjdk-17-jre-headless"),)


@dataclass(frozen=True)
class Recipe:
    """How one image is built; paths are relative to the checkout."""

    dockerfile: str
    context: str
    target: str | None = None
    files: tuple[str, ...] = ()
    """Copied into the image: hashed by content (the Dockerfile always is)."""
    listings: tuple[str, ...] = ()
    """Jar folders copied into the image: hashed by file names and sizes."""
    packages: tuple[tuple[str, str], ...] = ()
    """(build arg, Debian package): the arg pins the package to the host's apt version."""


RECIPES: dict[str, Recipe] = {
    "postgres": Recipe(
        "docker/postgres/Dockerfile",
        "docker",
        files=(APT_INSTALL, "docker/postgres/entrypoint.sh"),
        packages=(("PG_VERSION", "postgresql-15"), ("WAL2JSON_VERSION", "postgresql-15-wal2json")),
    ),
    "mariadb": Recipe(
        "docker/mariadb/Dockerfile",
        "docker",
        files=(APT_INSTALL, "docker/mariadb/entrypoint.sh"),
        packages=(("MARIADB_VERSION", "mariadb-server"),),
    ),
    "kafka": Recipe(
        "docker/java/Dockerfile",
        ".",
        target="kafka",
        files=(
            APT_INSTALL,
            "docker/java/kafka.sh",
            LOG4J,
            JMX_RULES.format("kafka"),
            ".dockerignore",
        ),
        listings=("runtime/dist/broker", JMX_AGENTS),
        packages=JAVA,
    ),
    "connect": Recipe(
        "docker/java/Dockerfile",
        ".",
        target="connect",
        files=(
            APT_INSTALL,
            "docker/java/connect.sh",
            LOG4J,
            JMX_RULES.format("connect"),
            ".dockerignore",
        ),
        listings=("runtime/dist/connect", "runtime/dist/plugins", JMX_AGENTS),
        packages=JAVA,
    ),
    "prometheus": Recipe(
        "docker/prometheus/Dockerfile",
        "docker",
        files=(APT_INSTALL,),
        packages=(("PROMETHEUS_VERSION", "prometheus"),),
    ),
    "sink": Recipe(
        "docker/sink/Dockerfile",
        SINK_STAGE,
        files=(APT_INSTALL,),
        packages=(("PYTHON_VERSION", "python3"), ("PYTHON_VENV_VERSION", "python3-venv")),
    ),
}


@dataclass(frozen=True)
class ImageInputs:
    """One image's inputs as the build sees them."""

    name: str
    digest: str
    """12 hex characters of the sha256 over every input."""
    build_args: dict[str, str]


def in_checkout(name: str, root: Path = CHECKOUT) -> bool:
    """True when ``root`` holds the image's Dockerfile (a cdc-spec checkout)."""
    return (root / RECIPES[name].dockerfile).is_file()


def project_version(root: Path = CHECKOUT) -> str:
    """The version in the checkout's pyproject.toml, else the installed distribution's."""
    pyproject = root / "pyproject.toml"
    if pyproject.is_file():
        return tomllib.loads(pyproject.read_text())["project"]["version"]
    return importlib.metadata.version(PROJECT)


def image_inputs(name: str, root: Path = CHECKOUT) -> ImageInputs:
    """Hash the inputs of image ``name``; ImagesMissing when one is not there yet."""
    recipe = RECIPES[name]
    absent = [
        rel
        for rel in (recipe.dockerfile, *recipe.files, *recipe.listings)
        if not (root / rel).exists()
    ]
    if absent:
        raise ImagesMissing(
            f"cannot build cdc-spec/{name}: {', '.join(absent)} not found in {root}: "
            "run `make setup` in a cdc-spec checkout"
        )
    versions = debian_versions(tuple(pkg for _, pkg in recipe.packages))
    build_args = {arg: versions.get(pkg, "") for arg, pkg in recipe.packages}
    digest = hashlib.sha256()
    for parts in _hashed_lines(name, recipe, build_args, root):
        digest.update(("\0".join(parts) + "\n").encode())
    return ImageInputs(
        name=name,
        digest=digest.hexdigest()[:12],
        build_args=build_args,
    )


def _hashed_lines(
    name: str, recipe: Recipe, build_args: dict[str, str], root: Path
) -> Iterator[tuple[str, ...]]:
    yield ("image", name, recipe.target or "")
    for rel in (recipe.dockerfile, *recipe.files):
        yield ("file", rel, _file_sha256(root / rel))
    for rel in recipe.listings:
        for path in sorted(p for p in (root / rel).rglob("*") if p.is_file()):
            yield ("listed", path.relative_to(root).as_posix(), str(path.stat().st_size))
    for arg, value in sorted(build_args.items()):
        yield ("arg", arg, value)
    if name == "sink":
        for rel in package_sources(root):
            yield ("source", rel, _file_sha256(root / rel))
        for dist, version in sorted(dependency_pins().items()):
            yield ("pin", dist, version)


def _file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def package_sources(root: Path = CHECKOUT) -> list[str]:
    """The files the project's wheel is built from, relative to ``root`` (no bytecode)."""
    found = [rel for rel in PACKAGE_ROOT_FILES if (root / rel).is_file()]
    found += sorted(p.name for p in root.glob("LICEN[CS]E*") if p.is_file())
    for package in PACKAGE_DIRS:
        found += sorted(
            path.relative_to(root).as_posix()
            for path in (root / package).rglob("*")
            if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc"
        )
    return found


def component_versions(name: str, root: Path = CHECKOUT) -> dict[str, str]:
    """The versions the image runs, for its `org.cdc-spec.component-versions` label."""
    # the native runtime module is heavy to import: only builds need it
    from pytest_cdc.stack.native.runtime import _debezium_versions, _jar_version

    debian = debian_versions(tuple(pkg for _, pkg in RECIPES[name].packages))
    dist = root / "runtime" / "dist"
    if name == "postgres":
        return {"postgres": upstream_version(debian.get("postgresql-15", ""))}
    if name == "mariadb":
        return {"mariadb": upstream_version(debian.get("mariadb-server", ""))}
    agent = {"jmx_exporter": _jar_version(dist / "agents", "jmx_prometheus_javaagent") or "?"}
    if name == "kafka":
        return {"kafka": _jar_version(dist / "broker", "kafka_2.13") or "?", **agent}
    if name == "connect":
        return {
            "connect": _jar_version(dist / "connect", "connect-runtime") or "?",
            "debezium": _debezium_versions(dist / "plugins"),
            **agent,
        }
    if name == "prometheus":
        return {"prometheus": upstream_version(debian.get("prometheus", ""))}
    return {PROJECT: project_version(root)}


def upstream_version(debian_version: str) -> str:
    """``10.11.19`` from ``1:10.11.19-0+deb12u1``; "?" when unpinned."""
    if not debian_version:
        return "?"
    return debian_version.split(":", 1)[-1].rsplit("-", 1)[0]


def debian_versions(packages: Sequence[str]) -> dict[str, str]:
    """The version the host's apt would install for each package (its candidate, else the
    installed one); packages it does not know (or no apt at all) are left out: unpinned."""
    known = _host_versions()
    return {pkg: known[pkg] for pkg in packages if known.get(pkg)}


@functools.cache
def _host_versions() -> dict[str, str]:
    """Every package the recipes pin, in one `apt-cache policy` call (it takes ~0.5 s)."""
    packages = sorted({pkg for recipe in RECIPES.values() for _, pkg in recipe.packages})
    found = _parse_policy(_run(["apt-cache", "policy", *packages]))
    rest = [pkg for pkg in packages if pkg not in found]
    if rest:
        out = _run(["dpkg-query", "-W", "-f", "${Package} ${Version}\n", *rest])
        found.update(line.split(" ", 1) for line in out.splitlines() if line.count(" ") == 1)
    return found


def _parse_policy(text: str) -> dict[str, str]:
    found: dict[str, str] = {}
    package = ""
    for line in text.splitlines():
        if line and not line[0].isspace() and line.endswith(":"):
            package = line[:-1]
        elif line.strip().startswith("Candidate:") and package:
            version = line.split(":", 1)[1].strip()
            if version != "(none)":
                found[package] = version
    return found


def _run(command: list[str]) -> str:
    try:
        return subprocess.run(command, capture_output=True, text=True, timeout=120).stdout
    except (OSError, subprocess.TimeoutExpired):
        return ""


@functools.cache
def dependency_pins(project: str = PROJECT) -> dict[str, str]:
    """``{distribution: version}`` of every dependency of ``project`` installed in this
    environment (its requirement closure, extras followed); the sink's wheels are pinned to it."""
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    pins: dict[str, str] = {}
    seen: set[tuple[str, frozenset[str]]] = set()
    todo: list[tuple[str, frozenset[str]]] = [(project, frozenset())]
    while todo:
        name, extras = todo.pop()
        if (canonicalize_name(name), extras) in seen:
            continue
        seen.add((canonicalize_name(name), extras))
        try:
            dist = importlib.metadata.distribution(name)
        except importlib.metadata.PackageNotFoundError as exc:
            raise ImagesMissing(
                f"{name} (needed by {project}) is not installed in this Python: run `make setup`"
            ) from exc
        if canonicalize_name(name) != canonicalize_name(project):
            pins[canonicalize_name(dist.metadata["Name"])] = dist.version
        for text in dist.requires or []:
            requirement = Requirement(text)
            marker = requirement.marker
            if marker and not any(marker.evaluate({"extra": e}) for e in extras or {""}):
                continue
            todo.append((requirement.name, frozenset(requirement.extras)))
    return pins
