"""``duet playlists``: MPD slices, Melon files or plain tables → normalised playlists and track
metadata: on this machine in bounded memory, or as a Beam job when ``--runner`` is given."""

from __future__ import annotations

import argparse
import time

from duet import layout, lease, schemas
from duet.cli.common import (
    BEAM_DESCRIPTION,
    BeamRun,
    add_publish_options,
    commit_of,
    print_table,
    run_beam_job,
    runner_named,
)
from duet.errors import DuetError
from duet.pipelines.playlists import steps
from duet.pipelines.playlists.melon import GENRE_BASKETS


def configure(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Runs here in bounded memory (parts spilled to local disk); with --runner "
        "(DataflowRunner, DirectRunner, ...) it runs as a Beam pipeline, writing the same "
        "bytes. " + BEAM_DESCRIPTION
    )
    add = parser.add_argument
    add("--input", required=True, nargs="+", help="files, folders or globs")
    add("--format", required=True, choices=steps.FORMATS)
    add("--output", required=True,
        help=f"dataset root; writes {layout.PLAYLISTS}, {layout.TRACK_META}")  # fmt: skip
    add("--tracks", default=None,
        help="keep only tracks with audio or features: a published dataset root, a folder of "
             ".npy arrays (ids from file names, e.g. Melon's arena_mel) or a track manifest")  # fmt: skip
    add("--track-key", default="track_id",
        help="manifest column holding the playlists' track ids (e.g. melon_song_id)")  # fmt: skip
    add("--melon-genres", choices=GENRE_BASKETS, default="detailed",
        help="which Melon genre basket becomes track_meta.genres")  # fmt: skip
    add("--parts", type=int, default=None,
        help="output parts (default: one per 256 MB of input or per 2 M Parquet rows)")  # fmt: skip
    add("--workers", type=int, default=None,
        help="processes without --runner (default: every core)")  # fmt: skip
    add("--spill-dir", default=None,
        help="local folder for the parts spilled without --runner (~50 bytes per entry, "
        "~3 GB for the MPD; default: the system's temporary folder)")  # fmt: skip
    add_publish_options(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace, beam_args: list[str]) -> int:
    job = steps.PlaylistsJob(
        inputs=tuple(args.input), format=args.format, output=args.output, tracks=args.tracks,
        track_key=args.track_key, melon_genres=args.melon_genres, parts=args.parts,
        commit=commit_of(args),
    )  # fmt: skip
    if (args.parts is not None and args.parts < 1) or (
        args.workers is not None and args.workers < 1
    ):
        raise DuetError("--parts and --workers must be >= 1")
    tables = [layout.at(args.output, layout.PLAYLISTS), layout.at(args.output, layout.TRACK_META)]
    if runner_named(beam_args):
        from duet.pipelines.playlists import job as playlists

        done = run_beam_job(lambda pipeline: playlists.build(pipeline, job), beam_args,
                            shape=steps.PlaylistsSummary, published=tables[0], command="playlists",
                            commit=job.commit, locks=tables,
                            errors=(FileNotFoundError, ValueError))  # fmt: skip
    else:
        done = _run_here(job, args, beam_args, tables)
    counts = done.summary["counts"]
    print_table([
        ("playlists", f"{counts['playlists']:,} ({counts['entries']:,} entries of "
                      f"{counts['entries_read']:,} read) -> {tables[0]}"),
        ("without pos", f"{counts['entries_without_pos']:,} entries read without a position "
                        "(placed after the positioned ones, in input order)"),
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


def _run_here(
    job: steps.PlaylistsJob, args: argparse.Namespace, beam_args: list[str], tables: list[str]
) -> BeamRun[steps.PlaylistsSummary]:
    """The local runner, with the Beam command's order: validate the inputs, take the tables'
    locks, run (the job publishes both tables in its last step), read what was published."""
    from duet.pipelines.playlists import local

    try:
        prepared = local.prepare(job)
    except (FileNotFoundError, ValueError) as exc:
        raise DuetError(str(exc).splitlines()[0]) from exc
    assert job.commit.owner is not None, "a command publishes under its own owner id"
    start = time.monotonic()
    with lease.hold(tables, job.commit.owner, "duet playlists"):
        local.run(job, workers=args.workers, spill_dir=args.spill_dir, prepared=prepared,
                  filesystem_args=tuple(beam_args))  # fmt: skip
    return BeamRun(
        layout.read_summary(tables[0], steps.PlaylistsSummary, "duet playlists"),
        time.monotonic() - start,
    )
