"""The ``duet`` command line: one sub-command per job; Beam options pass through untouched.

One module per command (``duet.cli.shards``, ``duet.cli.pairs``, ...) turns its options into
one call of a library function; ``duet.cli.common`` holds what they share (the Beam-command
runner, option parsers, the table printer) and ``duet.cli.commands`` the command table.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import TextIO

from duet.cli import interrupt
from duet.cli.commands import build_parser, command_of, run_command
from duet.errors import user_message

__all__ = ["build_parser", "main"]


class _QuietBeamImports(logging.Filter):
    """Beam logs a warning about the optional BigQuery client on every import; drop it."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "apitools not found" not in record.getMessage()


class _QuietUserErrors(logging.Filter):
    """Beam logs the traceback of every exception that ends a step; a user's mistake (a
    DuetError) is printed once, as one line, by the command instead."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not record.name.startswith("apache_beam") or os.environ.get("DUET_DEBUG"):
            return True
        error = record.exc_info[1] if record.exc_info else None
        if error is not None and user_message(error) is not None:
            return False
        return user_message(RuntimeError(record.getMessage())) is None


class _QuietStderr:
    """sys.stderr, less the tracebacks Beam's worker prints itself (``print(traceback,
    file=sys.stderr)`` in ``sdk_worker._execute``, beside its log record) when they end in a
    user's mistake (a DuetError), which the command prints once as one line."""

    def __init__(self, stream: TextIO):
        self.stream = stream

    def write(self, text: str) -> int:
        if text.startswith("Traceback (most recent call last):") and not os.environ.get(
            "DUET_DEBUG"
        ) and user_message(RuntimeError(text)) is not None:  # fmt: skip
            return len(text)
        return self.stream.write(text)

    def __getattr__(self, name: str):
        return getattr(self.stream, name)


def main(argv: list[str] | None = None) -> int:
    """The ``duet`` command: logging set up, then one command line run (exit status). Ctrl-C
    or SIGTERM ends the process at once with status 130 (see :mod:`duet.cli.interrupt`)."""
    logging.basicConfig(level=os.environ.get("DUET_LOG_LEVEL", "WARNING"),
                        format="%(levelname)s %(name)s: %(message)s")  # fmt: skip
    for handler in logging.getLogger().handlers:
        for quiet in (_QuietBeamImports(), _QuietUserErrors()):
            if not any(type(f) is type(quiet) for f in handler.filters):
                handler.addFilter(quiet)
    argv = sys.argv[1:] if argv is None else list(argv)
    command = command_of(argv)
    stderr = sys.stderr
    sys.stderr = _QuietStderr(stderr)
    try:
        with interrupt.handled(command):
            return run_command(argv)
    except KeyboardInterrupt:  # raised before the handler was installed or by a command's own
        interrupt.exit_interrupted(command)
        raise
    finally:
        sys.stderr = stderr
