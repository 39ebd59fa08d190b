"""Polling with a deadline: wait for a condition and say what was expected vs what was seen.

Checks never sleep a fixed time and hope; they poll a probe until it reports what is expected
or the deadline passes, and then fail with a message naming both.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from tenacity import (
    RetryCallState,
    RetryError,
    Retrying,
    retry_if_exception_type,
    retry_if_result,
    stop_after_delay,
)

__all__ = ["WaitTimeout", "wait_until"]

T = TypeVar("T")


class WaitTimeout(AssertionError):
    """A wait ran out of time; the message says what was expected and what was last seen."""

    def __init__(
        self,
        expected: str,
        last_seen: str,
        *,
        elapsed: float,
        attempts: int,
        hint: str | None = None,
        log_lines: Sequence[str] = (),
    ) -> None:
        self.expected = expected
        self.last_seen = last_seen
        self.elapsed = elapsed
        self.attempts = attempts
        self.hint = hint
        self.log_lines = list(log_lines)
        lines = [
            f"timed out after {elapsed:.1f}s ({attempts} attempt{'s' if attempts != 1 else ''}) "
            f"waiting for: {expected}",
            f"last seen: {last_seen}",
        ]
        if hint:
            lines.append(f"hint: {hint}")
        if self.log_lines:
            lines.append(f"last {len(self.log_lines)} log lines:")
            lines.extend(f"  | {line.rstrip()}" for line in self.log_lines)
        super().__init__("\n".join(lines))


def _describe_exception(exc: BaseException) -> str:
    return f"<{type(exc).__name__}: {exc}>"


def wait_until(
    probe: Callable[[], T],
    *,
    done: Callable[[T], bool] = bool,
    timeout: float,
    interval: float = 0.2,
    expected: str,
    describe: Callable[[T], str] = repr,
    hint: str | None = None,
    ignore: tuple[type[BaseException], ...] = (),
    log_lines: Callable[[], Sequence[str]] | None = None,
) -> T:
    """Call ``probe`` every ``interval`` seconds until ``done(value)``; return that value.

    Exceptions of the types in ``ignore`` are recorded as the last seen value and polling goes
    on; other exceptions propagate. The last attempt happens at the deadline. On timeout raises
    :class:`WaitTimeout` with ``expected``, ``describe(last value)``, ``hint`` and, when given,
    the lines returned by ``log_lines()`` (e.g. the tail of a service log).
    """
    if timeout < 0 or interval <= 0:
        raise ValueError(f"need timeout >= 0 and interval > 0, got {timeout=} {interval=}")
    start = time.monotonic()
    seen: dict[str, Any] = {"text": "nothing (probe never ran)"}

    def attempt() -> T:
        try:
            value = probe()
        except ignore as exc:
            seen["text"] = _describe_exception(exc)
            raise
        try:
            seen["text"] = describe(value)
        except Exception as exc:  # a broken describe must not hide the real timeout
            seen["text"] = f"{value!r} (describe failed: {_describe_exception(exc)})"
        return value

    def until_deadline(state: RetryCallState) -> float:
        elapsed = state.seconds_since_start or 0.0
        return max(0.0, min(interval, timeout - elapsed))

    retrying = Retrying(
        stop=stop_after_delay(timeout),
        wait=until_deadline,
        retry=retry_if_exception_type(ignore) | retry_if_result(lambda value: not done(value)),
    )
    try:
        return retrying(attempt)
    except RetryError as exc:
        lines: Sequence[str] = ()
        if log_lines is not None:
            try:
                lines = list(log_lines())
            except Exception as log_exc:
                lines = [f"(could not read logs: {_describe_exception(log_exc)})"]
        raise WaitTimeout(
            expected,
            seen["text"],
            elapsed=time.monotonic() - start,
            attempts=exc.last_attempt.attempt_number,
            hint=hint,
            log_lines=lines,
        ) from exc.last_attempt.exception()
