"""Stop signals held for a block only: whoever goes on afterwards (a test calling a command's
``run``) must not pass SIGTERM blocked on to the children it starts."""

from __future__ import annotations

import argparse
import signal
import socket

from cdc_support.observability import cli as collector_cli
from cdc_support.stopping import STOP_SIGNALS, holding_stop_signals


def _blocked() -> set[int]:
    return set(signal.pthread_sigmask(signal.SIG_BLOCK, []))


def test_the_block_holds_the_stop_signals_and_puts_the_mask_back() -> None:
    before = _blocked()
    with holding_stop_signals():
        assert set(STOP_SIGNALS) <= _blocked()
    assert _blocked() == before


def test_a_collector_that_cannot_bind_its_port_leaves_the_signals_unblocked() -> None:
    parser = argparse.ArgumentParser()
    commands = parser.add_subparsers(dest="command")
    collector_cli.add_parser(commands)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        args = parser.parse_args(
            [
                "collector",
                "--port",
                str(port),
                "--postgres-dsn",
                "postgresql://u@127.0.0.1:1/db",
                "--kafka-bootstrap",
                "127.0.0.1:1",
            ]
        )
        assert args.handler(args) == collector_cli.EXIT_CONFIG
    assert not set(STOP_SIGNALS) & _blocked()
