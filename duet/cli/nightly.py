"""``duet nightly``: playlists → co-occurrence → embeddings → pairs, each stage only when its
inputs changed since it last ran."""

from __future__ import annotations

import argparse

from duet import layout, lease, nightly
from duet.cli.commands import run_command
from duet.cli.common import add_publish_options, names, parse_epochs
from duet.pipelines.pairs.common import check_strategies
from duet.pipelines.pairs.runs import latest_run
from duet.pipelines.playlists.job import FORMATS
from duet.pipelines.tables.cf import MODELS


def configure(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Options Beam knows (--runner, --project, ...) are passed to every Beam stage."
    )
    add = parser.add_argument
    add("--output", required=True, help="dataset root")
    add("--input", nargs="+", default=None,
        help="raw playlist files (omit when OUT/playlists.parquet is maintained elsewhere)")  # fmt: skip
    add("--format", choices=FORMATS, default="mpd")
    add("--tracks", default=None, help="keep only tracks with audio (see duet playlists)")
    add("--strategies", default="playlist_co,playlist_tco")
    add("--epochs", default="0:50")
    add("--seed", type=int, default=0)
    add("--keep", type=int, default=None, help="keep the newest K pair runs")
    add("--cf-model", choices=MODELS, default="warp")
    add_publish_options(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace, beam_args: list[str]) -> int:
    strategies = names(args.strategies)
    check_strategies(strategies)
    parse_epochs(args.epochs)
    stages = nightly.plan(args.output, strategies, args.epochs, args.seed,
                          inputs=tuple(args.input or ()), fmt=args.format, tracks=args.tracks,
                          keep=args.keep, cf_model=args.cf_model)  # fmt: skip
    options = ["--allow-shrink"] if args.allow_shrink else []
    with lease.hold([args.output], lease.new_owner(), "duet nightly", name=layout.NIGHTLY_LOCK):
        done = nightly.run(stages, args.output, beam_args, invoke=run_command, options=options)
    print(f"[nightly] {sum(v == 'ran' for v in done.values())} stage(s) ran, "
          f"{sum(v == 'skipped' for v in done.values())} skipped; LATEST -> "
          f"{latest_run(args.output)}")  # fmt: skip
    return 0
