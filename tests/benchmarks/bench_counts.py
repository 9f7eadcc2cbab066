"""``duet cooccurrence --counts`` (every pair, ``track_id < neighbor_id``) in bounded memory,
side by side in one process run with the former writer, which kept every batch of pairs and
wrote them as one table (issue target in brackets):

- 20 000 playlists with MPD statistics (~50 M pairs): the CLI, and the former writer in a
  child process, same pairs
- 60 000 playlists (~126 M pairs) through the CLI                  [<= 8 GB, flat in pairs]

Run: ``make bench`` or ``python -m tests.benchmarks.bench_counts [--playlists 20000 60000]``.
The former writer alone: ``python -m tests.benchmarks.bench_counts --at-once SOURCE OUT``.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from duet import publish, readers, schemas
from duet.pipelines.cooccurrence import job as cooc
from tests.support.bench import playlists_file, run_cli


def write_at_once(source: str, output: str) -> None:
    """The former ``--counts`` writer: all pairs of the block concatenated, then written."""
    lists = pq.read_table(source, columns=["track_ids"]).column("track_ids").combine_chunks()
    block = cooc.Block.build([cooc.encode(lists, max_tracks=10_000)], 0, 1)
    batches = list(cooc.count_batches(block, 1, cooc._n_chunks(None), max_slots=1 << 26))
    table = pa.concat_tables(batches) if batches else schemas.COOCCURRENCE.empty_table()
    schemas.write_table(table, output, schemas.COOCCURRENCE)


def run(sizes: tuple[int, ...] = (20_000, 60_000), cache: str | None = None) -> dict:
    cache = cache or os.path.join(tempfile.gettempdir(), "duet-bench-cooc")
    os.makedirs(cache, exist_ok=True)
    r: dict = {"sizes": sizes, "load": os.getloadavg()[0]}
    for n in sizes:
        source = playlists_file(cache, n)
        out = os.path.join(cache, f"counts-{n}")
        s, gb = run_cli(["cooccurrence", "--playlists", source, "--output", out, "--counts"])
        parts = publish.table_uris(os.path.join(out, "cooc", "counts.parquet"), "bench")
        r[n] = {"s": s, "gb": gb, "pairs": sum(pq.ParquetFile(p).metadata.num_rows for p in parts)}
    n = sizes[0]
    at_once = os.path.join(cache, f"counts-{n}-at-once.parquet")
    s, gb = run_cli(
        ["--at-once", playlists_file(cache, n), at_once], "tests.benchmarks.bench_counts"
    )
    new = readers.read_published(
        os.path.join(cache, f"counts-{n}", "cooc", "counts.parquet"), schemas.COOCCURRENCE, "bench"
    )
    old = schemas.read_table(at_once, schemas.COOCCURRENCE)
    r["at_once"] = {"s": s, "gb": gb, "same_pairs": old.equals(new)}
    return r


def report(r: dict) -> str:
    first, a = r["sizes"][0], r["at_once"]
    lines = [f"duet cooccurrence --counts through the CLI (load average {r['load']:.1f}):"]
    for n in r["sizes"]:
        x = r[n]
        lines.append(
            f"  {n:>7,} playlists  {x['pairs']:>13,} pairs  {x['s']:6.1f} s  peak {x['gb']:5.2f} GB"
        )
    lines.append(
        f"  {first:>7,} playlists, former writer (all pairs in memory): {a['s']:6.1f} s  peak "
        f"{a['gb']:5.2f} GB -> {a['gb'] / r[first]['gb']:.1f}x the memory; same pairs: {a['same_pairs']}"
    )
    last = r["sizes"][-1]
    lines.append(
        f"  peak at {last:,} / at {first:,} playlists: {r[last]['gb'] / r[first]['gb']:.2f}x for "
        f"{r[last]['pairs'] / r[first]['pairs']:.1f}x the pairs [<= 8 GB]"
    )
    return "\n".join(lines)


# ---------------------------------------------------------------- as tests


@pytest.mark.bench
def test_counts_are_written_in_bounded_memory():
    r = run()
    print("\n" + report(r))
    assert r["at_once"]["same_pairs"]
    assert all(r[n]["gb"] <= 8 for n in r["sizes"])
    assert r[60_000]["gb"] <= 1.5 * r[20_000]["gb"]


def test_benchmark_harness_runs_every_comparison(tmp_path):
    r = run(sizes=(300, 600), cache=str(tmp_path))
    assert r["at_once"]["same_pairs"] and r[600]["pairs"] > r[300]["pairs"] > 0
    assert "former writer" in report(r)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--at-once"]:
        write_at_once(sys.argv[2], sys.argv[3])
        sys.exit(0)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--playlists", type=int, nargs="+", default=[20_000, 60_000])
    print(report(run(tuple(parser.parse_args().playlists))), flush=True)
