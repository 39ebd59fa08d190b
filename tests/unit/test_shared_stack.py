"""The xdist shared-stack handshake: a worker's request starts the stack once on the
controller's side, workers attach to its endpoints, a failed start reaches them in one line."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from cdc_support.endpoints import Endpoints
from pytest_cdc.stack.base import Stack, StackInfo
from pytest_cdc.stack.shared import (
    RECORD,
    SharedStack,
    SharedStackError,
    StackServer,
    attach,
)

ENDPOINTS = Endpoints(
    postgres_dsn="postgresql://postgres:s3cret@127.0.0.1:5432/postgres",
    kafka_bootstrap="127.0.0.1:9092",
    connect_url="http://127.0.0.1:8083",
)


class FakeStack(Stack):
    """Endpoints only: what the handshake passes on (the processes are not its business)."""

    def __init__(self) -> None:
        self.endpoints = ENDPOINTS
        self.info = StackInfo("native", "test", {"kafka": "3.9.0"})

    def restart(self, component: str) -> None: ...
    def kill(self, component: str) -> None: ...
    def logs(self, component: str, lines: int = 50) -> str:
        return ""

    def close(self) -> None: ...


def test_workers_attach_to_the_one_stack_the_first_request_starts() -> None:
    starts: list[FakeStack] = []

    def start() -> Stack:
        starts.append(FakeStack())
        return starts[-1]

    server = StackServer(start)
    try:
        assert starts == []  # nothing starts until a worker asks
        first = attach(server.path, timeout=10)
        second = attach(server.path, timeout=10)
        assert len(starts) == 1
        for stack in (first, second):
            assert isinstance(stack, SharedStack)
            assert stack.endpoints == ENDPOINTS  # passwords included
            assert stack.info.versions == {"kafka": "3.9.0"}
            assert not stack.started_here
        assert stat.S_IMODE((server.path / RECORD).stat().st_mode) == 0o600
        assert stat.S_IMODE(server.path.stat().st_mode) == 0o700
        with pytest.raises(pytest.UsageError, match="shared by the xdist workers"):
            first.restart("kafka")
    finally:
        server.close()
    assert not server.path.exists()


def test_a_failed_start_reaches_every_worker_and_says_whether_it_is_a_usage_error() -> None:
    def start() -> Stack:
        pytest.fail("runtime missing: run `make setup`", pytrace=False)

    server = StackServer(start)
    try:
        for _ in range(2):
            with pytest.raises(SharedStackError, match=r"^runtime missing: run `make setup`$") as e:
                attach(server.path, timeout=10)
            assert e.value.usage
    finally:
        server.close()


def test_a_crash_in_the_start_is_named_with_its_type(tmp_path: Path) -> None:
    def start() -> Stack:
        raise RuntimeError("kafka did not start")

    server = StackServer(start)
    try:
        with pytest.raises(SharedStackError, match=r"^RuntimeError: kafka did not start$") as e:
            attach(server.path, timeout=10)
        assert not e.value.usage
    finally:
        server.close()


def test_close_with_no_request_starts_nothing() -> None:
    starts: list[int] = []
    server = StackServer(lambda: starts.append(1))  # type: ignore[arg-type,return-value]
    server.close()
    assert starts == [] and not server.path.exists()


def test_a_worker_gives_up_in_one_line_when_the_controller_never_answers(tmp_path: Path) -> None:
    with pytest.raises(SharedStackError, match="did not start the cdc stack within 1s"):
        attach(tmp_path, timeout=1)
