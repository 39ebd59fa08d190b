"""KillRecord: how a SIGKILL shows in a process's returncode and in a container's exit status."""

from __future__ import annotations

import signal

import pytest

from pytest_cdc.fixtures.sinks import KillRecord


@pytest.mark.parametrize(
    ("returncode", "container", "alive", "signal_name", "killed"),
    [
        (-signal.SIGKILL, None, False, "SIGKILL", True),  # a child process: Popen says -9
        (137, "3f2a9c1b0d4e", False, "SIGKILL", True),  # a container: exit status 128 + 9
        (137, None, False, None, False),  # a process that exited with status 137 by itself
        (-signal.SIGKILL, "3f2a9c1b0d4e", False, None, False),  # not a container's status
        (0, "3f2a9c1b0d4e", False, None, False),  # it exited on its own
        (137, "3f2a9c1b0d4e", True, "SIGKILL", False),  # the container still runs
    ],
)
def test_killed_by_sigkill_reads_the_status_of_a_process_or_a_container(
    returncode: int, container: str | None, alive: bool, signal_name: str | None, killed: bool
) -> None:
    record = KillRecord(1234, returncode, alive, 3, container=container)
    assert record.killed_by_sigkill is killed
    shown = record.as_dict()
    assert shown["returncode"] == returncode and shown["process still exists"] is alive
    assert shown["signal"] == signal_name


def test_the_report_names_the_container_and_the_signal() -> None:
    shown = KillRecord(4321, 137, False, 7, container="3f2a9c1b0d4e").as_dict()
    assert shown == {
        "pid": 4321,
        "container": "3f2a9c1b0d4e",
        "returncode": 137,
        "signal": "SIGKILL",
        "process still exists": False,
        "commits logged before the kill": 7,
    }
    assert "container" not in KillRecord(4321, -9, False, 7).as_dict()
