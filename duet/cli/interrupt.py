"""Ctrl-C and SIGTERM (what schedulers send) end any command the same way: the worker
processes it started are stopped, one line says how to go on, and the exit status is 130.

Published outputs are safe: every job publishes in one last step, so an interrupted run leaves
the previous output readable, and the same command line resumes (finished work is skipped).
The handler ends the process from the signal itself rather than unwinding the stack: Beam's
in-process runner can hang while it cleans up a bundle that an exception interrupted."""

from __future__ import annotations

import contextlib
import faulthandler
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator

import psutil

from duet import lease

EXIT_STATUS = 130
MESSAGE = "interrupted; re-run the same command to resume"
SIGNALS = (signal.SIGINT, signal.SIGTERM)


@contextlib.contextmanager
def handled(command: str | None) -> Iterator[None]:
    """Within the block, Ctrl-C and SIGTERM end the command with :func:`exit_interrupted`.
    A command may install its own handler inside (``duet train`` checkpoints first)."""

    def on_signal(signum: int, frame: object) -> None:
        exit_interrupted(command)

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous: list[Callable | int | None] = [signal.signal(s, on_signal) for s in SIGNALS]
    try:
        yield
    finally:
        for s, handler in zip(SIGNALS, previous, strict=True):
            signal.signal(s, handler)


def stop_workers(grace: float = 3.0) -> None:
    """Terminate every process this one started (Beam's worker processes, ffmpeg, DataLoader
    workers), then kill those still alive after ``grace`` seconds."""
    children = psutil.Process().children(recursive=True)
    for child in children:
        with contextlib.suppress(psutil.Error):
            child.terminate()
    _, alive = psutil.wait_procs(children, timeout=grace)
    for child in alive:
        with contextlib.suppress(psutil.Error):
            child.kill()


def exit_interrupted(command: str | None) -> None:
    """Stop the workers, print the one line (with ``DUET_DEBUG``, first where every thread
    was), and end the process with status 130."""
    for s in SIGNALS:
        signal.signal(s, signal.SIG_IGN)
    if os.environ.get("DUET_DEBUG"):
        faulthandler.dump_traceback(sys.stderr)
    stop_workers()
    lease.release_held()
    print(f"\nduet {command}: {MESSAGE}" if command else f"\nduet: {MESSAGE}", file=sys.stderr)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(EXIT_STATUS)
