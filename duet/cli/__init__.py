"""The ``duet`` command line: one sub-command per job; Beam options pass through untouched.

One module per command (``duet.cli.shards``, ``duet.cli.pairs``, ...) turns its options into
one call of a library function; ``duet.cli.common`` holds what they share (the Beam-command
runner, option parsers, the table printer) and ``duet.cli.commands`` the command table.
"""

from __future__ import annotations

import logging
import os
import sys

from duet.cli import interrupt
from duet.cli.commands import build_parser, command_of, run_command

__all__ = ["build_parser", "main"]


class _QuietBeamImports(logging.Filter):
    """Beam logs a warning about the optional BigQuery client on every import; drop it."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "apitools not found" not in record.getMessage()


def main(argv: list[str] | None = None) -> int:
    """The ``duet`` command: logging set up, then one command line run (exit status). Ctrl-C
    or SIGTERM ends the process at once with status 130 (see :mod:`duet.cli.interrupt`)."""
    logging.basicConfig(level=os.environ.get("DUET_LOG_LEVEL", "WARNING"),
                        format="%(levelname)s %(name)s: %(message)s")  # fmt: skip
    logging.getLogger().addFilter(_QuietBeamImports())
    argv = sys.argv[1:] if argv is None else list(argv)
    command = command_of(argv)
    try:
        with interrupt.handled(command):
            return run_command(argv)
    except KeyboardInterrupt:  # raised before the handler was installed or by a command's own
        interrupt.exit_interrupted(command)
        raise
