"""CF throughput, side by side in one process run: WARP (LightFM, as Ferraro et al. ran it)
against implicit's BPR (and ALS for context) on the same 100 000-playlist subset with MPD
statistics, same factors (300), one epoch each, all cores. Also one epoch of playlist Word2Vec
with the paper's whole-playlist window, for the cost table.

Run: ``make bench`` or ``python -m tests.benchmarks.bench_embeddings [--playlists N]``.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import pyarrow.parquet as pq
import pytest

from duet.pipelines.tables import cf, w2v
from tests.support.bench import playlists_file


def run(playlists: int = 100_000, factors: int = 300, cache: str | None = None,
        word2vec: bool = True) -> dict:  # fmt: skip
    cache = cache or os.path.join(tempfile.gettempdir(), "duet-bench-cooc")
    os.makedirs(cache, exist_ok=True)
    source = playlists_file(cache, playlists)
    lists = pq.read_table(source, columns=["track_ids"]).column("track_ids").combine_chunks()
    matrix, ids = cf.interactions(lists)
    threads = os.cpu_count() or 1
    r: dict = {"playlists": playlists, "tracks": len(ids), "interactions": int(matrix.nnz),
               "factors": factors, "threads": threads}  # fmt: skip
    start = time.monotonic()
    cf.fit_warp(matrix, factors, 1, 0.05, 40, 0.0, 0, threads)
    r["warp_s"] = time.monotonic() - start
    for model, lr in (("bpr", 0.01), ("als", None)):
        start = time.monotonic()
        cf.fit_implicit(matrix, model, factors, 1, lr, 0.01, 1.0, 0, threads)
        r[f"{model}_s"] = time.monotonic() - start
    if word2vec:
        sentences = w2v.Sentences(lists)
        params = {"vector_size": 128, "window": None, "alpha": 0.02, "min_count": 1, "sg": False,
                  "negative": 5, "sample": 1e-3, "seed": 0, "epochs": 1}  # fmt: skip
        start = time.monotonic()
        w2v.train_word2vec(sentences, params, threads)  # corpus-file mode (bench_word2vec)
        r["w2v_s"] = time.monotonic() - start
    return r


def report(r: dict) -> str:
    n = r["interactions"]
    lines = [
        f"{r['playlists']:,} playlists, {r['tracks']:,} tracks, {n:,} interactions; "
        f"{r['factors']} factors, one epoch, {r['threads']} threads",
        f"  WARP (lightfm-next)  {r['warp_s']:8.1f} s  {n / r['warp_s']:>12,.0f} interactions/s",
        f"  BPR  (implicit)      {r['bpr_s']:8.1f} s  {n / r['bpr_s']:>12,.0f} interactions/s",
        f"  ALS  (implicit)      {r['als_s']:8.1f} s  {n / r['als_s']:>12,.0f} interactions/s",
        f"  WARP / BPR time per epoch: {r['warp_s'] / r['bpr_s']:.1f}x",
    ]
    if "w2v_s" in r:
        lines.append(f"  Word2Vec CBOW whole-playlist window, 128-d: {r['w2v_s']:.1f} s per epoch")
    return "\n".join(lines)


# ---------------------------------------------------------------- as tests


@pytest.mark.bench
def test_warp_and_bpr_throughput_side_by_side():
    results = run()
    print("\n" + report(results))
    n = results["interactions"]
    assert n / results["warp_s"] >= 40_000  # measured 81 838 interactions/s on 2 cores
    assert n / results["bpr_s"] >= 600_000  # measured 1 243 332
    assert results["warp_s"] / results["bpr_s"] >= 5  # measured 15.2: BPR is the cheap path


def test_benchmark_harness_times_every_model(tmp_path):
    results = run(playlists=300, factors=8, cache=str(tmp_path))
    assert results["interactions"] > 1000
    assert "WARP / BPR" in report(results)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--playlists", type=int, default=100_000)
    parser.add_argument("--factors", type=int, default=300)
    args = parser.parse_args()
    print(report(run(args.playlists, args.factors)), flush=True)
