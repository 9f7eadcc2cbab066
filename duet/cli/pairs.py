"""``duet pairs``: per-epoch pair manifests for every strategy (a Beam job), or ``--verify`` of a
published run."""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable

from duet import layout, progress
from duet.cli.common import (
    BEAM_DESCRIPTION,
    add_publish_options,
    commit_of,
    is_local,
    names,
    parse_epochs,
    print_table,
    run_beam_job,
)
from duet.errors import DuetError
from duet.pipelines.pairs import job as pairs
from duet.pipelines.pairs import verify
from duet.pipelines.pairs.common import STRATEGIES, EpochStats, PairsInputError
from duet.pipelines.pairs.runs import latest_run
from duet.pipelines.pairs.sources import Inputs

INPUTS = (("playlists", "playlists table"), ("topk", "top-K table"),
          ("track-meta", "track meta (artists)"), ("w2v", "Word2Vec vectors"),
          ("cf", f"CF vectors (default {layout.embedding_folder(layout.cf_model('warp'))})"),
          ("genres", f"track genres ({layout.embedding(layout.GENRE_W2V, layout.TRACK_GENRES)})"),
          ("splits", "splits table"))  # fmt: skip


def configure(parser: argparse.ArgumentParser) -> None:
    parser.description = BEAM_DESCRIPTION
    add = parser.add_argument
    add("--data", required=True, help=f"dataset root; writes DATA/{layout.PAIRS}/<run>/...")
    add("--strategies", default=None,
        help=f"comma-separated, or 'all': {', '.join(STRATEGIES)}")  # fmt: skip
    add("--epochs", default="0:50", help="A:B for epochs A..B-1, or N (default 0:50)")
    add("--seed", type=int, default=0)
    add("--run-id", default=None, help="default: run-<digest of inputs and config>")
    add("--split", default=None,
        help="only tracks of these splits, e.g. train: from the splits table (--splits, or "
             "duet splits' own), else from the split column of the shards manifest")  # fmt: skip
    add("--keep", type=int, default=None, help="keep only the newest K complete runs")
    add("--verify", default=None, metavar="RUN",
        help="re-check the invariants of a published run (or LATEST) and exit")  # fmt: skip
    for name, what in INPUTS:
        add(f"--{name}", default=None, help=f"{what} (default: under --data)")
    add_publish_options(parser)
    parser.set_defaults(func=run)


def inputs_of(args: argparse.Namespace) -> Inputs:
    return Inputs(data=args.data, playlists=args.playlists, topk=args.topk,
                  track_meta=args.track_meta, w2v=args.w2v, cf=args.cf, genres=args.genres,
                  splits=args.splits)  # fmt: skip


def job_of(args: argparse.Namespace) -> pairs.PairsJob:
    strategies = names(args.strategies)
    return pairs.PairsJob(inputs=inputs_of(args),
                          strategies=STRATEGIES if strategies == ("all",) else strategies,
                          epochs=parse_epochs(args.epochs), seed=args.seed, run_id=args.run_id,
                          split=names(args.split), keep=args.keep, commit=commit_of(args))  # fmt: skip


def run(args: argparse.Namespace, beam_args: list[str]) -> int:
    if args.verify:
        return run_verify(args)
    if not args.strategies:
        raise DuetError("--strategies is required (or --verify RUN)")
    job = job_of(args)
    if is_local(beam_args) and not any(a.startswith("--direct_num_workers") for a in beam_args):
        # epochs are independent and the kernels release the GIL: one thread per core
        beam_args = [*beam_args, "--direct_num_workers", str(os.cpu_count() or 1),
                     "--direct_running_mode", "multi_threading"]  # fmt: skip
    published = time.time()
    done = run_beam_job(lambda pipeline: pairs.build(pipeline, job, published=published),
                        beam_args, shape=pairs.PairsSummary, published=lambda: job.run_dir,
                        command="pairs", commit=job.commit, locks=[job.lock_dir],
                        errors=(PairsInputError,), around=lambda: progress.monitored(
                            len(job.strategies) * (job.epochs[1] - job.epochs[0]), "pairs", "epoch"))  # fmt: skip
    body = done.summary
    print(f"run {job.run}: {len(job.strategies)} strategies x epochs {job.epochs[0]}.."
          f"{job.epochs[1] - 1} ({body['skipped_epochs']} already written) -> {job.run_dir}")  # fmt: skip
    if not body["audio_filter"]:
        print(f"note: {args.data} has no published audio index; tracks were not filtered by audio")
    print_stats(body["stats"])
    warn_empty_epochs(body["stats"])
    print(f"LATEST -> {job.run}; wall time {done.wall:.1f} s")
    if body.get("pruned"):
        print(f"pruned {len(body['pruned'])} old run(s): {', '.join(body['pruned'])}")
    return 0


def run_verify(args: argparse.Namespace) -> int:
    inputs = job_of(args).inputs if args.strategies else inputs_of(args)
    run = latest_run(args.data) if args.verify == "LATEST" else layout.slug(args.verify, "--verify")
    report = verify.verify(args.data, run, inputs)
    bad = {(s, e): p for s, epochs in report.items() for e, p in epochs.items() if p}
    checked = sum(len(e) for e in report.values())
    for (strategy, epoch), problems in sorted(bad.items()):
        print(f"{strategy} epoch {epoch}: {'; '.join(problems)}")
    print(f"verified {checked} epoch files of run {run}: "
          f"{'all invariants hold' if not bad else f'{len(bad)} with problems'}")  # fmt: skip
    return 1 if bad else 0


def warn_empty_epochs(stats: dict[str, dict[str, EpochStats]]) -> None:
    """Partial emptiness, loud: a strategy whose run has epochs without a single pair."""
    for strategy, epochs in sorted(stats.items()):
        empty = sorted(int(e) for e, s in epochs.items() if not s["rows"])
        if empty:
            shown = ", ".join(map(str, empty[:10])) + (" ..." if len(empty) > 10 else "")
            print(f"WARNING: {strategy}: {len(empty)} of {len(epochs)} epochs have no pairs "
                  f"(epochs {shown}); a trainer reading them gets nothing from {strategy} "
                  "there (check its input tables)", file=sys.stderr)  # fmt: skip


def print_stats(stats: dict[str, dict[str, EpochStats]]) -> None:
    """Per strategy, the mean over its epochs of rows, eligible tracks, coverage, unpaired."""
    rows = [("strategy", "epochs", "rows/epoch", "tracks", "coverage", "unpaired", "too short")]
    for strategy, epochs in sorted(stats.items()):
        values = list(epochs.values())

        def mean(read: Callable[[EpochStats], float], values: list[EpochStats] = values) -> float:
            return sum(read(v) for v in values) / len(values)

        rows.append((strategy, str(len(values)), f"{mean(lambda v: v['rows']):,.0f}",
                     f"{mean(lambda v: v['eligible']):,.0f}",
                     f"{100 * mean(lambda v: v['coverage']):.1f} %",
                     f"{mean(lambda v: v['unpaired']):,.0f}",
                     f"{mean(lambda v: v.get('too_short', 0)):,.0f}"))  # fmt: skip
    print_table(rows, numbers=True)
