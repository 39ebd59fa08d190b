"""The pieces of ``cdc_fault`` that need no stack: the record of a fault, what a fault may be
asked, and the one-line error of a component that did not come back."""

from __future__ import annotations

import json

import pytest

from cdc_support.waiting import WaitTimeout
from pytest_cdc.errors import StackStartError
from pytest_cdc.fixtures.faults import FaultNotRecovered, FaultRecord, check_fault, not_recovered


def test_a_record_shows_its_times_and_what_the_target_said() -> None:
    record = FaultRecord(
        "kill",
        "sink worker s",
        injected_at=1_700_000_000.25,
        back_at=1_700_000_003.5,
        seconds_down=3.25,
        down_for=1.0,
        detail={"signal": "SIGKILL"},
    )
    shown = record.as_dict()
    assert shown["action"] == "kill" and shown["target"] == "sink worker s"
    assert (shown["injected_at"], shown["back_at"], shown["seconds_down"]) == (
        1_700_000_000.25,
        1_700_000_003.5,
        3.25,
    )
    assert shown["injected_at_utc"] == "2023-11-14T22:13:20.250+00:00"
    assert shown["down_for"] == 1.0 and shown["detail"] == {"signal": "SIGKILL"}
    assert json.loads(json.dumps(shown)) == shown


def test_a_record_without_detail_or_planned_downtime_leaves_them_out() -> None:
    shown = FaultRecord("restart", "kafka", 10.0, 12.0, 2.0).as_dict()
    assert "detail" not in shown and "down_for" not in shown


@pytest.mark.parametrize(
    ("action", "down_for", "message"),
    [
        ("stop", 0.0, "unknown fault 'stop'; choose kill or restart"),
        ("restart", 2.0, "down_for needs a kill"),
        ("kill", -1.0, "down_for must be >= 0"),
    ],
)
def test_what_a_fault_cannot_be_asked(action: str, down_for: float, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        check_fault(action, down_for)


def test_a_kill_or_restart_with_a_planned_downtime_is_fine() -> None:
    check_fault("kill", 2.5)
    check_fault("restart", 0.0)


def test_a_component_that_does_not_start_again_is_one_line_naming_it_and_what_was_awaited() -> None:
    cause = StackStartError(
        "kafka",
        "the broker to log 'started'",
        "process exited with 1",
        log_tail="a\nb",
        hint="see its log",
    )
    error = not_recovered("restart", "kafka", cause)
    assert isinstance(error, FaultNotRecovered)
    assert "\n" not in str(error)
    assert str(error) == (
        "kafka did not come back after a restart: kafka did not start: waited for the broker "
        "to log 'started'; seen: process exited with 1"
    )


def test_a_timeout_says_what_was_awaited_in_one_line() -> None:
    cause = WaitTimeout("HTTP 200 from http://x/metrics", "refused", elapsed=60.0, attempts=9)
    message = str(not_recovered("kill", "sink worker s", cause))
    assert "\n" not in message
    assert message.startswith("sink worker s did not come back after a kill: timed out after")
    assert "waiting for: HTTP 200 from http://x/metrics; last seen: refused" in message
