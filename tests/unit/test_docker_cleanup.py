"""Which leftover containers are orphans: started on this host by a process that is gone, and
not left running on purpose (the engine's container list is faked; nothing is removed)."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import psutil
import pytest

from pytest_cdc.stack.docker import cleanup
from pytest_cdc.stack.docker.containers import (
    HOST_LABEL,
    OWNER_PID_LABEL,
    OWNER_START_LABEL,
    labels_for,
)


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_the_owner_is_alive_only_while_its_process_runs() -> None:
    mine = labels_for("s1", "postgres")
    assert mine[OWNER_PID_LABEL] == str(psutil.Process().pid)
    assert mine[HOST_LABEL] == socket.gethostname()
    assert cleanup.owner_alive(mine)
    assert not cleanup.owner_alive({**mine, OWNER_PID_LABEL: str(_dead_pid())})
    reused = {**mine, OWNER_START_LABEL: str(psutil.Process().create_time() - 3600)}
    assert not cleanup.owner_alive(reused)  # same pid, another process
    assert not cleanup.owner_alive({})


def _container(name: str, labels: dict[str, str]) -> SimpleNamespace:
    return SimpleNamespace(name=name, labels=labels)


def test_orphans_are_dead_owners_on_this_host_not_kept_not_compose(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dead = str(_dead_pid())
    kept_dir = tmp_path / "cdc-docker-kept"
    kept_dir.mkdir()
    (kept_dir / cleanup.DETACHED).touch()
    found = [
        _container("orphan", {**labels_for("s1", "kafka"), OWNER_PID_LABEL: dead}),
        _container("live", labels_for("s2", "kafka")),
        _container("kept", {**labels_for("s3", "kafka", str(kept_dir)), OWNER_PID_LABEL: dead}),
        _container(
            "other-host",
            {**labels_for("s4", "kafka"), OWNER_PID_LABEL: dead, HOST_LABEL: "elsewhere"},
        ),
        _container("compose", {"org.cdc-spec.session": "compose"}),  # no owner: never ours
    ]
    monkeypatch.setattr(cleanup, "find_containers", lambda session=None: found)
    assert [c.name for c in cleanup.leftovers()] == ["orphan"]
    assert [c.name for c in cleanup.leftovers(include_detached=True)] == ["orphan", "kept"]


def test_removing_tries_every_container_and_names_the_failures() -> None:
    import docker.errors

    removed = []

    def ok(**kwargs: object) -> None:
        removed.append(kwargs)

    def gone(**kwargs: object) -> None:
        raise docker.errors.NotFound("gone")

    def broken(**kwargs: object) -> None:
        raise docker.errors.APIError("device busy")

    labels = labels_for("s1", "kafka")
    containers = [
        SimpleNamespace(name="a", labels=labels, remove=broken),
        SimpleNamespace(name="b", labels=labels, remove=ok),
        SimpleNamespace(name="c", labels=labels, remove=gone),
    ]
    busy = r"could not remove a \(kafka, session s1\): device busy"
    with pytest.raises(RuntimeError, match=busy):
        cleanup.remove(containers)
    assert removed == [{"force": True, "v": True}]


def test_only_a_docker_stack_dir_is_removed_with_its_orphans(tmp_path: Path) -> None:
    other = tmp_path / "precious"
    other.mkdir()
    assert not cleanup._remove_workdir(other) and other.exists()
    mine = tmp_path / "cdc-docker-abc"
    (mine / "sub").mkdir(parents=True)
    assert cleanup._remove_workdir(mine) and not mine.exists()


def test_a_sink_workers_folder_is_removed_with_its_orphaned_container(tmp_path: Path) -> None:
    """A sink container labels its folder: a run killed with SIGKILL leaves neither behind."""
    sink_dir = tmp_path / "cdc-sink-scenario-x1y2"
    sink_dir.mkdir()
    assert cleanup._remove_workdir(sink_dir) and not sink_dir.exists()
