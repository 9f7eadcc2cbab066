"""The one base class of errors that are the user's to fix.

Library code raises a :class:`DuetError` subclass with a one-line message saying what is wrong
and what to do; the command line prints it as ``duet <command>: <message>`` and exits with the
error's ``exit_status`` (1; 2 for a command line that cannot be parsed). Anything else is a bug:
one line too, its traceback with ``--debug`` or ``DUET_DEBUG=1``.
"""

from __future__ import annotations


class DuetError(Exception):
    """A problem with the user's input, options or data, explained in one line."""

    exit_status = 1


class UsageError(DuetError):
    """A command line that cannot be parsed: a missing or unknown option, a bad value."""

    exit_status = 2


class NothingProduced(DuetError):
    """A job whose result would be empty or meaningless: nothing is published."""
