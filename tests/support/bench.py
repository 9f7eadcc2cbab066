"""What the benchmarks share: synthetic playlist tables with Million Playlist Dataset
statistics (cached on disk), and timing a ``duet`` command with its peak memory."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time

import numpy as np
import psutil
import pyarrow.parquet as pq

from duet.synthetic_playlists import playlists_table


def playlists_file(folder: str, n: int, seed: int = 0) -> str:
    """A synthetic MPD-like playlists table of ``n`` playlists (cached)."""
    path = os.path.join(folder, f"playlists-{n}-{seed}.parquet")
    if not os.path.exists(path):
        pq.write_table(
            playlists_table(n, seed), path + ".tmp", row_group_size=50_000, compression="zstd"
        )
        os.replace(path + ".tmp", path)
    return path


def run_cli(args: list[str], module: str = "duet.cli") -> tuple[float, float]:
    """Wall seconds and peak RSS (GB, whole process tree, sampled every 50 ms) of ``duet ...``
    (or of ``python -m module ...``)."""
    start = time.monotonic()
    proc = psutil.Popen([sys.executable, "-m", module, *args], stdout=subprocess.DEVNULL,
                        stderr=subprocess.PIPE)  # fmt: skip
    peak = 0
    stop = threading.Event()

    def sample():
        nonlocal peak
        while not stop.is_set():
            try:
                rss = proc.memory_info().rss + sum(
                    c.memory_info().rss for c in proc.children(recursive=True)
                )
                peak = max(peak, rss)
            except psutil.Error:
                pass
            time.sleep(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    _, err = proc.communicate()
    stop.set()
    sampler.join()
    if proc.returncode:
        raise RuntimeError(f"{module} {' '.join(args)} failed:\n{err.decode()[-2000:]}")
    return time.monotonic() - start, peak / 1e9


def pairs_cli(data: str, playlists: str, topk: str, epochs: int) -> dict:
    """``duet pairs`` CO + TCO over ``epochs`` through the CLI: wall seconds (``s``), peak RSS
    (``gb``), and from the run's marker each strategy's mean pairs and coverage per epoch
    (``co_pairs``, ``tco_coverage``, …), the eligible tracks and the epochs written."""
    out: dict = {}
    out["s"], out["gb"] = run_cli([
        "pairs", "--data", data, "--playlists", playlists, "--topk", topk,
        "--strategies", "playlist_co,playlist_tco", "--epochs", f"0:{epochs}",
        "--run-id", f"bench-{time.time_ns()}",
    ])  # fmt: skip
    with open(os.path.join(data, "pairs", "LATEST")) as f:
        run_id = f.read()
    with open(os.path.join(data, "pairs", run_id, "_SUCCESS")) as f:
        stats = json.load(f)["stats"]
    for name in ("co", "tco"):
        per_epoch = list(stats[f"playlist_{name}"].values())
        out[f"{name}_pairs"] = float(np.mean([s["pairs"] for s in per_epoch]))
        out[f"{name}_coverage"] = float(np.mean([s["coverage"] for s in per_epoch]))
        out["tracks"] = per_epoch[0]["eligible"]
    out["epochs_written"] = sum(len(v) for v in stats.values())
    return out
