"""Waiting for SIGTERM/SIGINT in a process whose work runs in other threads.

A Python signal handler runs in the main thread, and only when that thread next runs Python
code. The kernel may deliver the signal to any thread that does not block it; a main thread
waiting on a lock is then not woken, and the handler can wait for as long as that wait lasts
(an hour, in the collector's case). So such a process blocks the stop signals before it
starts any thread (threads inherit the mask) and receives them with ``sigwait``::

    with holding_stop_signals():     # first, before any thread starts
        ...start the threads...
        wait_for_stop_signal()       # returns the signal's number

The mask is put back when the block ends: a process that goes on (a caller of a command's
``run`` in a test, say) must not pass blocked signals on to every child it starts later.
"""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterator

__all__ = ["STOP_SIGNALS", "holding_stop_signals", "wait_for_stop_signal"]

STOP_SIGNALS = frozenset({signal.SIGTERM, signal.SIGINT})


@contextlib.contextmanager
def holding_stop_signals() -> Iterator[None]:
    """Block SIGTERM and SIGINT in this thread and in the threads it starts within the block;
    the previous mask is back after it."""
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def wait_for_stop_signal() -> int:
    """Wait until SIGTERM or SIGINT arrives (held by :func:`holding_stop_signals`); its
    number."""
    return signal.sigwait(STOP_SIGNALS)
