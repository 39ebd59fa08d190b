"""Which backend `auto` picks and why, and the docker backend's one-line errors (no container
is started here: the engine's answer and the images' presence are faked where named)."""

from __future__ import annotations

import threading
import time

import pytest

from pytest_cdc import backends
from pytest_cdc.errors import CdcSetupError, StackStartError
from pytest_cdc.options import Setting
from pytest_cdc.stack.docker import engine, images, stack
from pytest_cdc.stack.docker.containers import Cancelled
from pytest_cdc.stack.docker.stack import DockerBackend
from pytest_cdc.stack.native import NativeBackend

AUTO = Setting("auto", "default")


@pytest.fixture
def engine_answers(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Whether the (faked) engine answers: set ``[0]``."""
    answers = [True]
    monkeypatch.setattr(engine, "docker_engine_answers", lambda *a, **k: answers[0])
    return answers


def test_auto_is_native_when_no_engine_answers(engine_answers: list[bool], tmp_path) -> None:
    engine_answers[0] = False
    assert backends.effective_backend(AUTO) == (
        "native",
        "auto (from default): no Docker engine answers",
    )
    assert isinstance(backends.backend_for(AUTO, tmp_path), NativeBackend)


def test_auto_is_native_and_names_the_missing_images(
    engine_answers: list[bool], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(images, "missing_images", lambda *a, **k: ["postgres", "connect"])
    assert backends.effective_backend(AUTO) == (
        "native",
        "auto (from default): Docker engine answers but images missing: postgres, connect; "
        "run make setup",
    )


def test_auto_is_docker_when_the_engine_answers_and_the_images_are_built(
    engine_answers: list[bool], monkeypatch: pytest.MonkeyPatch, tmp_path
) -> None:
    monkeypatch.setattr(images, "missing_images", lambda *a, **k: [])
    name, why = backends.effective_backend(Setting("auto", "env CDC_BACKEND"))
    assert (name, why) == (
        "docker",
        "auto (from env CDC_BACKEND): Docker engine answers and the cdc-spec images are built",
    )
    backend = backends.backend_for(AUTO, tmp_path, with_mysql=False)
    assert isinstance(backend, DockerBackend)
    assert (backend.name, backend.with_mysql) == ("docker", False)


def test_an_explicit_docker_backend_is_taken_as_given(tmp_path) -> None:
    backend = backends.backend_for(Setting("docker", "command line"), tmp_path)
    assert isinstance(backend, DockerBackend)
    assert backend.source == "from command line"


def test_no_engine_at_docker_host_is_seen_fast(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-engine.sock")
    started = time.monotonic()
    assert engine.docker_engine_answers() is False
    assert time.monotonic() - started < engine.ANSWER_SECONDS + 1


def test_docker_without_an_engine_is_one_line_naming_make_setup(
    monkeypatch: pytest.MonkeyPatch, tmp_path
) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-engine.sock")
    backend = DockerBackend("from command line")
    for call in (backend.versions, lambda: backend.start(print)):
        with pytest.raises(engine.EngineUnavailable) as raised:
            call()
        message = str(raised.value)
        assert isinstance(raised.value, CdcSetupError)
        assert "\n" not in message
        assert message == (
            "the docker backend (from command line) needs a Docker engine and none answers at "
            f"unix://{tmp_path}/"
            "no-engine.sock: run `make setup` (it starts one), or use --cdc-backend=native"
        )


class FakeContainer:
    """What `_start` needs of a ServiceContainer; `start` does what it is told."""

    image = "cdc-spec/fake:1"
    short_id = "abc123"
    start_seconds = 0.1

    def __init__(self, component: str, start) -> None:
        self.component = component
        self._start = start

    def start(self) -> FakeContainer:
        self._start()
        return self


def test_a_failed_component_stops_the_others_waiting_and_is_what_is_raised() -> None:
    cancel, waiting = threading.Event(), threading.Event()

    def fail() -> None:
        assert waiting.wait(30)  # postgres is waiting by then
        raise StackStartError("kafka", "Kafka metadata", "connection refused")

    def wait_for_cancel() -> None:
        waiting.set()
        if not cancel.wait(30):
            raise AssertionError("never cancelled")
        raise Cancelled("postgres")

    containers = [FakeContainer("postgres", wait_for_cancel), FakeContainer("kafka", fail)]
    started = time.monotonic()
    with pytest.raises(StackStartError, match="kafka did not start"):
        stack._start_together(containers, cancel, lambda line: None)  # type: ignore[arg-type]
    assert time.monotonic() - started < 10


def test_a_kept_stack_says_how_to_remove_it(tmp_path) -> None:
    command = stack.remove_command("0a1b2c", tmp_path / "cdc-docker-x")
    assert command == (
        "docker rm -f -v $(docker ps -aq --filter label=org.cdc-spec.session=0a1b2c) "
        f"&& rm -rf {tmp_path / 'cdc-docker-x'}"
    )
