"""``cdc-spec``: the project's command line (``cdc-spec sink ...`` runs a sink worker)."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from cdc_support.sinks import cli as sink_cli

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``cdc-spec COMMAND ...`` and run the command; returns the exit status."""
    parser = argparse.ArgumentParser(
        prog="cdc-spec", description="cdc-spec: change data capture, specified by running it."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    sink = sink_cli.add_parser(commands)
    sink.set_defaults(handler=lambda args: sink_cli.run(args, sink))
    args = parser.parse_args(argv)
    return int(args.handler(args))


if __name__ == "__main__":
    raise SystemExit(main())
