"""The stack record (`cdc-spec up`, `--cdc-keep-stack`): exact round trip, mode 0600, a
corrupt file refused in one line naming the fix, the state dir's precedence, liveness."""

from __future__ import annotations

import json
import os
import stat
import subprocess
from pathlib import Path
from types import SimpleNamespace

import psutil
import pytest

from cdc_support.endpoints import Endpoints
from pytest_cdc.stack import record as records
from pytest_cdc.stack.base import StackInfo
from pytest_cdc.stack.record import StackRecord, StackRecordError

ENDPOINTS = Endpoints(
    postgres_dsn="postgresql://postgres:pg%40-pw@127.0.0.1:15432/postgres",
    kafka_bootstrap="127.0.0.1:19092",
    connect_url="http://127.0.0.1:18083",
    mysql_dsn="mysql://root:r00t-pw@127.0.0.1:13306/",
    postgres_password="pg@-pw",
    postgres_cdc_user="cdc_replication",
    postgres_cdc_password="-cdc:pw/",
    mysql_cdc_password="my cdc pw",
    credentials_file="/tmp/cdc-stack-x/credentials.json",
)


def _me() -> dict[str, object]:
    """A process entry for this test process (alive, with its real start time)."""
    me = psutil.Process()
    return {"name": "postgres", "pid": me.pid, "create_time": me.create_time(), "stop_signal": 15}


def _record(processes: list[dict[str, object]] | None = None, workdir: str = "") -> StackRecord:
    return StackRecord(
        endpoints=ENDPOINTS,
        backend="native",
        backend_source="from cdc-spec up --backend",
        versions={"postgres": "15.8", "kafka": "3.9.0"},
        started_by="cdc-spec up",
        started_at="2024-05-01T10:00:00+00:00",
        workdir=workdir or "/tmp/cdc-stack-x",
        processes=processes if processes is not None else [_me()],
    )


def test_a_record_round_trips_exactly_passwords_included(tmp_path: Path) -> None:
    record = _record()
    path = records.save(record, tmp_path / "state" / "stack.json")
    assert records.load(path) == record
    assert json.loads(path.read_text())["endpoints"]["postgres_cdc_password"] == "-cdc:pw/"
    assert record.pids == [os.getpid()]


def test_the_record_is_readable_by_its_owner_only(tmp_path: Path) -> None:
    path = records.save(_record(), tmp_path / "state" / "stack.json")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    records.save(_record(), path)  # replaced: still 0600, no temp file left beside it
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert sorted(p.name for p in path.parent.iterdir()) == ["stack.json"]


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("{not json", "Expecting property name"),
        ("[]", "a JSON object expected"),
        ('{"backend": "native"}', "missing ['endpoints', 'started_by', 'started_at']"),
        ("WRONG_TYPE", "processes must be a JSON list"),
        ("BAD_PROCESS", "a process entry needs name, pid, create_time, stop_signal"),
        ("BAD_ENDPOINTS", "its endpoints is missing kafka_bootstrap"),
    ],
)
def test_a_corrupt_record_is_refused_in_one_line_naming_the_fix(
    tmp_path: Path, text: str, reason: str
) -> None:
    good = json.loads(_record().to_json())
    if text == "WRONG_TYPE":
        text = json.dumps({**good, "processes": {"pid": 1}})
    elif text == "BAD_PROCESS":
        text = json.dumps({**good, "processes": [{"pid": "1"}]})
    elif text == "BAD_ENDPOINTS":
        del good["endpoints"]["kafka_bootstrap"]
        text = json.dumps(good)
    path = tmp_path / "stack.json"
    path.write_text(text)
    with pytest.raises(StackRecordError) as caught:
        records.load(path)
    message = str(caught.value)
    assert "\n" not in message
    assert reason in message
    assert f"remove it (rm {path})" in message
    assert "python -m pytest_cdc.stack.native.stop" in message
    assert "r00t-pw" not in message


def test_no_record_is_none_and_remove_says_whether_there_was_one(tmp_path: Path) -> None:
    path = tmp_path / "stack.json"
    assert records.load(path) is None
    assert records.remove(path) is False
    records.save(_record(), path)
    assert records.remove(path) is True
    assert not path.exists()


def test_the_state_dir_is_cdc_state_dir_then_xdg_state_home_then_home() -> None:
    env = {"CDC_STATE_DIR": "/s", "XDG_STATE_HOME": "/x", "HOME": "/h"}
    assert records.record_path(env) == Path("/s/stack.json")
    env["CDC_STATE_DIR"] = ""
    assert records.record_path(env) == Path("/x/cdc-spec/stack.json")
    del env["XDG_STATE_HOME"]
    assert records.record_path(env) == Path("/h/.local/state/cdc-spec/stack.json")


def test_running_counts_live_processes_but_not_a_reused_pid() -> None:
    assert [p.pid for p in _record().running()] == [os.getpid()]
    reused = {**_me(), "create_time": _me()["create_time"] - 100}  # type: ignore[operator]
    assert _record([reused]).running() == []
    assert _record([]).running() == []


def _detached_stack(workdir: Path) -> SimpleNamespace:
    """What record_of reads from a detached native stack: endpoints, info, workdir."""
    (workdir / "processes.json").write_text(json.dumps([_me()]))
    info = StackInfo(backend="native", backend_source="default", versions={"kafka": "3.9.0"})
    return SimpleNamespace(endpoints=ENDPOINTS, info=info, workdir=workdir)


def test_keep_record_writes_the_detached_stack_with_its_processes(tmp_path: Path) -> None:
    path = tmp_path / "state" / "stack.json"
    line = records.keep_record(_detached_stack(tmp_path), "pytest --cdc-keep-stack", path)  # type: ignore[arg-type]
    assert line.startswith(f"recorded in {path}")
    kept = records.load(path)
    assert kept is not None
    assert (kept.started_by, kept.workdir, kept.pids) == (
        "pytest --cdc-keep-stack",
        str(tmp_path),
        [os.getpid()],
    )


def test_keep_record_never_replaces_the_record_of_another_running_stack(tmp_path: Path) -> None:
    path = records.save(_record(), tmp_path / "state" / "stack.json")
    line = records.keep_record(_detached_stack(tmp_path), "pytest --cdc-keep-stack", path)  # type: ignore[arg-type]
    assert line.startswith(f"not recorded in {path}: it names another running stack")
    assert records.load(path) == _record()


def test_stop_recorded_stops_the_recorded_processes_and_removes_the_folder(
    tmp_path: Path,
) -> None:
    """The record's own pids are stopped even when nothing in the folder names them."""
    workdir = tmp_path / "cdc-stack-x"
    workdir.mkdir()
    sleeper = subprocess.Popen(["sleep", "300"], start_new_session=True)
    try:
        entry = {
            "name": "kafka",
            "pid": sleeper.pid,
            "create_time": psutil.Process(sleeper.pid).create_time(),
            "stop_signal": 15,
        }
        lines = records.stop_recorded(_record([entry], workdir=str(workdir)))
        assert sleeper.wait(timeout=5) == -15
        assert lines == [f"SIGTERM to pid {sleeper.pid} (sleep)", f"removed {workdir}"]
        assert not workdir.exists()
    finally:
        sleeper.kill()


def test_keep_record_says_why_not_when_the_state_dir_is_unusable(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    path = tmp_path / "file" / "stack.json"  # its "dir" is a file
    line = records.keep_record(_detached_stack(tmp_path), "pytest --cdc-keep-stack", path)  # type: ignore[arg-type]
    assert line.startswith("not recorded: ") and "file" in line, line
