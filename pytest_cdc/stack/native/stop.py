"""Stop a native stack left running (--cdc-keep-stack, or a killed run) and remove its dir.

    python -m pytest_cdc.stack.native.stop /tmp/cdc-stack-XXXX

Its processes are the ones recorded in the dir's ``processes.json`` (by `--cdc-keep-stack`)
and any process whose command line or environment names the dir. Each gets its stop signal,
then SIGKILL (to its process group) after the deadline; the dir is removed only once every
process is gone, so no server is still writing into it.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Protocol

import psutil

from cdc_support.waiting import WaitTimeout, wait_until

RECORD = "processes.json"
STOP_TIMEOUT = 60.0


class Stoppable(Protocol):
    """What a recorded service offers (a ServiceProcess)."""

    pid: int | None
    stop_signal: int


def stop_command(workdir: Path) -> str:
    """The shell command that stops the stack in ``workdir`` and removes it."""
    return f"{sys.executable} -m pytest_cdc.stack.native.stop {workdir}"


def record_processes(workdir: Path, services: Mapping[str, Stoppable]) -> Path:
    """Write which processes run the stack (pid, start time, stop signal) into its dir."""
    entries = []
    for name, service in services.items():
        if service.pid is None:
            continue
        with contextlib.suppress(psutil.Error):
            entries.append(
                {
                    "name": name,
                    "pid": service.pid,
                    "create_time": psutil.Process(service.pid).create_time(),
                    "stop_signal": int(service.stop_signal),
                }
            )
    path = workdir / RECORD
    path.write_text(json.dumps(entries, indent=2))
    return path


def processes_mentioning(text: str) -> list[psutil.Process]:
    """Processes whose command line or environment contains ``text``, except this one and
    its parents (the shell that runs the stop command names the dir too)."""
    me = psutil.Process()
    ours = {me.pid, *(p.pid for p in me.parents())}
    found = []
    for proc in psutil.process_iter():
        if proc.pid in ours:
            continue
        with contextlib.suppress(psutil.Error):
            if text in " ".join(proc.cmdline()) or any(
                text in value for value in proc.environ().values()
            ):
                found.append(proc)
    return found


def read_processes(workdir: Path) -> list[dict[str, Any]]:
    """The entries ``record_processes`` wrote into ``workdir`` (none when it wrote none)."""
    try:
        entries = json.loads((workdir / RECORD).read_text())
    except (OSError, ValueError):
        return []
    return entries if isinstance(entries, list) else []


def recorded_processes(entries: Iterable[Mapping[str, Any]]) -> dict[psutil.Process, int]:
    """The recorded processes that still run (same pid AND start time), with their stop signal."""
    procs: dict[psutil.Process, int] = {}
    for entry in entries:
        with contextlib.suppress(psutil.Error):
            proc = psutil.Process(entry["pid"])
            if abs(proc.create_time() - entry["create_time"]) < 0.01:  # not a reused pid
                procs[proc] = entry["stop_signal"]
    return procs


def running_recorded(entries: Iterable[Mapping[str, Any]]) -> list[psutil.Process]:
    """The recorded processes still running (not reused pids, not zombies)."""
    return _alive(recorded_processes(entries))


def stop_stack_dir(
    workdir: Path,
    *,
    timeout: float = STOP_TIMEOUT,
    processes: Iterable[Mapping[str, Any]] = (),
) -> list[str]:
    """Stop every process of the stack in ``workdir``, wait for them, then remove the dir.

    The processes are those recorded in the dir, those given in ``processes`` (entries like
    ``record_processes`` writes) and any naming the dir. Returns what was done, one line per
    process; raises RuntimeError if one survives.
    """
    workdir = workdir.resolve()
    procs = recorded_processes([*read_processes(workdir), *processes])
    for proc in processes_mentioning(str(workdir)):
        procs.setdefault(proc, signal.SIGTERM)
    lines = []
    for proc, signum in procs.items():
        with contextlib.suppress(psutil.Error):
            lines.append(f"{signal.Signals(signum).name} to pid {proc.pid} ({proc.name()})")
            proc.send_signal(signum)
    try:
        _wait_gone(procs, timeout)
    except WaitTimeout:
        left = _alive(procs)
        lines += [f"SIGKILL to pid {p.pid}: not stopped within {timeout:.0f}s" for p in left]
        _kill_groups(left)
        try:
            _wait_gone(left, 10.0)
        except WaitTimeout as exc:
            raise RuntimeError(f"{exc}; {workdir} was kept".replace("\n", "; ")) from None
    shutil.rmtree(workdir, ignore_errors=True)
    if workdir.exists():
        raise RuntimeError(f"could not remove {workdir}")
    lines.append(f"removed {workdir}")
    return lines


def _alive(procs: Iterable[psutil.Process]) -> list[psutil.Process]:
    """The processes still running (a zombie has exited; its parent may be gone)."""
    alive = []
    for proc in procs:
        with contextlib.suppress(psutil.Error):
            if proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE:
                alive.append(proc)
    return alive


def _wait_gone(procs: Iterable[psutil.Process], timeout: float) -> None:
    wait_until(
        lambda: _alive(procs),
        done=lambda alive: not alive,
        timeout=timeout,
        interval=0.1,
        expected="every process of the stack to exit",
        describe=lambda alive: "still running: " + ", ".join(str(p.pid) for p in alive),
    )


def _kill_groups(procs: Iterable[psutil.Process]) -> None:
    for proc in procs:
        with contextlib.suppress(OSError):
            os.killpg(os.getpgid(proc.pid), signal.SIGKILL)
        with contextlib.suppress(psutil.Error):
            proc.kill()


def main(argv: list[str] | None = None) -> int:
    """Command line: stop the stack of each DIR given."""
    parser = argparse.ArgumentParser(
        prog="python -m pytest_cdc.stack.native.stop", description=__doc__.splitlines()[0]
    )
    parser.add_argument("dirs", nargs="+", type=Path, metavar="DIR", help="a cdc-stack-* dir")
    parser.add_argument("--timeout", type=float, default=STOP_TIMEOUT, help="seconds per stop")
    args = parser.parse_args(argv)
    status = 0
    for workdir in args.dirs:
        if not workdir.is_dir():
            print(f"{workdir}: no such dir (already removed?)", file=sys.stderr)
            status = 1
            continue
        try:
            for line in stop_stack_dir(workdir, timeout=args.timeout):
                print(line)
        except RuntimeError as exc:
            print(f"error: {exc}", file=sys.stderr)
            status = 1
    return status


if __name__ == "__main__":
    raise SystemExit(main())
