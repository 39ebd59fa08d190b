"""ServiceProcess readiness and failure messages, with small real child processes."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psutil
import pytest
from mirakuru.base import ENV_UUID
from mirakuru.base_env import processes_with_env

from cdc_support.waiting import wait_until
from pytest_cdc.errors import StackStartError
from pytest_cdc.process import ServiceProcess

SLOW = [sys.executable, "-c", "print('booting', flush=True); import time; time.sleep(60)"]
CRASH = [sys.executable, "-c", "print('bad config: port', flush=True); raise SystemExit(3)"]


def _service(tmp_path: Path, command: list[str], probe, timeout: float = 1.0) -> ServiceProcess:
    return ServiceProcess(
        "demo",
        command,
        log_path=tmp_path / "demo.log",
        probe=probe,
        awaited="the word READY in its log",
        timeout=timeout,
        hint="check the demo config",
    )


def test_ready_when_probe_says_so_and_stop_ends_the_process(tmp_path: Path) -> None:
    service = _service(
        tmp_path, SLOW, lambda s: None if b"booting" in s.log_since_start() else "no boot line"
    )
    service.start()
    pid = service.pid
    assert service.running() and psutil.pid_exists(pid)
    service.stop()
    assert not service.running()
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE


def test_timeout_names_component_awaited_seen_and_log_tail(tmp_path: Path) -> None:
    service = _service(tmp_path, SLOW, lambda s: "no READY line yet")
    with pytest.raises(StackStartError) as info:
        service.start()
    message = str(info.value)
    assert "demo did not start: waited for the word READY in its log within 1s" in message
    assert "seen: no READY line yet" in message
    assert "hint: check the demo config" in message
    assert "| booting" in message
    assert not service.running()


def test_a_process_that_exits_is_reported_with_its_code_and_log(tmp_path: Path) -> None:
    service = _service(tmp_path, CRASH, lambda s: "not ready", timeout=10)
    with pytest.raises(StackStartError) as info:
        service.start()
    message = str(info.value)
    assert "seen: the process exited with code 3" in message
    assert "| bad config: port" in message


def test_restart_keeps_the_log_and_probes_only_the_new_run(tmp_path: Path) -> None:
    runs: list[bytes] = []

    def probe(service: ServiceProcess) -> str | None:
        text = service.log_since_start()
        runs.append(text)
        return None if text.count(b"booting") == 1 else "waiting for one boot line"

    service = _service(tmp_path, SLOW, probe, timeout=10)
    service.start()
    service.restart()
    service.stop()
    assert (tmp_path / "demo.log").read_bytes().count(b"booting") == 2


def test_an_interrupt_while_starting_kills_the_process(tmp_path: Path) -> None:
    """Ctrl-C or SIGTERM (made a KeyboardInterrupt) mid-start leaves no process behind."""
    seen: list[int] = []

    def interrupted(service: ServiceProcess) -> str | None:
        seen.append(service.pid or -1)
        raise KeyboardInterrupt("SIGTERM received")

    service = _service(tmp_path, SLOW, interrupted, timeout=10)
    with pytest.raises(KeyboardInterrupt):
        service.start()
    assert not service.running()
    pid = seen[0]
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE


def test_a_kill_from_another_thread_ends_a_start_in_progress(tmp_path: Path) -> None:
    """The stack kills services other threads are still starting (on Ctrl-C/SIGTERM); such a
    start must end at once with the kill named, not wait forever for a process now gone."""
    service = _service(tmp_path, SLOW, lambda s: "not ready", timeout=60)
    with ThreadPoolExecutor(max_workers=1) as pool:
        start = pool.submit(service.start)
        wait_until(
            lambda: service.pid, done=bool, timeout=10, expected="the service's process to run"
        )
        pid = service.pid
        service.kill()
        with pytest.raises(StackStartError) as info:
            start.result(timeout=10)
    assert "killed while starting" in str(info.value)
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE


def test_no_other_process_exiting_can_mistake_a_service_for_its_own(tmp_path: Path) -> None:
    """mirakuru kills, at any exiting interpreter's end, every process whose marker *contains*
    that interpreter's pid; a marker with digits could match an unrelated pid and so kill a
    stack `cdc-spec up` left running. Ours has none."""
    service = _service(tmp_path, SLOW, lambda s: None)
    service.start()
    try:
        marker = psutil.Process(service.pid).environ()[ENV_UUID]
        assert not any(ch.isdigit() for ch in marker), marker
        for pid in [*range(10), service.pid, os.getpid()]:
            assert service.pid not in processes_with_env(ENV_UUID, str(pid))
    finally:
        service.stop()


OWNER = """
import sys, time
from pathlib import Path
from pytest_cdc.process import ServiceProcess
service = ServiceProcess(
    "demo", [sys.executable, "-c", "import time; time.sleep(120)"],
    log_path=Path(sys.argv[1]), probe=lambda s: None, awaited="-", timeout=10,
)
service.start()
print(service.pid, flush=True)
if sys.argv[2] == "detach":
    service.detach()
"""


@pytest.mark.parametrize("detach", [False, True], ids=["exits", "detaches then exits"])
def test_an_exiting_owner_kills_its_services_unless_it_detached_them(
    tmp_path: Path, detach: bool
) -> None:
    owner = subprocess.run(
        [sys.executable, "-c", OWNER, str(tmp_path / "demo.log"), "detach" if detach else "-"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert owner.returncode == 0, owner.stderr
    pid = int(owner.stdout.split()[0])
    alive = psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    if detach and alive:  # only then is the pid still ours: a freed one may be reused
        with contextlib.suppress(psutil.Error):
            psutil.Process(pid).kill()
    assert alive == detach


def test_a_stop_that_ends_in_sigkill_says_so(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """mirakuru SIGKILLs a process that ignores its stop signal past the timeout, silently;
    a graceful stop that ended so is logged, naming the service, the signal and its log."""
    stubborn = [
        sys.executable,
        "-c",
        "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
        "print('up', flush=True); time.sleep(60)",
    ]
    service = _service(tmp_path, stubborn, lambda s: None if b"up" in s.log_since_start() else "")
    service.start()
    with caplog.at_level("WARNING", logger="pytest_cdc.process"):
        service.stop()
    assert "demo did not exit within 1s of SIGTERM: it was killed (SIGKILL)" in caplog.text
    assert not service.running()
