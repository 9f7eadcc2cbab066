"""``duet cooccurrence``: playlist (or artist) co-occurrence counts and top-K neighbours."""

from __future__ import annotations

import argparse

from duet import layout, progress, publish, storage
from duet.cli.common import (
    BEAM_DESCRIPTION,
    add_publish_options,
    commit_of,
    print_table,
    run_beam_job,
)
from duet.errors import DuetError
from duet.pipelines.cooccurrence import job as cooccurrence


def configure(parser: argparse.ArgumentParser) -> None:
    parser.description = BEAM_DESCRIPTION
    add = parser.add_argument
    add("--playlists", required=True, help="playlists table (file or folder of parts)")
    add("--output", required=True,
        help=f"dataset root; writes OUT/{layout.COOC['playlist']} (or OUT/{layout.COOC['artist']})")  # fmt: skip
    add("--top-k", type=int, default=10)
    add("--min-count", type=int, default=1, help="drop pairs seen in fewer groups")
    add("--counts", action="store_true", help="also write every pair (track_id < neighbor_id)")
    add("--seed", type=int, default=0, help="seed of the tie rule")
    add("--group-by", choices=cooccurrence.GROUPINGS, default="playlist",
        help="artist: tracks co-occur when they share an artist (Artist CO baseline)")  # fmt: skip
    add("--track-meta", default=None,
        help=f"with --group-by artist (default: {layout.TRACK_META} beside --playlists)")  # fmt: skip
    add("--blocks", type=int, default=1,
        help="anchor blocks: 1 is fastest on one machine; more bound each worker's "
             "memory and spread work over Dataflow workers")  # fmt: skip
    add("--max-group-tracks", type=int, default=10_000,
        help="longer playlists are skipped and counted (cost grows with length²)")  # fmt: skip
    add("--threads", type=int, default=None, help="kernel threads (default: all cores)")
    add_publish_options(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace, beam_args: list[str]) -> int:
    if args.top_k < 1 or args.min_count < 1 or args.blocks < 1:
        raise DuetError("--top-k, --min-count and --blocks must be >= 1")
    source = args.playlists
    if args.group_by == "artist":
        beside = storage.dirname(args.playlists.rstrip("/"))
        source = args.track_meta or layout.at(beside, layout.TRACK_META)
    publish.input_uris(source, "duet playlists")
    job = cooccurrence.CoocJob(
        source=source, output=args.output, top_k=args.top_k, min_count=args.min_count,
        counts=args.counts, seed=args.seed, blocks=args.blocks, group_by=args.group_by,
        max_group_tracks=args.max_group_tracks, threads=args.threads, commit=commit_of(args),
    )  # fmt: skip
    done = run_beam_job(lambda pipeline: cooccurrence.build(pipeline, job), beam_args,
                        shape=cooccurrence.CoocSummary, published=job.folder, command="cooccurrence",
                        commit=job.commit, locks=[job.folder],
                        around=lambda: progress.monitored(job.blocks, "blocks", "block"))  # fmt: skip
    counts = done.summary["counts"]
    print_table([
        ("groups used", f"{counts.get('groups_used', 0):,} of {counts.get('groups_read', 0):,} "
                        f"({counts.get('groups_too_long', 0):,} longer than {job.max_group_tracks:,}, "
                        f"{counts.get('groups_too_short', 0):,} under 2 tracks)"),
        ("entries", f"{counts.get('entries_used', 0):,} ({counts.get('repeated_entries', 0):,} repeats, "
                    f"{counts.get('invalid_entries', 0):,} invalid ids removed)"),
        ("tracks with neighbours", f"{counts['anchor_tracks']:,}"),
        (f"top-{job.top_k} rows", f"{counts['topk_rows']:,}"),
        *([("pairs (counts table)", f"{counts['pairs']:,}")] if job.counts else []),
        ("output", job.folder),
        ("wall time", f"{done.wall:.1f} s"),
    ])  # fmt: skip
    return 0
