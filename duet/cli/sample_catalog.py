"""``duet sample-catalog``: the built-in sample catalogue (synthetic music, playlists, broken files)."""

from __future__ import annotations

import argparse
import time

from duet.sample_catalog import generate


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--output", required=True)
    parser.add_argument("--tracks", type=int, default=60)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--playlists", type=int, default=None,
                        help="default: 4 per track, at least 40")  # fmt: skip
    parser.add_argument("--no-broken", action="store_true",
                        help="leave out the deliberately broken files")  # fmt: skip
    parser.set_defaults(func=run)


def run(args: argparse.Namespace, beam_args: list[str]) -> int:
    start = time.monotonic()
    summary = generate(args.output, tracks=args.tracks, seed=args.seed, playlists=args.playlists,
                       broken=not args.no_broken)  # fmt: skip
    print(f"sample catalogue in {args.output} ({time.monotonic() - start:.1f} s): "
          f"{summary['tracks']} tracks ({summary['audio_seconds'] / 60:.1f} min of audio), "
          f"{summary['broken']} broken files, {summary['playlists']} playlists")  # fmt: skip
    print(f"track manifest: {summary['manifest']}")
    return 0
