"""The one base class of errors that are the user's to fix.

Library code raises a :class:`DuetError` subclass with a one-line message saying what is wrong
and what to do; the command line prints it as ``duet <command>: <message>`` and exits 1.
Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations


class DuetError(Exception):
    """A problem with the user's input, options or data, explained in one line."""
