"""runtime/engine.sh, the Docker engine of the docker backend: `status` and `setup` on the engine
that answers, and `start → status → stop` of a second, real dockerd on a socket of its own (the
engine others use is never stopped)."""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "runtime" / "engine.sh"
DEFAULT_HOST = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
DEFAULT_WHERE = DEFAULT_HOST.removeprefix("unix://")


def _engine(env: dict[str, str], *argv: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", str(SCRIPT), *argv], env=env, capture_output=True, text=True, timeout=timeout
    )


def _lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


def _dockerd_pids() -> set[int]:
    return {p.pid for p in psutil.process_iter(["name"]) if p.info["name"] == "dockerd"}


def _unmount_under(path: Path) -> None:
    """dockerd leaves its network namespace mounted in the exec root."""
    mounts = [line.split()[1] for line in Path("/proc/mounts").read_text().splitlines()]
    for mount in sorted((m for m in mounts if m.startswith(f"{path}/")), reverse=True):
        subprocess.run(["umount", "-l", mount], check=False)


@pytest.fixture
def own_engine() -> Iterator[tuple[dict[str, str], Path]]:
    """The environment of a second engine: its own socket, data root, exec root, pidfile and log
    in a short temp dir (unix socket paths are limited to 108 bytes); whatever runs is stopped."""
    where = Path(tempfile.mkdtemp(prefix="cdc-engine-", dir="/tmp"))
    env = {
        **os.environ,
        "DOCKER_HOST": f"unix://{where}/docker.sock",
        "CDC_DOCKER_ROOT": str(where / "root"),
        "CDC_DOCKER_EXEC_ROOT": str(where / "exec"),
        "CDC_DOCKER_PIDFILE": str(where / "dockerd.pid"),
        "CDC_DOCKER_LOG": str(where / "dockerd.log"),
    }
    yield env, where
    with contextlib.suppress(OSError, ValueError, psutil.Error):
        dockerd = psutil.Process(int((where / "dockerd.pid").read_text()))
        if dockerd.name() == "dockerd":
            dockerd.terminate()
            dockerd.wait(30)
    _unmount_under(where)
    shutil.rmtree(where, ignore_errors=True)


def _tiny_image(env: dict[str, str], ref: str) -> None:
    """An image of one file, enough to create (not run) containers."""
    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode="w") as tar:
        info = tarfile.TarInfo("hello")
        info.size = 3
        tar.addfile(info, io.BytesIO(b"hi\n"))
    subprocess.run(["docker", "import", "-", ref], input=data.getvalue(), env=env, check=True,
                   capture_output=True, timeout=60)  # fmt: skip


def _container(env: dict[str, str], image: str, label: str) -> str:
    """The id of a new (created, not started) container with that label."""
    created = subprocess.run(
        ["docker", "create", "--label", label, image, "/hello"],
        env=env, check=True, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    return created.stdout.strip()


def test_status_names_the_answering_engine() -> None:
    status = _engine(dict(os.environ), "status")
    assert status.returncode == 0, status.stdout + status.stderr
    (line,) = _lines(status.stdout)
    assert line.startswith(f"engine: answering on {DEFAULT_WHERE} (server "), line
    assert "data root " in line and "started by cdc-spec" in line, line


def test_status_of_a_socket_nobody_answers(tmp_path: Path) -> None:
    env = {**os.environ, "DOCKER_HOST": f"unix://{tmp_path}/none.sock"}
    status = _engine(env, "status")
    assert status.returncode == 1
    (line,) = _lines(status.stdout)
    assert line.startswith(f"engine: not answering on {tmp_path}/none.sock,"), line


def test_setup_with_an_answering_engine_changes_nothing() -> None:
    before = _dockerd_pids()
    started = time.monotonic()
    setup = _engine(dict(os.environ), "setup")
    took = time.monotonic() - started
    assert setup.returncode == 0, setup.stdout + setup.stderr
    out = setup.stdout
    assert f"==> Docker engine ({DEFAULT_WHERE})" in out
    assert "an engine answers: server " in out and ": using it (" in out, out
    assert "==> base image debian:bookworm-slim\npresent: " in out, out
    assert "==> Docker Compose v2 (docker compose)\npresent: " in out, out
    assert _dockerd_pids() == before, "setup started or stopped a dockerd"
    assert took < 30, f"setup on a ready engine took {took:.1f} s"


def test_setup_gives_the_containers_of_its_engine_the_cpu_weight_of_16_host_processes() -> None:
    """By default all containers together weigh as much as one host process under load."""
    shares = Path("/sys/fs/cgroup/cpu/docker/cpu.shares")
    before = shares.read_text().strip() if shares.exists() else None
    setup = _engine(dict(os.environ), "setup")
    assert setup.returncode == 0, setup.stdout + setup.stderr
    ours = "started by cdc-spec" in _engine(dict(os.environ), "status").stdout
    if not ours or not Path("/sys/fs/cgroup/cpu").is_dir():  # a user's engine, or cgroup v2
        assert (shares.read_text().strip() if shares.exists() else None) == before
        return
    assert shares.read_text().strip() == "16384"
    assert f"containers' CPU weight: {shares.parent}/cpu.shares = 16384" in setup.stdout


def test_start_status_stop_a_second_engine(own_engine: tuple[dict[str, str], Path]) -> None:
    env, where = own_engine
    sock = f"{where}/docker.sock"
    start = _engine(env, "start")
    assert start.returncode == 0, start.stdout + start.stderr
    assert f"starting dockerd on {sock}, data root {where}/root" in start.stdout
    assert "dockerd answers: server " in start.stdout, start.stdout
    pid = int((where / "dockerd.pid").read_text())
    assert psutil.Process(pid).name() == "dockerd"

    status = _engine(env, "status")
    assert status.returncode == 0, status.stdout + status.stderr
    assert f"answering on {sock} " in status.stdout
    assert f"started by cdc-spec (pid {pid}, {where}/dockerd.pid)" in status.stdout

    again = _engine(env, "start")
    assert again.returncode == 0 and "an engine answers" in again.stdout, again.stdout
    assert int((where / "dockerd.pid").read_text()) == pid, "a second start replaced the engine"

    _tiny_image(env, "cdc-engine-test:1")
    ours = _container(env, "cdc-engine-test:1", "org.cdc-spec.session=engine-test")
    theirs = _container(env, "cdc-engine-test:1", "other=1")

    elsewhere = {**env, "DOCKER_HOST": f"unix://{where}/other.sock"}
    refused = _engine(elsewhere, "stop")
    assert refused.returncode == 1
    (line,) = _lines(refused.stderr)
    assert f"does not listen on {where}/other.sock: set DOCKER_HOST" in line, line
    assert psutil.Process(pid).is_running(), "stop killed a dockerd of another socket"

    stop = _engine(env, "stop")
    assert stop.returncode == 0, stop.stdout + stop.stderr
    assert "removed 1 cdc-spec container(s)" in stop.stdout, stop.stdout
    containers = where / "root" / "containers"
    assert not (containers / ours).exists(), "the cdc-spec container stays"
    assert (containers / theirs).exists(), "stop removed a container that is not cdc-spec's"
    assert f"stopped dockerd (pid {pid}) on {sock}" in stop.stdout
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    assert not (where / "dockerd.pid").exists()
    assert _engine(env, "status").returncode == 1
    assert _engine(env, "stop").stdout.startswith("no engine started by cdc-spec (no ")


def test_stop_with_a_pidfile_of_a_dead_process(tmp_path: Path) -> None:
    dead = subprocess.Popen(["true"])
    dead.wait()
    pidfile = tmp_path / "dockerd.pid"
    pidfile.write_text(f"{dead.pid}\n")
    env = {
        **os.environ,
        "DOCKER_HOST": f"unix://{tmp_path}/none.sock",
        "CDC_DOCKER_PIDFILE": str(pidfile),
    }
    stop = _engine(env, "stop")
    assert stop.returncode == 0, stop.stderr
    (line,) = _lines(stop.stdout)
    assert line == (
        f"no engine started by cdc-spec: {pidfile} names no running dockerd,"
        f" pid {dead.pid} (stale pidfile removed)"
    )
    assert not pidfile.exists(), "the stale pidfile stays"


def test_stop_leaves_a_process_that_is_not_dockerd(tmp_path: Path) -> None:
    other = subprocess.Popen(["sleep", "60"])
    try:
        pidfile = tmp_path / "dockerd.pid"
        pidfile.write_text(str(other.pid))
        env = {
            **os.environ,
            "DOCKER_HOST": f"unix://{tmp_path}/none.sock",
            "CDC_DOCKER_PIDFILE": str(pidfile),
        }
        stop = _engine(env, "stop")
        assert stop.returncode == 0, stop.stderr
        assert "no engine started by cdc-spec" in stop.stdout
        assert other.poll() is None, "stop signalled a process that is not dockerd"
    finally:
        other.kill()
        other.wait()


@pytest.mark.parametrize("argv", [["restart"], []], ids=["unknown", "none"])
def test_a_bad_subcommand_prints_the_usage(argv: list[str]) -> None:
    bad = _engine(dict(os.environ), *argv)
    assert bad.returncode == 2
    assert bad.stdout == ""
    (line,) = _lines(bad.stderr)
    assert line.startswith("usage: engine.sh setup|start|stop|status"), line
