"""Costs for the scale-out plan (README): ``duet playlists`` on Million Playlist Dataset
slices with MPD statistics, through the CLI, per 1 000 playlists and extrapolated to 1 M.
(Shards, co-occurrence and pairs costs come from their own benchmarks.)

Run: ``python -m tests.benchmarks.bench_scale [--playlists 20000]``.
"""

from __future__ import annotations

import argparse
import os
import tempfile

from duet.synthetic_playlists import write_mpd_slices
from tests.support.bench import run_cli


def run(playlists: int = 20_000, cache: str | None = None) -> dict:
    cache = cache or os.path.join(tempfile.gettempdir(), "duet-bench-scale")
    slices = os.path.join(cache, f"mpd-{playlists}")
    if not os.path.exists(os.path.join(slices, "done")):
        write_mpd_slices(slices, playlists)
        open(os.path.join(slices, "done"), "w").close()
    size = sum(os.path.getsize(os.path.join(slices, f)) for f in os.listdir(slices))
    seconds, gb = run_cli(["playlists", "--input", slices, "--format", "mpd",
                           "--output", os.path.join(cache, f"out-{playlists}")])  # fmt: skip
    return {"playlists": playlists, "json_gb": size / 1e9, "seconds": seconds, "peak_gb": gb,
            "per_million_s": seconds * 1_000_000 / playlists}  # fmt: skip


def report(r: dict) -> str:
    return (f"duet playlists on {r['playlists']:,} MPD playlists ({r['json_gb']:.2f} GB of JSON): "
            f"{r['seconds']:.1f} s, peak {r['peak_gb']:.2f} GB -> {r['per_million_s'] / 60:.0f} "
            "min per 1 M playlists on this machine")  # fmt: skip


# ---------------------------------------------------------------- as tests


def test_ingestion_cost_harness_runs(tmp_path):
    results = run(playlists=300, cache=str(tmp_path))
    assert results["seconds"] > 0 and results["json_gb"] > 0
    assert "per 1 M playlists" in report(results)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--playlists", type=int, default=20_000)
    print(report(run(parser.parse_args().playlists)), flush=True)
