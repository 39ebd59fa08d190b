"""The stack's docker images (``docker/``): their refs, which are missing, building them.

Each image is tagged ``cdc-spec/<name>:<version>-<content hash>`` (the ref a stack runs) and
``cdc-spec/<name>:<version>`` (the tag docker-compose.yml pins), and labelled with its name,
version, hash and component versions. What the hash covers: :mod:`.image_inputs`. Builds use
the docker CLI's classic builder with host networking (``DOCKER_BUILDKIT=0 docker build
--network host``), so RUN steps reach the Debian mirror the host uses.

CLI: ``python -m pytest_cdc.stack.docker.images build|check [NAMES...]``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from filelock import FileLock

from pytest_cdc.errors import CdcSetupError, ImagesMissing
from pytest_cdc.stack.docker.engine import require_engine
from pytest_cdc.stack.docker.image_inputs import (
    APT_INSTALL,
    CHECKOUT,
    IMAGE_NAMES,
    RECIPES,
    SINK_STAGE,
    ImageInputs,
    component_versions,
    dependency_pins,
    image_inputs,
    in_checkout,
    package_sources,
    project_version,
)

__all__ = ["IMAGE_NAMES", "build_images", "image_ref", "main", "missing_images"]

REPOSITORY = "cdc-spec"
LABEL = "org.cdc-spec."
LOG_DIR = "build/docker/logs"
SETUP = "run `make setup`"
BUILD_SECONDS = 3600
APT_PIN_HINT = " (the host's apt lists are older than the mirror: `apt-get update` first)"


class ImageBuildFailed(ImagesMissing):
    """`docker build` (or the sink's `pip wheel`) failed; names the log and `make setup`."""


def image_ref(name: str, *, root: Path = CHECKOUT) -> str:
    """The ref a stack runs for image ``name``; ImagesMissing when the engine lacks it."""
    ref = _ref(name, root)
    if ref not in _present_refs():
        raise ImagesMissing(_missing_line(name, ref))
    return ref


def missing_images(names: Sequence[str] = IMAGE_NAMES, *, root: Path = CHECKOUT) -> list[str]:
    """The names among ``names`` whose ref is not in the engine."""
    present = _present_refs()
    return [name for name in names if _ref(name, root) not in present]


def build_images(
    names: Sequence[str] = IMAGE_NAMES,
    progress: Callable[[str], object] = print,
    *,
    root: Path = CHECKOUT,
) -> dict[str, float]:
    """Build what is missing or stale; seconds per image (0.0 = up to date).

    One build at a time per checkout (a file lock): the sink's staged context is shared."""
    lock = root / LOG_DIR / "build.lock"
    lock.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(lock):
        return _build_missing(names, progress, root)


def _build_missing(
    names: Sequence[str], progress: Callable[[str], object], root: Path
) -> dict[str, float]:
    present = _present_refs()
    seconds: dict[str, float] = {}
    for name in names:
        inputs = image_inputs(name, root)
        ref = _ref_of(name, inputs, root)
        plain = f"{REPOSITORY}/{name}:{project_version(root)}"
        if ref in present:
            _docker("tag", ref, plain)
            progress(f"{name}: up to date ({ref})")
            seconds[name] = 0.0
            continue
        started = time.monotonic()
        _build(name, inputs, [ref, plain], root)
        seconds[name] = time.monotonic() - started
        progress(f"{name}: built in {seconds[name]:.1f}s ({ref})")
    return seconds


def _ref(name: str, root: Path) -> str:
    if name not in RECIPES:
        raise KeyError(f"no image {name!r}: the images are {', '.join(IMAGE_NAMES)}")
    if not in_checkout(name, root):
        return f"{REPOSITORY}/{name}:{project_version(root)}"
    return _ref_of(name, image_inputs(name, root), root)


def _ref_of(name: str, inputs: ImageInputs, root: Path) -> str:
    return f"{REPOSITORY}/{name}:{project_version(root)}-{inputs.digest}"


def _missing_line(name: str, ref: str) -> str:
    return f"{name}: image {ref} is not built (new, or its inputs changed): {SETUP}"


def _present_refs() -> set[str]:
    """Every ``cdc-spec/*`` ref in the engine (one CLI call)."""
    require_engine("the cdc-spec docker images")
    listed = _docker(
        "image",
        "ls",
        "--filter",
        f"reference={REPOSITORY}/*",
        "--format",
        "{{.Repository}}:{{.Tag}}",
    )
    return set(listed.split())


def _docker(*args: str, timeout: float = 60) -> str:
    try:
        result = subprocess.run(
            ["docker", *args], capture_output=True, text=True, timeout=timeout, check=True
        )
    except FileNotFoundError as exc:
        raise ImagesMissing(f"no `docker` command on PATH: {SETUP} (installs docker.io)") from exc
    except subprocess.CalledProcessError as exc:
        last = (exc.stderr or exc.stdout or "").strip().splitlines()[-1:] or ["no output"]
        raise ImagesMissing(f"`docker {' '.join(args[:2])}` failed: {last[0]}: {SETUP}") from exc
    return result.stdout


def _build(name: str, inputs: ImageInputs, tags: list[str], root: Path) -> None:
    recipe = RECIPES[name]
    dockerfile, context = root / recipe.dockerfile, root / recipe.context
    if name == "sink":
        dockerfile = stage_sink(root) / "Dockerfile"
    labels = {
        "image": name,
        "version": project_version(root),
        "hash": inputs.digest,
        "component-versions": json.dumps(component_versions(name, root)),
    }
    command = ["docker", "build", "--network", "host", "-f", str(dockerfile)]
    for tag in tags:
        command += ["-t", tag]
    for key, value in labels.items():
        command += ["--label", f"{LABEL}{key}={value}"]
    for arg, value in inputs.build_args.items():
        command += ["--build-arg", f"{arg}={value}"]
    if recipe.target:
        command += ["--target", recipe.target]
    log = root / LOG_DIR / f"{name}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("w") as out:
        out.write(" ".join([*command, str(context)]) + "\n")
        out.flush()
        result = subprocess.run(
            [*command, str(context)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, "DOCKER_BUILDKIT": "0"},
            timeout=BUILD_SECONDS,
        )
    if result.returncode != 0:
        raise ImageBuildFailed(_build_failure(name, log, result.returncode))


def _build_failure(name: str, log: Path, code: int) -> str:
    lines = [line.strip() for line in log.read_text(errors="replace").splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith(("E: ", "ERROR", "error"))]
    cause = (errors or lines or ["no output"])[-1]
    hint = APT_PIN_HINT if cause.startswith("E: Version") else ""
    return (
        f"{REPOSITORY}/{name} did not build (exit {code}): {cause}{hint}; "
        f"full log {log}: fix that and {SETUP} again"
    )


def stage_sink(root: Path = CHECKOUT, python: str = sys.executable) -> Path:
    """Fill the sink's build context: its Dockerfile, apt-install.sh, ``wheels/deps`` (the
    dependencies' wheels, pinned to this environment; kept while the pins are unchanged) and
    ``wheels/project`` (the project's wheel, from a copy of its sources), built by pip here."""
    stage = root / SINK_STAGE
    stage.mkdir(parents=True, exist_ok=True)
    shutil.copy2(root / RECIPES["sink"].dockerfile, stage / "Dockerfile")
    shutil.copy2(root / APT_INSTALL, stage / "apt-install.sh")
    deps, project = stage / "wheels" / "deps", stage / "wheels" / "project"
    pins = "".join(f"{dist}=={version}\n" for dist, version in sorted(dependency_pins().items()))
    stamp = deps / "pins.txt"
    if not stamp.is_file() or stamp.read_text() != pins:
        _fresh(deps)
        (deps / "requirements.in").write_text(pins)
        _pip_wheel(root, python, ["-r", str(deps / "requirements.in"), "-w", str(deps)])
        (deps / "requirements.in").rename(stamp)
    _fresh(project)
    with tempfile.TemporaryDirectory(prefix="cdc-spec-sink-") as tmp:
        for rel in package_sources(root):
            (Path(tmp) / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(root / rel, Path(tmp) / rel)
        _pip_wheel(root, python, ["--no-deps", "-w", str(project), tmp])
    return stage


def _fresh(folder: Path) -> None:
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)


def _pip_wheel(root: Path, python: str, args: list[str]) -> None:
    command = [python, "-m", "pip", "wheel", "-q", "--disable-pip-version-check", *args]
    result = subprocess.run(command, capture_output=True, text=True, timeout=BUILD_SECONDS)
    if result.returncode != 0:
        log = root / LOG_DIR / "sink-wheels.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        log.write_text(" ".join(command) + "\n" + result.stdout + result.stderr)
        raise ImageBuildFailed(_build_failure("sink", log, result.returncode))


def main(argv: Sequence[str] | None = None) -> int:
    """``build|check [NAMES...]``: one line per image; exit 1 when one is missing or fails."""
    args = list(sys.argv[1:] if argv is None else argv)
    command, names = (args[0] if args else ""), args[1:] or list(IMAGE_NAMES)
    unknown = [name for name in names if name not in IMAGE_NAMES]
    if command not in ("build", "check") or unknown:
        print(
            f"usage: python -m pytest_cdc.stack.docker.images build|check [{' '.join(IMAGE_NAMES)}]"
            + (f" (no image {', '.join(unknown)})" if unknown else ""),
            file=sys.stderr,
        )
        return 2
    root = CHECKOUT
    try:
        if command == "build":
            build_images(names, root=root)
            return 0
        missing = set(missing_images(names, root=root))
        for name in names:
            ref = _ref(name, root)
            print(_missing_line(name, ref) if name in missing else f"{name}: ok ({ref})")
        return 1 if missing else 0
    except CdcSetupError as exc:
        print(exc, file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
