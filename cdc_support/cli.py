"""``cdc-spec``: the project's command line.

``cdc-spec sink ...`` runs a sink worker; ``cdc-spec collector ...`` serves the harness
metrics (:mod:`cdc_support.observability.cli`); ``cdc-spec reader ...`` runs a native CDC
reader that appends events to a file (:mod:`cdc_support.reader_cli`); ``up``, ``status``,
``down``, ``generate``, ``report`` and ``bench`` live with the stack
(:mod:`pytest_cdc.stack.cli`), imported only when the parser is built, so importing this module
needs nothing from pytest_cdc.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import NoReturn

from cdc_support import reader_cli
from cdc_support.observability import cli as collector_cli
from cdc_support.sinks import cli as sink_cli

__all__ = ["OneLineParser", "build_parser", "main"]


class OneLineParser(argparse.ArgumentParser):
    """An ArgumentParser whose usage errors are one line naming the fix (exit status 2)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    """``cdc-spec`` and its commands."""
    from pytest_cdc.stack import cli as stack_cli  # light: the stack itself loads on use

    parser = OneLineParser(
        prog="cdc-spec", description="cdc-spec: change data capture, specified by running it."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    sink = sink_cli.add_parser(commands)
    sink.set_defaults(handler=lambda args: sink_cli.run(args, sink))
    stack_cli.add_parsers(commands)
    collector_cli.add_parser(commands)
    reader_cli.add_parser(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``cdc-spec COMMAND ...`` and run the command; returns the exit status."""
    args = build_parser().parse_args(argv)
    return int(args.handler(args))


if __name__ == "__main__":
    sys.exit(main())
