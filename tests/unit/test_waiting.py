import itertools
import time

import pytest

from cdc_support.waiting import WaitTimeout, wait_until


def test_returns_the_value_once_done():
    counter = itertools.count(1)
    calls = []

    def probe():
        value = next(counter)
        calls.append(value)
        return value

    result = wait_until(probe, done=lambda v: v >= 4, timeout=5, interval=0.001, expected="4")
    assert result == 4
    assert calls == [1, 2, 3, 4]


def test_default_done_is_truthiness():
    values = iter([[], [], ["row"]])
    assert wait_until(lambda: next(values), timeout=5, interval=0.001, expected="a row") == ["row"]


def test_first_success_does_not_sleep():
    start = time.monotonic()
    wait_until(lambda: True, timeout=5, interval=2, expected="true")
    assert time.monotonic() - start < 0.5


def test_timeout_message_names_expected_and_last_seen():
    counter = itertools.count()
    with pytest.raises(WaitTimeout) as info:
        wait_until(
            lambda: next(counter),
            done=lambda v: v < 0,
            timeout=0.2,
            interval=0.02,
            expected="a negative number",
            describe=lambda v: f"count={v}",
            hint="is the connector RUNNING?",
        )
    err = info.value
    message = str(err)
    assert isinstance(err, AssertionError)
    assert "waiting for: a negative number" in message
    assert f"last seen: count={err.attempts - 1}" in message
    assert "hint: is the connector RUNNING?" in message
    assert message.startswith("timed out after 0.2s (")
    assert err.attempts >= 3
    assert 0.2 <= err.elapsed < 1.0
    assert err.expected == "a negative number"


def test_deadline_is_respected_with_a_long_interval():
    start = time.monotonic()
    with pytest.raises(WaitTimeout) as info:
        wait_until(lambda: False, timeout=0.3, interval=10, expected="never")
    assert time.monotonic() - start < 1.5
    assert info.value.attempts == 2  # one at the start, one at the deadline


def test_zero_timeout_tries_once():
    with pytest.raises(WaitTimeout) as info:
        wait_until(lambda: 0, timeout=0, expected="truthy")
    assert info.value.attempts == 1
    assert "(1 attempt)" in str(info.value)


def test_ignored_exceptions_keep_polling():
    outcomes = iter([ConnectionError("refused"), ConnectionError("refused"), "up"])

    def probe():
        outcome = next(outcomes)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    assert wait_until(probe, timeout=5, interval=0.001, expected="up", ignore=(OSError,)) == "up"


def test_ignored_exception_is_reported_as_last_seen():
    def probe():
        raise ConnectionRefusedError("connection refused on 127.0.0.1:9092")

    with pytest.raises(WaitTimeout) as info:
        wait_until(probe, timeout=0.1, interval=0.02, expected="broker", ignore=(OSError,))
    assert "last seen: <ConnectionRefusedError: connection refused on 127.0.0.1:9092>" in str(
        info.value
    )
    assert isinstance(info.value.__cause__, ConnectionRefusedError)


def test_other_exceptions_propagate_at_once():
    def probe():
        raise KeyError("boom")

    start = time.monotonic()
    with pytest.raises(KeyError):
        wait_until(probe, timeout=5, interval=0.5, expected="x", ignore=(OSError,))
    assert time.monotonic() - start < 0.5


def test_log_lines_are_included():
    with pytest.raises(WaitTimeout) as info:
        wait_until(
            lambda: None,
            timeout=0,
            expected="started",
            log_lines=lambda: ["INFO booting", "ERROR port in use\n"],
        )
    message = str(info.value)
    assert "last 2 log lines:\n  | INFO booting\n  | ERROR port in use" in message
    assert info.value.log_lines == ["INFO booting", "ERROR port in use\n"]


def test_broken_log_reader_does_not_hide_the_timeout():
    def logs():
        raise FileNotFoundError("server.log")

    with pytest.raises(WaitTimeout, match="could not read logs"):
        wait_until(lambda: None, timeout=0, expected="started", log_lines=logs)


def test_broken_describe_does_not_hide_the_timeout():
    with pytest.raises(WaitTimeout, match="describe failed"):
        wait_until(
            lambda: 1, done=lambda v: False, timeout=0, expected="x", describe=lambda v: 1 / 0
        )


def test_bad_arguments():
    with pytest.raises(ValueError):
        wait_until(lambda: 1, timeout=-1, expected="x")
    with pytest.raises(ValueError):
        wait_until(lambda: 1, timeout=1, interval=0, expected="x")


def test_wait_timeout_message_can_be_built_directly():
    err = WaitTimeout("3 rows", "1 row", elapsed=2.0, attempts=10)
    assert str(err) == "timed out after 2.0s (10 attempts) waiting for: 3 rows\nlast seen: 1 row"
