"""Progress of local runs: workers append one line per finished item to a file of their own,
and the launcher tails those files into one display. Works the same in-process and with
``--direct_running_mode multi_processing``; on Dataflow, Beam metrics take over.

The display is a tqdm bar on a terminal; with ``--quiet`` (``DUET_QUIET=1``) or when stderr is
not a terminal (a log file, a scheduler) it is one plain line every ``DUET_PROGRESS_EVERY``
seconds (default 30) and one at the end.

A job reports items in one of two ways: :func:`record` with the folder its options carry
(``progress_dir``), or :func:`tick`, which finds the folder of the :func:`monitored` block
around the run in the environment (worker processes inherit it)."""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Iterator

from tqdm import tqdm

ENV = "DUET_PROGRESS_DIR"
"""The folder workers of the running command report to (set by :func:`monitored`)."""


def record(folder: str | None, *, done: int = 1, failed: int = 0, seconds: float = 0.0) -> None:
    """Called by a worker as items finish: how many, how many of them failed, audio seconds."""
    if folder is None:
        return
    with open(os.path.join(folder, f"{os.getpid()}.log"), "a") as f:
        f.write(f"{done} {failed} {seconds:.3f}\n")


def tick(done: int = 1, failed: int = 0) -> None:
    """Report finished items to the command's :func:`monitored` block, if any."""
    record(os.environ.get(ENV), done=done, failed=failed)


def plain() -> bool:
    """Whether progress is shown as periodic lines rather than a bar."""
    return bool(os.environ.get("DUET_QUIET")) or not sys.stderr.isatty()


class Monitor:
    """A thread that shows items/s, failures so far and (for audio) the realtime factor."""

    def __init__(self, folder: str, total: int | None, desc: str = "tracks", unit: str = "trk"):
        self.folder, self.total, self.desc, self.unit = folder, total, desc, unit
        self.plain = plain()
        self.every = float(os.environ.get("DUET_PROGRESS_EVERY", "30"))
        self.bar = tqdm(total=total, desc=desc, unit=unit, dynamic_ncols=True, smoothing=0.1,
                        disable=self.plain)  # fmt: skip
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._start = time.monotonic()
        self._said = self._start
        self.done = self.failed = 0
        self.seconds = 0.0

    def _poll(self) -> None:
        done = failed = 0
        seconds = 0.0
        for name in os.listdir(self.folder):
            with open(os.path.join(self.folder, name)) as f:
                for line in f:
                    parts = line.split()
                    if len(parts) != 3:
                        continue
                    done += int(parts[0])
                    failed += int(parts[1])
                    seconds += float(parts[2])
        self.done, self.failed, self.seconds = done, failed, seconds
        elapsed = max(1e-9, time.monotonic() - self._start)
        postfix: dict[str, object] = {"failed": failed}
        if seconds:
            postfix["realtime"] = f"{seconds / elapsed:.0f}x"
        self.bar.set_postfix(postfix, refresh=False)
        self.bar.update(done - self.bar.n)

    def line(self) -> str:
        """The plain progress line: ``tracks: 120/1000 (12 %), 35.2 trk/s, 0 failed, 34 s``."""
        elapsed = max(1e-9, time.monotonic() - self._start)
        share = f"/{self.total:,} ({100 * self.done / self.total:.0f} %)" if self.total else ""
        rate = f"{self.done / elapsed:.1f} {self.unit}/s"
        return f"{self.desc}: {self.done:,}{share}, {rate}, {self.failed} failed, {elapsed:.0f} s"

    def _run(self) -> None:
        while not self._stop.wait(0.5):
            self._poll()
            if self.plain and time.monotonic() - self._said >= self.every:
                self._said = time.monotonic()
                print(self.line(), file=sys.stderr, flush=True)

    def __enter__(self) -> Monitor:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self._poll()
        self.bar.close()
        if self.plain:
            print(self.line(), file=sys.stderr, flush=True)


@contextlib.contextmanager
def monitored(total: int | None, desc: str, unit: str = "it") -> Iterator[Monitor]:
    """Show the progress that workers report with :func:`tick` during the block."""
    folder = tempfile.mkdtemp(prefix="duet-progress-")
    previous = os.environ.get(ENV)
    os.environ[ENV] = folder
    try:
        with Monitor(folder, total, desc=desc, unit=unit) as monitor:
            yield monitor
    finally:
        if previous is None:
            os.environ.pop(ENV, None)
        else:
            os.environ[ENV] = previous
        shutil.rmtree(folder, ignore_errors=True)


def steps(items, total: int | None = None, desc: str = "steps", unit: str = "it"):
    """``items`` with progress shown as they are consumed, in this process (a training loop's
    epochs, a probe's folds): a tqdm bar on a terminal, periodic lines otherwise."""
    with monitored(total if total is not None else _len(items), desc, unit):
        for item in items:
            yield item
            tick()


def _len(items) -> int | None:
    try:
        return len(items)
    except TypeError:
        return None
