"""``duet playlists``: MPD slices, Melon files or plain tables → normalised playlists and track
metadata (a Beam job)."""

from __future__ import annotations

import argparse

from duet import layout, schemas
from duet.cli.common import BEAM_DESCRIPTION, print_table, run_beam_job
from duet.pipelines.playlists import job as playlists
from duet.pipelines.playlists.melon import GENRE_BASKETS


def configure(parser: argparse.ArgumentParser) -> None:
    parser.description = BEAM_DESCRIPTION
    add = parser.add_argument
    add("--input", required=True, nargs="+", help="files, folders or globs")
    add("--format", required=True, choices=playlists.FORMATS)
    add("--output", required=True,
        help=f"dataset root; writes {layout.PLAYLISTS}, {layout.TRACK_META}")  # fmt: skip
    add("--tracks", default=None,
        help="keep only tracks with audio or features: a published dataset root, a folder of "
             ".npy arrays (ids from file names, e.g. Melon's arena_mel) or a track manifest")  # fmt: skip
    add("--track-key", default="track_id",
        help="manifest column holding the playlists' track ids (e.g. melon_song_id)")  # fmt: skip
    add("--melon-genres", choices=GENRE_BASKETS, default="detailed",
        help="which Melon genre basket becomes track_meta.genres")  # fmt: skip
    add("--parts", type=int, default=None, help="output parts (default: ~256 MB of input each)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace, beam_args: list[str]) -> int:
    job = playlists.PlaylistsJob(
        inputs=tuple(args.input), format=args.format, output=args.output, tracks=args.tracks,
        track_key=args.track_key, melon_genres=args.melon_genres, parts=args.parts,
    )  # fmt: skip
    tables = [layout.at(args.output, layout.PLAYLISTS), layout.at(args.output, layout.TRACK_META)]
    done = run_beam_job(lambda pipeline: playlists.build(pipeline, job), beam_args,
                        shape=playlists.PlaylistsSummary, published=tables[0], unpublish=tables,
                        errors=(FileNotFoundError, ValueError))  # fmt: skip
    counts = done.summary["counts"]
    print_table([
        ("playlists", f"{counts['playlists']:,} ({counts['entries']:,} entries of "
                      f"{counts['entries_read']:,} read) -> {tables[0]}"),
        ("track meta", f"{counts['tracks_with_meta']:,} tracks -> {tables[1]}"),
        ("wall time", f"{done.wall:.1f} s"),
    ])  # fmt: skip
    dropped = schemas.read_table(layout.at(args.output, layout.PLAYLISTS_DROPPED),
                                 schemas.PLAYLIST_DROPS)  # fmt: skip
    if dropped.num_rows:
        print("\ndropped (reason: entries / tracks / playlists):")
        print_table([(r["reason"], f"{r['entries']:,}", f"{r['tracks']:,}", f"{r['playlists']:,}")
                     for r in dropped.to_pylist()], numbers=True, indent="  ")  # fmt: skip
    if counts["failures"]:
        print(f"\n{counts['failures']} unreadable files/records: see {layout.PLAYLISTS_FAILURES}")
    return 0
