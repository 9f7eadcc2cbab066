"""The Million Playlist Dataset on one machine, through the CLI, side by side with the Beam
graph on Beam's local runner (the old local path; issue targets in brackets):

- one flat Parquet table ``playlist_id, track_id, pos``: 100 k playlists by both paths, 1 M
  by the local runner                                        [1 M: <= 240 s, <= 6 GB]
- MPD-format slices (generated from the same playlists, real field names, ~17 KB per
  playlist): 100 slices by both paths, 1 000 by the local runner
                                   [1 000: <= 300 s, <= 6 GB; peak <= 1.3 x the 100-slice peak]
- the chain from the 1 000 raw slices: playlists -> cooccurrence (top-10) -> pairs
  playlist_co,playlist_tco x 50 epochs, each stage's wall time and peak RSS, and pairs per
  epoch next to the paper's (CO 826,368, TCO 731,520)        [<= 12 min, <= 12 GB]

Peak RSS is the whole process tree's (workers included), sampled every 50 ms.
Run: ``make bench`` or ``python -m tests.benchmarks.bench_scale [--full 1000000]``.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile

import pyarrow as pa
import pytest

from duet.synthetic_playlists import playlists_table, write_entries_table, write_mpd_slices
from tests.support.bench import pairs_cli, run_cli
from tests.support.helpers import tree

PAPER = {"co": 826_368, "tco": 731_520, "tracks": 1_779_072}


def inputs(cache: str, full: int, small: int, per_slice: int) -> dict:
    """The flat tables (``small`` and ``full`` playlists) and ``full // per_slice`` slices, of
    one synthetic catalogue; the small set is its first ``small`` playlists (cached)."""
    paths = {"table_full": os.path.join(cache, f"entries-{full}.parquet"),
             "table_small": os.path.join(cache, f"entries-{full}-first-{small}.parquet"),
             "slices_full": os.path.join(cache, f"mpd-{full}"),
             "slices_small": os.path.join(cache, f"mpd-{full}-first-{small}")}  # fmt: skip
    done = os.path.join(cache, f"inputs-{full}-{small}-{per_slice}.done")
    if not os.path.exists(done):
        table = playlists_table(full)
        write_entries_table(paths["table_full"], table)
        write_entries_table(paths["table_small"], table.slice(0, small))
        write_mpd_slices(paths["slices_full"], full, per_slice=per_slice, table=table)
        os.makedirs(paths["slices_small"], exist_ok=True)
        for name in sorted(os.listdir(paths["slices_full"]))[: small // per_slice]:
            target = os.path.join(paths["slices_small"], name)
            if not os.path.exists(target):
                os.symlink(os.path.join(paths["slices_full"], name), target)
        open(done, "w").close()
        del table
        pa.default_memory_pool().release_unused()  # the runs below share the machine
    paths["json_gb"] = sum(os.path.getsize(os.path.join(paths["slices_full"], n))
                           for n in os.listdir(paths["slices_full"])) / 1e9  # fmt: skip
    return paths


def playlists(source: str, fmt: str, output: str, beam: bool = False) -> dict:
    args = ["playlists", "--input", source, "--format", fmt, "--output", output]
    wall, peak = run_cli(args + (["--runner", "DirectRunner"] if beam else []))
    with open(os.path.join(output, "playlists.parquet", "_SUCCESS")) as f:
        counts = json.load(f)["counts"]
    return {"s": wall, "gb": peak, "playlists": counts["playlists"], "entries": counts["entries"]}


def chain(root: str, epochs: int) -> dict:
    """cooccurrence and pairs on the playlists already in ``root``."""
    out: dict = {}
    out["cooc_s"], out["cooc_gb"] = run_cli(["cooccurrence", "--playlists",
                                             os.path.join(root, "playlists.parquet"), "--output", root])  # fmt: skip
    pairs = pairs_cli(root, os.path.join(root, "playlists.parquet"),
                      os.path.join(root, "cooc", "topk.parquet"), epochs)  # fmt: skip
    out["pairs_s"], out["pairs_gb"] = pairs.pop("s"), pairs.pop("gb")
    out.update(pairs)
    return out


def run(full: int = 1_000_000, small: int = 100_000, per_slice: int = 1000, epochs: int = 50,
        cache: str | None = None, baseline: bool = True) -> dict:  # fmt: skip
    cache = cache or os.path.join(tempfile.gettempdir(), "duet-bench-scale")
    os.makedirs(cache, exist_ok=True)
    paths = inputs(cache, full, small, per_slice)
    r: dict = {"full": full, "small": small, "slices": full // per_slice, "json_gb": paths["json_gb"],
               "load": os.getloadavg()[0]}  # fmt: skip
    for kind, fmt in (("table", "table"), ("slices", "mpd")):
        small_out = os.path.join(cache, f"out-{kind}-small")
        r[f"{kind}_small"] = playlists(paths[f"{kind}_small"], fmt, small_out)
        if baseline:
            beam_out = os.path.join(cache, f"out-{kind}-small-beam")
            r[f"{kind}_small_beam"] = playlists(paths[f"{kind}_small"], fmt, beam_out, beam=True)
            r[f"{kind}_same_bytes"] = _same_tree(small_out, beam_out)
        r[f"{kind}_full"] = playlists(
            paths[f"{kind}_full"], fmt, os.path.join(cache, f"out-{kind}-full")
        )
    r["chain"] = chain(os.path.join(cache, "out-slices-full"), epochs)
    c = r["chain"]
    c["playlists_s"], c["playlists_gb"] = r["slices_full"]["s"], r["slices_full"]["gb"]
    c["total_s"] = c["playlists_s"] + c["cooc_s"] + c["pairs_s"]
    c["peak_gb"] = max(c["playlists_gb"], c["cooc_gb"], c["pairs_gb"])
    r["load_end"] = os.getloadavg()[0]
    return r


def _same_tree(a: str, b: str) -> bool:
    return tree(a) == tree(b)


def report(r: dict) -> str:
    lines = [f"load average at start {r['load']:.1f}, at end {r['load_end']:.1f} (2 cores, shared)"]
    for kind, what, target in (("table", "flat Parquet table", "<= 240 s, <= 6 GB"),
                               ("slices", f"MPD slices ({r['json_gb']:.1f} GB of JSON at full size)", "<= 300 s, <= 6 GB")):  # fmt: skip
        s, f = r[f"{kind}_small"], r[f"{kind}_full"]
        lines.append(f"playlists from a {what}:")
        lines.append(
            f"  {r['small']:>9,} playlists  local runner {s['s']:6.1f} s  peak {s['gb']:5.2f} GB"
        )
        if f"{kind}_small_beam" in r:
            b = r[f"{kind}_small_beam"]
            lines.append(f"  {r['small']:>9,} playlists  Beam graph   {b['s']:6.1f} s  peak {b['gb']:5.2f} GB"
                         f"  -> local runner {b['s'] / s['s']:.1f}x faster, {b['gb'] / s['gb']:.1f}x less memory,"
                         f" same bytes: {r[f'{kind}_same_bytes']}")  # fmt: skip
        lines.append(f"  {r['full']:>9,} playlists  local runner {f['s']:6.1f} s  peak {f['gb']:5.2f} GB"
                     f"  ({f['entries'] / f['s'] / 1e6:.2f} M entries/s; peak {f['gb'] / s['gb']:.2f}x the "
                     f"{r['small']:,}-playlist peak) [{target}, <= 1.3x]")  # fmt: skip
    c = r["chain"]
    lines += [
        f"chain from {r['slices']:,} raw slices ({r['full']:,} playlists, {c['tracks']:,} tracks):",
        f"  playlists     {c['playlists_s']:6.1f} s  peak {c['playlists_gb']:5.2f} GB",
        f"  cooccurrence  {c['cooc_s']:6.1f} s  peak {c['cooc_gb']:5.2f} GB",
        f"  pairs         {c['pairs_s']:6.1f} s  peak {c['pairs_gb']:5.2f} GB  ({c['epochs_written']} manifests)",
        f"  total         {c['total_s']:6.1f} s  peak {c['peak_gb']:5.2f} GB  [<= 720 s, <= 12 GB]",
        f"  pairs/epoch: CO {c['co_pairs']:,.0f} ({100 * c['co_coverage']:.1f} % of tracks), TCO "
        f"{c['tco_pairs']:,.0f} ({100 * c['tco_coverage']:.1f} %); paper: CO {PAPER['co']:,} (92.9 %), "
        f"TCO {PAPER['tco']:,} (82.2 %) of {PAPER['tracks']:,} tracks",
    ]  # fmt: skip
    return "\n".join(lines)


# ---------------------------------------------------------------- as tests


@pytest.mark.bench
def test_million_playlists_raw_to_pairs_meets_its_targets():
    r = run()
    print("\n" + report(r))
    assert r["table_same_bytes"] and r["slices_same_bytes"]
    assert r["table_full"]["s"] <= 240 and r["table_full"]["gb"] <= 6
    assert r["slices_full"]["s"] <= 300 and r["slices_full"]["gb"] <= 6
    assert r["slices_full"]["gb"] <= 1.3 * r["slices_small"]["gb"]
    assert r["chain"]["total_s"] <= 720 and r["chain"]["peak_gb"] <= 12
    assert r["chain"]["epochs_written"] == 100


def test_benchmark_harness_runs_every_comparison(tmp_path):
    r = run(full=1000, small=500, per_slice=250, epochs=2, cache=str(tmp_path))
    assert r["table_same_bytes"] and r["slices_same_bytes"]
    assert r["slices_full"]["playlists"] == 1000 and r["table_full"]["playlists"] == 1000
    assert r["chain"]["epochs_written"] == 4 and r["chain"]["co_pairs"] > 0
    assert "paper: CO 826,368" in report(r)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", type=int, default=1_000_000)
    parser.add_argument("--small", type=int, default=100_000)
    parser.add_argument("--epochs", type=int, default=50)
    parser.add_argument("--cache", default=None, help="inputs and outputs (~20 GB at full size)")
    parser.add_argument("--no-baseline", action="store_true", help="skip the Beam-graph runs")
    args = parser.parse_args()
    print(report(run(args.full, args.small, epochs=args.epochs, cache=args.cache,
                     baseline=not args.no_baseline)), flush=True)  # fmt: skip
