"""``duet splits``: train/val/test splits of tracks, multilabel-stratified on genres."""

from __future__ import annotations

import argparse

from duet import layout
from duet.cli.common import (
    BEAM_DESCRIPTION,
    add_publish_options,
    commit_of,
    print_table,
    run_beam_job,
)
from duet.pipelines.beam_io import one_step
from duet.pipelines.tables import splits
from duet.pipelines.tables.common import EmbeddingInputError, TableSummary


def configure(parser: argparse.ArgumentParser) -> None:
    parser.description = BEAM_DESCRIPTION
    add = parser.add_argument
    add("--track-meta", required=True)
    add("--output", required=True, help=f"dataset root; writes OUT/{layout.SPLITS}")
    add("--seed", type=int, default=0)
    add("--test", type=float, default=0.1)
    add("--val", type=float, default=0.1)
    add("--exclude", default=None,
        help="track ids to leave out: text (one per line) or a table with track_id")  # fmt: skip
    add_publish_options(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace, beam_args: list[str]) -> int:
    job = splits.SplitsJob(track_meta=args.track_meta, output=args.output, seed=args.seed,
                           test=args.test, val=args.val, exclude=args.exclude,
                           commit=commit_of(args))  # fmt: skip

    def build(pipeline):
        job.check_inputs()
        return one_step(pipeline, job.run, "splits")

    done = run_beam_job(build, beam_args, shape=TableSummary, published=job.folder,
                        command="splits",
                        commit=job.commit, locks=[job.folder],
                        errors=(EmbeddingInputError, FileNotFoundError))  # fmt: skip
    c = done.summary["counts"]
    total = c["train"] + c["val"] + c["test"]
    print_table([
        ("method", done.summary["config"]["method"]),
        ("tracks", f"{total:,} ({c['excluded']:,} excluded, {c['tracks_without_genres']:,} without genres)"),
        *[(name, f"{c[name]:,} ({100 * c[name] / total:.1f} %)") for name in ("train", "val", "test")],
        ("output", job.folder),
        ("wall time", f"{done.wall:.1f} s"),
    ])  # fmt: skip
    return 0
