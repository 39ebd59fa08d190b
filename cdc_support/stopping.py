"""Waiting for SIGTERM/SIGINT in a process whose work runs in other threads.

A Python signal handler runs in the main thread, and only when that thread next runs Python
code. The kernel may deliver the signal to any thread that does not block it; a main thread
waiting on a lock is then not woken, and the handler can wait for as long as that wait lasts
(an hour, in the collector's case). So such a process blocks the stop signals before it
starts any thread (threads inherit the mask) and receives them with ``sigwait``::

    hold_stop_signals()          # first, before any thread starts
    ...start the threads...
    wait_for_stop_signal()       # returns the signal's number
"""

from __future__ import annotations

import signal

__all__ = ["STOP_SIGNALS", "hold_stop_signals", "wait_for_stop_signal"]

STOP_SIGNALS = frozenset({signal.SIGTERM, signal.SIGINT})


def hold_stop_signals() -> None:
    """Block SIGTERM and SIGINT in this thread and in every thread it starts from now on."""
    signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)


def wait_for_stop_signal() -> int:
    """Wait until SIGTERM or SIGINT arrives (held by :func:`hold_stop_signals`); its number."""
    return signal.sigwait(STOP_SIGNALS)
