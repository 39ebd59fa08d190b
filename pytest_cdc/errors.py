"""Exceptions raised by the pytest_cdc plugin; each message names the fix."""

from __future__ import annotations

import pytest


class CdcUsageError(pytest.UsageError):
    """A bad option or ini value; the message lists what is allowed."""


class CdcSetupError(RuntimeError):
    """The machine is not ready for the stack; the one-line message names the fix.

    Tests that need the stack report it as a one-line error, without a traceback.
    """


class RuntimeMissing(CdcSetupError):
    """A binary or jar the native backend needs is not installed."""


class ImagesMissing(CdcSetupError):
    """A docker image of the stack is not built (or its inputs changed); names `make setup`."""


class TempDirUnusable(CdcSetupError):
    """The temp dir cannot hold the stack: the database users cannot enter or write it."""


class StackStartError(RuntimeError):
    """A stack component did not become ready; says what was awaited and what was seen."""

    def __init__(
        self,
        component: str,
        awaited: str,
        seen: str,
        *,
        log_tail: str = "",
        hint: str = "",
    ) -> None:
        self.component = component
        lines = [
            f"{component} did not start: waited for {awaited}",
            f"  seen: {seen}",
        ]
        if hint:
            lines.append(f"  hint: {hint}")
        if log_tail:
            lines.append(f"  last lines of the {component} log:")
            lines.extend(f"    | {line}" for line in log_tail.splitlines())
        super().__init__("\n".join(lines))


class ExternalEndpointsError(CdcSetupError):
    """The external backend has no usable endpoints (none given, no stack recorded, a file or
    an address it cannot read); the one-line message names the options and `cdc-spec up`."""


class ExternalStackUnreachable(CdcSetupError):
    """A service of an external stack does not answer: one line per service, naming its
    address and the option (or file) that set it."""


class StackCannotBeFaulted(RuntimeError):
    """`restart`/`kill` on a stack this run did not start (an external one)."""
