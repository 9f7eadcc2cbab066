"""Playlist Word2Vec with the paper's whole-playlist window (Alonso-Jiménez et al.: CBOW, 128-d
(ours), lr 0.02, window = longest playlist, ``shrink_windows=False``), side by side in one
process run: gensim's ``corpus_file`` mode (what duet uses: every worker reads its own stretch
of a corpus file, no GIL) against its iterable mode (one Python thread feeds the workers),
on the same playlists and cores; then one epoch on 1 M playlists for the cost of the paper's
20 epochs. The work per epoch is Σ|p|² (every entry averages its whole playlist).

Run: ``make bench`` or ``python -m tests.benchmarks.bench_word2vec [--playlists N] [--full N]``.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from gensim.models.callbacks import CallbackAny2Vec

from duet.pipelines.tables import w2v
from tests.support.bench import playlists_file

PARAMS = {"vector_size": 128, "window": None, "alpha": 0.02, "min_count": 1, "sg": False,
          "negative": 5, "sample": 1e-3, "seed": 0}  # fmt: skip


class EpochTimer(CallbackAny2Vec):
    def __init__(self):
        self.seconds: list[float] = []

    def on_epoch_begin(self, model):
        self.start = time.monotonic()

    def on_epoch_end(self, model):
        self.seconds.append(time.monotonic() - self.start)


def epoch(source: str, playlists: int, mode: str, epochs: int = 1) -> dict:
    """Seconds of setup (corpus, vocabulary) and of each epoch, for the first ``playlists``."""
    lists = pq.read_table(source, columns=["track_ids"]).column("track_ids").slice(0, playlists)
    sentences = w2v.Sentences(lists.cast(pa.large_list(pa.large_string())).combine_chunks())
    timer = EpochTimer()
    start = time.monotonic()
    w2v.train_word2vec(sentences, {**PARAMS, "epochs": epochs}, os.cpu_count() or 1, mode=mode,
                       callbacks=(timer,))  # fmt: skip
    total = time.monotonic() - start
    squares = int(
        (pc.list_value_length(lists).to_numpy(zero_copy_only=False).astype("int64") ** 2).sum()
    )
    return {"epoch_s": sum(timer.seconds) / epochs, "setup_s": total - sum(timer.seconds),
            "entries": sentences.total, "sum_p2": squares}  # fmt: skip


def run(playlists: int = 100_000, full: int = 1_000_000, cache: str | None = None) -> dict:
    cache = cache or os.path.join(tempfile.gettempdir(), "duet-bench-cooc")
    os.makedirs(cache, exist_ok=True)
    r: dict = {
        "playlists": playlists,
        "full": full,
        "cores": os.cpu_count(),
        "load": os.getloadavg()[0],
    }
    source = playlists_file(cache, max(playlists, full))
    r["iterable"] = epoch(source, playlists, "iterable")
    r["file"] = epoch(source, playlists, "file")
    if full:
        r["full_file"] = epoch(source, full, "file")
    return r


def report(r: dict) -> str:
    it, fi = r["iterable"], r["file"]
    lines = [
        f"{r['playlists']:,} playlists ({fi['entries']:,} entries, Σ|p|² = {fi['sum_p2']:.3g}), "
        f"{r['cores']} cores (load {r['load']:.1f}), one epoch:",
        f"  iterable mode     {it['epoch_s']:7.1f} s/epoch (setup {it['setup_s']:.1f} s)",
        f"  corpus_file mode  {fi['epoch_s']:7.1f} s/epoch (setup {fi['setup_s']:.1f} s): "
        f"{it['epoch_s'] / fi['epoch_s']:.1f}x faster per epoch",
    ]
    if "full_file" in r:
        f = r["full_file"]
        lines.append(
            f"{r['full']:,} playlists, corpus_file mode: {f['epoch_s']:.0f} s/epoch (setup {f['setup_s']:.0f} s) "
            f"-> the paper's 20 epochs: {(f['setup_s'] + 20 * f['epoch_s']) / 3600:.1f} h on {r['cores']} cores "
            f"({(20 * f['epoch_s']) * r['cores'] / 3600:.1f} core-h)"
        )
    return "\n".join(lines)


# ---------------------------------------------------------------- as tests


@pytest.mark.bench
def test_corpus_file_mode_is_faster_than_the_iterable_mode():
    r = run()
    print("\n" + report(r))
    assert r["file"]["epoch_s"] < r["iterable"]["epoch_s"]


def test_benchmark_harness_runs_every_comparison(tmp_path):
    r = run(playlists=300, full=600, cache=str(tmp_path))
    assert (
        r["iterable"]["epoch_s"] > 0 and r["file"]["epoch_s"] > 0 and r["full_file"]["epoch_s"] > 0
    )
    assert "20 epochs" in report(r)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--playlists", type=int, default=100_000)
    parser.add_argument("--full", type=int, default=1_000_000, help="0 skips the 1 M epoch")
    args = parser.parse_args()
    print(report(run(args.playlists, args.full)), flush=True)
