"""Features import benchmark, side by side in one run, on a generated Melon tree
(``arena_mel/<id // 1000>/<id>.npy``, float32 ``(48, frames)``, 20 000 arrays by default):

- the naive loop a researcher writes: ``np.load`` each file, transpose, cast to float16,
  ``np.save`` into one ``tarfile`` (no checks, no index, no statistics, no failures);
- ``duet features import`` through Beam: one worker, and two worker processes;
- both again with the tree in the page cache (the CPU cost alone);
- peak RSS of the import (one worker, in a child process);
- the projected time for the whole Melon Playlist Dataset (649 091 arrays) on one machine and
  on Dataflow, from the measured per-array cost and the stated machine assumptions.

The cold runs start with the source files evicted from the page cache (``posix_fadvise``),
so each reads from disk as a first import would; the warm runs follow a cold one. Disk: the tree (7.2 GB at the defaults) plus one
output (3.6 GB) at a time; everything is deleted at the end.

Run: ``make bench`` or ``python -m tests.benchmarks.bench_features [--arrays 20000] [--frames 1876]``.
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from duet.pipelines.beam_io import make_pipeline
from duet.pipelines.features import job as features
from duet.pipelines.features.profile import presets

MELON_SONGS = 649_091
MELON_FRAMES = 1_876
PROCESSES = ["--direct_num_workers", "2", "--direct_running_mode", "multi_processing"]
MACHINE = {"cores": 16, "disk_mb_s": 1000.0}
"""One machine: a 16-core host reading local NVMe at 1 GB/s (its arrays copied there first)."""
DATAFLOW = {"workers": 32, "vcpus": 4, "gcs_mb_s_per_worker": 200.0, "startup_s": 300.0}
"""Dataflow: 32 n1-standard-4 workers (the Makefile's MAX_WORKERS), ~200 MB/s of GCS reads per
worker with read-ahead, about 5 minutes to start workers and list the bucket."""


def make_tree(root: str, count: int, frames: int, seed: int = 0) -> int:
    """``count`` float32 arrays in Melon's layout (lengths ``frames`` ± 5 %); returns bytes."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(int(frames * 0.95), frames + 1, size=count)
    base = rng.normal(-40, 15, size=(48, frames + 1)).astype(np.float32)

    def one(i: int) -> int:
        song = i * 31 + 7
        path = os.path.join(root, str(song // 1000), f"{song}.npy")
        os.makedirs(os.path.dirname(path), exist_ok=True)
        array = np.roll(base, i % 97, axis=1)[:, : lengths[i]] + np.float32(i % 11)
        np.save(path, array)
        return os.path.getsize(path)

    with ThreadPoolExecutor(2) as pool:
        return sum(pool.map(one, range(count)))


def evict(root: str) -> None:
    """Drop the tree's pages from the page cache, so the next run reads from disk."""
    for folder, _, names in os.walk(root):
        for name in names:
            fd = os.open(os.path.join(folder, name), os.O_RDONLY)
            try:
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            finally:
                os.close(fd)


def naive(root: str, out: str, cold: bool = True) -> float:
    """np.load + transpose + float16 + np.save into one tar, file by file."""
    if cold:
        evict(root)
    start = time.perf_counter()
    with tarfile.open(out, "w") as tar:
        for folder, _, names in sorted(os.walk(root)):
            for name in sorted(names):
                array = np.load(os.path.join(folder, name))
                buf = io.BytesIO()
                np.save(buf, np.ascontiguousarray(array.T.astype(np.float16)))
                info = tarfile.TarInfo(name)
                info.size = buf.tell()
                buf.seek(0)
                tar.addfile(info, buf)
    return time.perf_counter() - start


def job(root: str, out: str, beam_args: list[str], cold: bool = True) -> float:
    """The real import through Beam, end to end (pipeline start-up included)."""
    if cold:
        evict(root)
    start = time.perf_counter()
    pipeline = make_pipeline(beam_args)
    features.build(pipeline, features.FeaturesJob(input=root, output=out,
                                                  profile=presets()["melon"]))  # fmt: skip
    pipeline.run().wait_until_finish()
    return time.perf_counter() - start


def peak_rss_mb(root: str, out: str) -> float:
    """Peak RSS of a one-worker import in a child process (the CLI's own process)."""
    evict(root)
    code = ("import resource, sys; from duet.cli import main; main(sys.argv[1:]); "
            "print('PEAK', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)")  # fmt: skip
    result = subprocess.run([sys.executable, "-c", code, "features", "import", "--input", root,
                             "--output", out], capture_output=True, text=True, check=True)  # fmt: skip
    return int(result.stdout.split("PEAK")[-1].split()[0]) / 1024


def projections(r: dict) -> dict:
    """Projected wall time for Melon's 649 091 arrays (see MACHINE and DATAFLOW)."""
    per_array = r["job1_warm_s"] / r["arrays"]  # CPU of one core, start-up included
    efficiency = min(1.0, r["procs_x"] / 2)  # measured scaling from 1 to 2 processes
    source_mb = MELON_SONGS * (128 + 48 * MELON_FRAMES * 4) / 1e6
    cpu_one = MELON_SONGS * per_array / (MACHINE["cores"] * efficiency)
    io_one = source_mb / MACHINE["disk_mb_s"]
    vcpus = DATAFLOW["workers"] * DATAFLOW["vcpus"]
    cpu_df = MELON_SONGS * per_array / (vcpus * efficiency)
    io_df = source_mb / (DATAFLOW["workers"] * DATAFLOW["gcs_mb_s_per_worker"])
    return {"per_array_ms": per_array * 1e3, "efficiency": efficiency, "source_gb": source_mb / 1e3,
            "one_machine_s": max(cpu_one, io_one), "one_machine_cpu_s": cpu_one, "one_machine_io_s": io_one,
            "dataflow_s": DATAFLOW["startup_s"] + max(cpu_df, io_df), "dataflow_cpu_s": cpu_df,
            "dataflow_io_s": io_df}  # fmt: skip


def run(arrays: int = 20_000, frames: int = MELON_FRAMES, work: str | None = None) -> dict:
    r: dict = {"arrays": arrays, "frames": frames}
    base = tempfile.mkdtemp(prefix="duet-bench-features-", dir=work)
    try:
        tree = os.path.join(base, "arena_mel")
        need = arrays * (128 + 48 * frames * 6)
        if shutil.disk_usage(base).free < 1.5 * need:
            raise SystemExit(f"bench_features: needs {need / 1e9:.1f} GB free in {base}")
        r["source_bytes"] = make_tree(tree, arrays, frames)
        for key, cold in (("naive_s", True), ("naive_warm_s", False)):
            r[key] = naive(tree, os.path.join(base, "naive.tar"), cold)
            os.remove(os.path.join(base, "naive.tar"))
        for key, args, cold in (("job1_s", [], True), ("job1_warm_s", [], False),
                                ("job2_s", PROCESSES, True)):  # fmt: skip
            out = os.path.join(base, "data")
            r[key] = job(tree, out, args, cold)
            shutil.rmtree(out)
        r["rss_mb"] = peak_rss_mb(tree, os.path.join(base, "rss"))
    finally:
        shutil.rmtree(base, ignore_errors=True)
    r["vs_naive"] = r["naive_s"] / r["job1_s"]
    r["vs_naive_2"] = r["naive_s"] / r["job2_s"]
    r["vs_naive_warm"] = r["naive_warm_s"] / r["job1_warm_s"]
    r["procs_x"] = r["job1_s"] / r["job2_s"]
    r["mb_s"] = r["source_bytes"] / 1e6 / r["job1_s"]
    r.update(projections(r))
    return r


def _duration(seconds: float) -> str:
    return f"{seconds / 3600:.1f} h" if seconds >= 3600 else f"{seconds / 60:.1f} min"


def report(r: dict) -> str:
    n = r["arrays"]
    return "\n".join([
        f"features import benchmark: {n:,} Melon arrays, float32 (48, ~{r['frames']}), "
        f"{r['source_bytes'] / 1e9:.2f} GB, read cold",
        f"  naive np.load + tarfile loop        {r['naive_s']:8.2f} s  ({n / r['naive_s']:.0f} arrays/s)",
        f"  duet features import, 1 worker      {r['job1_s']:8.2f} s  ({n / r['job1_s']:.0f} arrays/s, {r['mb_s']:.0f} MB/s)",
        f"  duet features import, 2 processes   {r['job2_s']:8.2f} s  ({n / r['job2_s']:.0f} arrays/s)",
        f"  ratio vs naive, 1 worker            {r['vs_naive']:8.2f} x",
        f"  ratio vs naive, 2 processes         {r['vs_naive_2']:8.2f} x",
        f"  warm page cache: naive {r['naive_warm_s']:.2f} s, import (1 worker) {r['job1_warm_s']:.2f} s, "
        f"ratio {r['vs_naive_warm']:.2f} x (CPU cost: checks, sha256, statistics, index)",
        f"  2 processes vs 1                    {r['procs_x']:8.2f} x",
        f"  peak RSS, 1 worker                  {r['rss_mb']:8.0f} MB",
        f"projected for Melon ({MELON_SONGS:,} arrays, {r['source_gb']:.0f} GB; "
        f"{r['per_array_ms']:.2f} ms per array and core, scaling {r['efficiency']:.2f}):",
        f"  one machine, {MACHINE['cores']} cores, {MACHINE['disk_mb_s']:.0f} MB/s disk   "
        f"{_duration(r['one_machine_s'])} (CPU {_duration(r['one_machine_cpu_s'])}, disk {_duration(r['one_machine_io_s'])})",
        f"  Dataflow, {DATAFLOW['workers']} x {DATAFLOW['vcpus']} vCPU                "
        f"{_duration(r['dataflow_s'])} (start-up {_duration(DATAFLOW['startup_s'])}, CPU "
        f"{_duration(r['dataflow_cpu_s'])}, GCS {_duration(r['dataflow_io_s'])})",
    ])  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--arrays", type=int, default=20_000)
    parser.add_argument("--frames", type=int, default=MELON_FRAMES)
    parser.add_argument("--work", default=None, help="folder for the tree (default: the temp dir)")
    args = parser.parse_args()
    print(report(run(args.arrays, args.frames, args.work)))


if __name__ == "__main__":
    main()
