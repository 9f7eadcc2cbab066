"""Progress of local Beam runs: workers append one line per finished item to a file of their
own, and the launcher tails those files into one tqdm bar. Works the same in-process and with
``--direct_running_mode multi_processing``; on Dataflow, Beam metrics take over."""

from __future__ import annotations

import os
import threading
import time

from tqdm import tqdm


def record(folder: str | None, *, done: int = 1, failed: int = 0, seconds: float = 0.0) -> None:
    """Called by a worker as items finish: how many, how many of them failed, audio seconds."""
    if folder is None:
        return
    with open(os.path.join(folder, f"{os.getpid()}.log"), "a") as f:
        f.write(f"{done} {failed} {seconds:.3f}\n")


class Monitor:
    """A thread that shows tracks/s, realtime factor and failures so far."""

    def __init__(self, folder: str, total: int | None, desc: str = "tracks"):
        self.folder = folder
        self.bar = tqdm(total=total, desc=desc, unit="trk", dynamic_ncols=True, smoothing=0.1)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._start = time.monotonic()

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
        elapsed = max(1e-9, time.monotonic() - self._start)
        self.bar.set_postfix(failed=failed, realtime=f"{seconds / elapsed:.0f}x", refresh=False)
        self.bar.update(done - self.bar.n)

    def _run(self) -> None:
        while not self._stop.wait(0.5):
            self._poll()

    def __enter__(self) -> Monitor:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self._poll()
        self.bar.close()
