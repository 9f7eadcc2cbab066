"""``duet features import``: a dataset's precomputed per-track arrays (Melon's ``arena_mel``,
any folder, glob or manifest of ``.npy``) become a mel stream of a dataset root (Beam job)."""

from __future__ import annotations

import argparse
import tempfile

from duet import layout, publish, readers, schemas, storage
from duet.cli.common import (
    BEAM_DESCRIPTION,
    BeamRun,
    add_publish_options,
    commit_of,
    is_local,
    parse_size,
    print_table,
    run_beam_job,
)
from duet.errors import DuetError
from duet.pipelines.features import job as features
from duet.pipelines.features import sources
from duet.pipelines.features.arrays import ORIENTATIONS, ArrayError, to_frames
from duet.pipelines.features.profile import presets, resolve
from duet.pipelines.shardset.job import previous_num_shards
from duet.progress import Monitor


def configure(parser: argparse.ArgumentParser) -> None:
    parser.description = BEAM_DESCRIPTION
    actions = parser.add_subparsers(dest="action", required=True)
    q = actions.add_parser("import", help="per-track .npy arrays → indexed WebDataset shards",
                           description=BEAM_DESCRIPTION)  # fmt: skip
    add = q.add_argument
    add("--input", required=True,
        help="melon: the arena_mel folder; npy: a folder, a glob ('feats/**/*.npy') or a track "
             "manifest whose audio_uri names each array")  # fmt: skip
    add("--output", required=True, help="dataset root (local path, gs://, s3://)")
    add("--layout", choices=sources.LAYOUTS, default="melon",
        help="melon: arena_mel/<id // 1000>/<id>.npy; npy: any .npy files (default melon)")  # fmt: skip
    add("--profile", default=None,
        help=f"a built-in profile ({', '.join(sorted(presets()))}) or a YAML file declaring "
             "n_mels, sample_rate, hop_length, log (default: melon with --layout melon)")  # fmt: skip
    add("--orientation", choices=ORIENTATIONS, default="bands-frames",
        help="axis order of the arrays: bands-frames (n_mels, frames) as librosa, Essentia and "
             "Melon write them, or frames-bands (default bands-frames)")  # fmt: skip
    add("--id", dest="id_from", choices=sources.ID_RULES, default="stem",
        help="npy folders and globs: the track id is the file name (stem) or the path below "
             "the folder (path), without .npy (default stem)")  # fmt: skip
    add("--splits", default=None,
        help=f"splits table whose train split the statistics cover (default: OUTPUT/"
             f"{layout.SPLITS} when published, else all tracks)")  # fmt: skip
    add("--min-frames", type=int, default=256,
        help="shorter arrays are refused: one training crop (default 256)")  # fmt: skip
    add("--max-frames", type=int, default=None,
        help="longer arrays are refused (default: one hour at the profile's frame rate)")  # fmt: skip
    add("--num-shards", type=int, default=None,
        help="shards (default: kept from the previous run, else sized from --shard-size)")  # fmt: skip
    add("--shard-size", default="256MB", help="target shard size when sizing (default 256MB)")
    add("--read-ahead", type=int, default=8,
        help="arrays read ahead per shard writer, to overlap a bucket's latency (default 8)")  # fmt: skip
    add_publish_options(q)
    q.set_defaults(func=run)


def default_splits(output: str) -> str | None:
    """The root's splits table when it is published."""
    uri = layout.at(output, layout.SPLITS)
    return uri if publish.read_success(uri) is not None else None


def check_arrays(listing: sources.Listing, job: features.FeaturesJob) -> None:
    """Refuse an import whose first arrays all have the wrong band count: a wrong
    ``--orientation`` or ``--profile`` would otherwise turn every array into a failure row."""
    problems = []
    for row in listing.rows[:3]:
        try:
            to_frames(storage.read_bytes(row.uri), job.spec)
        except ArrayError as exc:
            if exc.stage != "validate" or " bands (shape " not in exc.message:
                return
            problems.append(exc.message)
        except OSError:
            return
        else:
            return
    if problems:
        raise DuetError(
            f"the first {len(problems)} arrays do not fit profile {job.profile.name} "
            f"({problems[0]}); check --orientation and --profile"
        )


def run(args: argparse.Namespace, beam_args: list[str]) -> int:
    if args.profile is None and args.layout != "melon":
        raise DuetError("--layout npy needs --profile (a YAML file declaring the arrays)")
    profile = resolve(args.profile or "melon")
    if not storage.exists(args.input) and not storage.glob(args.input):
        raise DuetError(f"--input {args.input}: no such folder, file or matching files")
    progress = tempfile.mkdtemp(prefix="duet-progress-") if is_local(beam_args) else None
    job = features.FeaturesJob(
        input=args.input, output=args.output, profile=profile, layout=args.layout,
        orientation=args.orientation, id_from=args.id_from,
        splits=args.splits or default_splits(args.output), min_frames=args.min_frames,
        max_frames=args.max_frames,
        num_shards=args.num_shards or previous_num_shards(args.output),
        shard_bytes=parse_size(args.shard_size), read_ahead=args.read_ahead,
        progress_dir=progress, commit=commit_of(args),
    )  # fmt: skip
    if job.splits:
        sources.read_splits(job.splits)
    total = None
    if progress:
        listing = sources.list_arrays(args.input, args.layout, args.id_from)
        if not listing.rows:
            raise DuetError(f"--input {args.input}: no {args.layout} arrays found")
        check_arrays(listing, job)
        total = len(listing.rows)

    def monitor() -> Monitor:
        assert progress is not None
        return Monitor(progress, total, desc="arrays")

    done = run_beam_job(lambda pipeline: features.build(pipeline, job), beam_args,
                        shape=features.FeaturesSummary, published=args.output,
                        command="features import", commit=job.commit, locks=[args.output],
                        errors=(features.NothingImported, features.SplitsUnmatched),
                        around=monitor if progress else None)  # fmt: skip
    print_summary(done, args.output)
    return 0


def print_summary(done: BeamRun[features.FeaturesSummary], output: str) -> None:
    """Counts, sizes and throughput of an import, then its first failures."""
    body, counters, wall = done.summary, done.counters, done.wall
    counts = body["counts"]
    read, unchanged = counters.get("rows_processed", 0), counters.get("rows_unchanged", 0)
    stream = body["streams"][0]
    split = (f"over split 'train' ({counts['with_split']:,} tracks with a split)"
             if body["stats_split"] == "train" else
             "over all tracks (run duet splits, then import again, for train only)")  # fmt: skip
    print_table([
        ("arrays listed", f"{counts['input_rows']:,}"),
        ("imported", f"{counts['indexed']:,}"),
        ("failed", f"{counts['failed']:,}"),
        *((f"  failed at {stage}", n) for stage, n in counts["failed_by_stage"].items()),
        ("ignored files", counts["ignored_files"]),
        ("stream", f"{stream} ({body['audio_seconds'] / 3600:.2f} h of audio)"),
        ("shards", f"{body['num_shards']} ({counters.get('shards_written', 0)} written, "
                   f"{counters.get('shards_reused', 0)} unchanged), "
                   f"{body['bytes'][stream] / 1e6:.1f} MB"),
        ("wall time", f"{wall:.1f} s"),
        ("this run", f"{read:,} read, {unchanged:,} unchanged"),
        ("throughput", f"{read / wall:.1f} arrays/s" if read else "nothing to read (every shard unchanged)"),
        ("mel statistics", split),
    ])  # fmt: skip
    failures = readers.read_published(layout.at(output, layout.FAILURES), schemas.FAILURES,
                                      "duet features import")  # fmt: skip
    if failures.num_rows:
        print(f"\nfailures ({failures.num_rows}, first 20):")
        print_table([(str(f["track_id"])[:40], f["stage"], f["error"][:90])
                     for f in failures.slice(0, 20).to_pylist()], indent="  ")  # fmt: skip
