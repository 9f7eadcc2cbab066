"""The one base class of errors that are the user's to fix.

Library code raises a :class:`DuetError` subclass with a one-line message saying what is wrong
and what to do; the command line prints it as ``duet <command>: <message>`` and exits with the
error's ``exit_status`` (1; 2 for a command line that cannot be parsed). Anything else is a bug:
one line too, its traceback with ``--debug`` or ``DUET_DEBUG=1``.
"""

from __future__ import annotations

import re
import sys


class DuetError(Exception):
    """A problem with the user's input, options or data, explained in one line."""

    exit_status = 1


class UsageError(DuetError):
    """A command line that cannot be parsed: a missing or unknown option, a bad value."""

    exit_status = 2


class NothingProduced(DuetError):
    """A job whose result would be empty or meaningless: nothing is published."""


_RAISED = re.compile(r"^([\w.]+)\.(\w+): (.+?)(?: \[while running '[^']*'\])?$")


def user_message(exc: BaseException) -> str | None:
    """The one-line message of the DuetError behind ``exc``, or None when there is none.

    A DuetError raised inside a Beam step reaches the command either chained (in-process
    runner) or only as the text of its traceback inside a RuntimeError (runners that run steps
    on worker threads or processes): there, the last ``module.Class: message`` line names it,
    and the class is looked up in its module (already imported by the job) to check its kind."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, DuetError):
            return first_line(str(seen))
        seen = seen.__cause__ or seen.__context__
    for line in reversed(str(exc).splitlines()):
        match = _RAISED.match(line.strip())
        if match is None:
            continue
        module = sys.modules.get(match.group(1))
        kind = getattr(module, match.group(2), None) if module else None
        if isinstance(kind, type) and issubclass(kind, DuetError):
            return match.group(3)
        return None
    return None


def first_line(text: str) -> str:
    """The first line of an error's text, without Beam's ``[while running '…']`` suffix."""
    line = text.splitlines()[0] if text else text
    return re.sub(r" \[while running '[^']*'\]$", "", line)
