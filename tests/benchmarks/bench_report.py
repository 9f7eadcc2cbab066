"""Report benchmark at Million Playlist Dataset scale, side by side in one process run
(issue target in brackets):

- the root: 1 000 000 synthetic playlists with MPD statistics (``duet.synthetic_playlists``,
  ~66 M entries, ~2.4 M tracks) published as ``playlists.parquet``, its co-occurrence top-10
  and a 50-epoch Playlist CO + TCO pair run, both made by the CLI (cached between runs);
- ``duet report`` on it through the CLI (process start and plotting included)   [<= 60 s]
- against a naive full scan that computes the same numbers from every row of every table it
  shows (every playlist, every top-10 row, every epoch of the run) without plotting, and the
  ratio of the two.

Run: ``make bench`` or ``python -m tests.benchmarks.bench_report [--playlists 1000000]``.
The root is built once under $TMPDIR/duet-bench-report (≈ 4 min, peak ≈ 6.5 GB in the
co-occurrence job); the naive scan peaks at a few GB.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time

import numpy as np
import psutil
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from duet import layout, publish
from duet.pipelines.pairs.runs import latest_run
from duet.report.pairs import distinct, pair_keys
from tests.benchmarks.bench_cooccurrence import playlists_file, run_cli


def build_root(cache: str, playlists: int, epochs: int) -> str:
    """A dataset root with published playlists, co-occurrence top-10 and a pair run."""
    root = os.path.join(cache, f"root-{playlists}-{epochs}")
    if publish.read_success(layout.at(root, layout.PLAYLISTS)) is None:
        source = playlists_file(cache, playlists)
        folder = layout.at(root, layout.PLAYLISTS)
        name = publish.tagged(layout.part_name(0), publish.tag_of(source))
        part = os.path.join(folder, name)
        os.makedirs(folder, exist_ok=True)
        shutil.copyfile(source, part)
        meta = pq.read_metadata(part)
        batches = pq.ParquetFile(part).iter_batches(batch_size=50_000, columns=["track_ids"])
        entries = sum(pc.sum(pc.list_value_length(b.column(0))).as_py() for b in batches)
        pa.default_memory_pool().release_unused()  # this process waits while the jobs run
        publish.commit(folder, layout.summary(
            "playlists", format_version=1,
            config={"format": "synthetic", "parts": 1, "tracks": None},
            inputs={"files": layout.input_of(source)},
            counts={"files": 1, "playlists": meta.num_rows, "entries": entries,
                    "entries_read": entries, "tracks_with_meta": 0, "failures": 0},
            dropped={},
        ), publish.entry(layout.part_name(0), name, os.path.getsize(part)))  # fmt: skip
    if publish.read_success(layout.at(root, layout.COOC["playlist"])) is None:
        run_cli(["cooccurrence", "--playlists", layout.at(root, layout.PLAYLISTS), "--output",
                 root])  # fmt: skip
    if not os.path.exists(layout.at(root, layout.LATEST)):
        run_cli(["pairs", "--data", root, "--strategies", "playlist_co,playlist_tco",
                 "--epochs", f"0:{epochs}"])  # fmt: skip
    return root


def naive_scan(root: str) -> dict:
    """The same numbers as the report, from every row of every column: playlist lengths and
    track popularity over all playlists, neighbours per track and count quantiles per rank over
    all top-10 rows, and pairs repeated between every two consecutive epochs of the run (with
    the report's own vectorised pair hashing, so the ratio measures what is read, not Python)."""
    out: dict = {}
    lists = pq.read_table(layout.at(root, layout.PLAYLISTS), columns=["track_ids"])
    lists = lists.column("track_ids")  # chunked: 66 M ids are more than one 2 GB string array
    lengths = pc.list_value_length(lists).to_numpy()
    out["length_hist"] = np.histogram(lengths, bins=60)[0].tolist()
    counts = pc.value_counts(pc.list_flatten(lists)).field("counts").to_numpy()
    out["tracks"], out["top_track"] = len(counts), int(counts.max())
    del lists
    topk = pq.read_table(layout.at(root, f"{layout.COOC['playlist']}/{layout.TOPK}"))
    per_track = pc.value_counts(topk.column("track_id")).field("counts").to_numpy()
    out["neighbours"] = np.bincount(per_track).tolist()
    rank, count = topk.column("rank").to_numpy(), topk.column("count").to_numpy()
    out["quantiles"] = [np.percentile(count[rank == r], [10, 25, 50, 75, 90]).tolist()
                        for r in range(int(rank.max()) + 1)]  # fmt: skip
    del topk
    run = latest_run(root)
    stats = publish.read_success(layout.at(root, layout.pair_run(run)))["stats"]
    out["overlap"] = {}
    for strategy, epochs in stats.items():
        previous = None
        for epoch in sorted(int(e) for e in epochs):
            table = pq.read_table(layout.at(root, layout.pair_epoch(run, strategy, epoch)))
            pairs = distinct(pair_keys(table))
            if previous is not None:
                shared = len(np.intersect1d(pairs, previous, assume_unique=True))
                out["overlap"][f"{strategy}/{epoch}"] = shared / max(1, len(pairs))
            previous = pairs
    return out


def timed_module(args: list[str]) -> tuple[float, float]:
    """Wall seconds and peak RSS (GB) of ``python -m tests.benchmarks.bench_report ...``."""
    start = time.monotonic()
    proc = psutil.Popen([sys.executable, "-m", "tests.benchmarks.bench_report", *args],
                        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # fmt: skip
    peak, stop = 0, threading.Event()

    def sample():
        nonlocal peak
        while not stop.is_set():
            with contextlib.suppress(psutil.Error):
                peak = max(peak, proc.memory_info().rss)
            time.sleep(0.05)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    _, err = proc.communicate()
    stop.set()
    thread.join()
    if proc.returncode:
        raise RuntimeError(f"naive scan failed:\n{err.decode()[-2000:]}")
    return time.monotonic() - start, peak / 1e9


def run(playlists: int = 1_000_000, epochs: int = 50, cache: str | None = None) -> dict:
    cache = cache or os.path.join(tempfile.gettempdir(), "duet-bench-report")
    os.makedirs(cache, exist_ok=True)
    start = time.monotonic()
    root = build_root(cache, playlists, epochs)
    r: dict = {"playlists": playlists, "epochs": epochs, "build_s": time.monotonic() - start}
    out = os.path.join(cache, f"report-{playlists}-{epochs}")
    r["report_s"], r["report_gb"] = run_cli(["report", "--data", root, "--output", out])
    with open(os.path.join(out, "report.json")) as f:
        body = json.load(f)
    r["sections"] = {k: v["status"] for k, v in body["sections"].items()}
    r["section_s"] = {k: v["seconds"] for k, v in body["sections"].items()}
    r["html_mb"] = os.path.getsize(os.path.join(out, "index.html")) / 1e6
    paper = body["sections"]["pairs"]["tables"]["paper"]["rows"]
    r["paper"] = {row[0]: (row[1], row[4], row[6]) for row in paper}
    r["naive_s"], r["naive_gb"] = timed_module(["--naive", root])
    return r


def report(r: dict) -> str:
    slowest = sorted(r["section_s"].items(), key=lambda kv: -kv[1])[:3]
    lines = [
        f"root: {r['playlists']:,} playlists, top-10, {r['epochs']}-epoch CO + TCO run "
        f"(built or reused in {r['build_s']:.0f} s)",
        f"duet report through the CLI: {r['report_s']:.1f} s, peak RSS {r['report_gb']:.1f} GB, "
        f"page {r['html_mb']:.1f} MB [target <= 60 s]; slowest sections: "
        + ", ".join(f"{k} {v:.1f} s" for k, v in slowest),
        f"naive full scan of the same tables (numbers only, no plots): {r['naive_s']:.1f} s, "
        f"peak RSS {r['naive_gb']:.1f} GB",
        f"ratio: {r['naive_s'] / r['report_s']:.1f}x",
    ]
    for strategy, (paper, ours, coverage) in r["paper"].items():
        if ours is not None:
            lines.append(f"  {strategy}: {ours:,.0f} pairs/epoch (coverage {coverage} %), paper "
                         f"{paper:,}")  # fmt: skip
    return "\n".join(lines)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--playlists", type=int, default=1_000_000)
    parser.add_argument("--epochs", type=int, default=50)
    parser.add_argument("--naive", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.naive:
        naive_scan(args.naive)
    else:
        print(report(run(args.playlists, args.epochs)), flush=True)
