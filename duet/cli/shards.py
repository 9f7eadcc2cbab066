"""``duet shards``: decode every track once into indexed WebDataset shards (a Beam job)."""

from __future__ import annotations

import argparse
import os
import tempfile

from duet import layout, publish, readers, schemas
from duet.cli.common import (
    BeamRun,
    add_publish_options,
    commit_of,
    is_local,
    parse_size,
    print_table,
    run_beam_job,
)
from duet.errors import DuetError
from duet.pipelines.audio import job as shards
from duet.pipelines.audio.decode import DECODERS
from duet.pipelines.audio.manifest import ID_FROM, Columns, read_manifest
from duet.pipelines.audio.track import WAV_FORMATS, AudioConfig
from duet.pipelines.shardset.job import previous_num_shards
from duet.progress import Monitor


def configure(parser: argparse.ArgumentParser) -> None:
    parser.description = ("Options Beam knows are passed to Beam (e.g. --runner DataflowRunner, "
                          "--direct_num_workers 2 --direct_running_mode multi_processing).")  # fmt: skip
    add = parser.add_argument
    add("--tracks", required=True,
        help="track manifest (.parquet/.csv/.jsonl) or a glob of audio files")  # fmt: skip
    add("--output", required=True, help="dataset root (local path, gs://, s3://)")
    add("--id-from", choices=ID_FROM, default="path",
        help="a glob's track ids: the path below the glob's folder (rock/a.mp3) or the file "
             "name without extension (a); match them to your playlists' ids (default path)")  # fmt: skip
    add("--id-column", default="track_id", help="manifest column of track ids (default track_id)")
    add("--audio-column", default="audio_uri",
        help="manifest column of audio paths or URIs, relative to the manifest (default audio_uri)")  # fmt: skip
    add("--streams", default=shards.DEFAULT_STREAMS,
        help="comma-separated wav-<rate>, mel-<preset> or profile .yaml "
             f"(default {shards.DEFAULT_STREAMS})")  # fmt: skip
    add("--wav-format", choices=WAV_FORMATS, default="npy",
        help="waveform members: int16 .npy (crops are one ranged read) or 16-bit FLAC")  # fmt: skip
    add("--max-seconds", type=float, default=None,
        help="keep only the centred excerpt of this many seconds (default: whole track)")  # fmt: skip
    add("--max-duration", type=float, default=3600.0,
        help="hard cap: longer tracks are refused with a failure row (default 3600 s)")  # fmt: skip
    add("--min-seconds", type=float, default=1.0, help="shorter tracks are refused (default 1 s)")
    add("--min-sample-rate", type=int, default=8000, help="lower source rates are refused")
    add("--decoder", choices=DECODERS, default="auto",
        help="auto: libsndfile in-process for MP3/FLAC/Ogg/WAV (decoded again with ffmpeg when "
             "its length disagrees with the file's headers), ffmpeg for the rest; "
             "ffmpeg: every file in an ffmpeg subprocess (isolation for untrusted input)")  # fmt: skip
    add("--decode-timeout", type=float, default=600.0, help="seconds before ffmpeg is killed")
    add("--num-shards", type=int, default=None,
        help="shards per stream (default: kept from the previous run, else sized from --shard-size)")  # fmt: skip
    add("--shard-size", default="256MB", help="target shard size when sizing (default 256MB)")
    add_publish_options(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace, beam_args: list[str]) -> int:
    rates, profiles = shards.parse_streams(args.streams)
    config = AudioConfig(
        wav_rates=rates, profiles=profiles, wav_format=args.wav_format,
        max_seconds=args.max_seconds, max_duration=args.max_duration, min_seconds=args.min_seconds,
        min_sample_rate=args.min_sample_rate, decoder=args.decoder, decode_timeout=args.decode_timeout,
    )  # fmt: skip
    columns = Columns(track_id=args.id_column, audio_uri=args.audio_column, id_from=args.id_from)
    rows = check_manifest(args.tracks, args.output, args.allow_shrink, columns)
    progress = tempfile.mkdtemp(prefix="duet-progress-") if is_local(beam_args) else None
    if is_local(beam_args) and not any(a.startswith("--direct_num_workers") for a in beam_args):
        # tracks decode independently and decoders release the GIL: one thread per core
        beam_args = [*beam_args, "--direct_num_workers", str(os.cpu_count() or 1),
                     "--direct_running_mode", "multi_threading"]  # fmt: skip
    job = shards.ShardsJob(tracks=args.tracks, output=args.output, config=config, columns=columns,
                           num_shards=args.num_shards or previous_num_shards(args.output),
                           shard_bytes=parse_size(args.shard_size), progress_dir=progress,
                           commit=commit_of(args))  # fmt: skip

    def monitor() -> Monitor:
        assert progress is not None
        return Monitor(progress, rows)

    done = run_beam_job(lambda pipeline: shards.build(pipeline, job), beam_args,
                        shape=shards.ShardsSummary, published=args.output, command="shards",
                        commit=job.commit,
                        locks=[args.output], around=monitor if progress else None)  # fmt: skip
    print_summary(done, args.output)
    return 0


def check_manifest(tracks: str, output: str, allow_shrink: bool, columns: Columns) -> int:
    """Refuse, before anything is touched, a manifest that cannot be read, has no usable row,
    or holds less than half the tracks the root publishes (unless ``allow_shrink``); returns
    its usable rows."""
    try:
        manifest = read_manifest(tracks, columns)
    except FileNotFoundError:
        raise DuetError(f"--tracks {tracks} does not exist") from None
    except ValueError as exc:
        raise DuetError(f"--tracks {tracks}: {str(exc).splitlines()[0]}") from None
    if not manifest.rows:
        reason = f" ({manifest.failures[0]['error']}, ...)" if manifest.failures else ""
        raise DuetError(f"--tracks {tracks} has no usable row ({manifest.input_rows} rows"
                        f"{reason}); nothing was changed")  # fmt: skip
    published = publish.read_success(output)
    before = (published or {}).get("counts", {}).get("indexed")
    if isinstance(before, int) and len(manifest.rows) * 2 < before and not allow_shrink:
        raise DuetError(f"{output} publishes {before:,} tracks and --tracks {tracks} lists "
                        f"{len(manifest.rows):,}; nothing was changed (check the manifest, or "
                        "pass --allow-shrink to publish the smaller root)")  # fmt: skip
    return len(manifest.rows)


def print_summary(done: BeamRun[shards.ShardsSummary], output: str) -> None:
    """Counts, throughput and sizes of a shards run, then its first failures."""
    body, counters, wall = done.summary, done.counters, done.wall
    counts = body["counts"]
    decoded, unchanged = counters.get("rows_processed", 0), counters.get("rows_unchanged", 0)
    print_table([
        ("input rows", counts["input_rows"]),
        ("indexed tracks", counts["indexed"]),
        ("failed", counts["failed"]),
        *((f"  failed at {stage}", n) for stage, n in counts["failed_by_stage"].items()),
        ("this run", f"{decoded:,} decoded, {unchanged:,} unchanged"),
        ("audio indexed", f"{body['source_seconds'] / 3600:.2f} h"),
        *_source_rows(counts),
        ("shards", f"{body['num_shards']} per stream ({counters.get('shards_written', 0)} "
                   f"written, {counters.get('shards_reused', 0)} unchanged)"),
        *((f"  {s}", f"{b / 1e6:.1f} MB") for s, b in body["bytes"].items()),
        ("wall time", f"{wall:.1f} s"),
        ("throughput", _throughput(decoded, unchanged, body["source_seconds"], wall)),
        ("mel statistics", f"over split '{body['stats_split']}'"),
    ])  # fmt: skip
    _print_source_notes(output)
    failures = readers.read_published(layout.at(output, layout.FAILURES), schemas.FAILURES,
                                      "duet shards")  # fmt: skip
    if failures.num_rows:
        print(f"\nfailures ({failures.num_rows}, first 20):")
        print_table([(str(f["track_id"])[:40], f["stage"], f["error"][:90])
                     for f in failures.slice(0, 20).to_pylist()], indent="  ")  # fmt: skip


def _throughput(decoded: int, unchanged: int, seconds: float, wall: float) -> str:
    """Tracks/s of the tracks this run decoded; the realtime factor only when it decoded all."""
    if not decoded:
        return "nothing to decode (every shard unchanged)"
    rate = f"{decoded / wall:.1f} tracks/s"
    return rate if unchanged else f"{rate}, {seconds / wall:.0f}x realtime"


def _source_rows(counts: shards.ShardsCounts) -> list[tuple[str, str]]:
    """Summary rows for the decode length check and the over-range policy."""
    check, levels = counts.get("decode_check"), counts.get("over_range")
    if check is None or levels is None:
        return []
    return [
        ("decode length check", f"{check['ok']} ok, {check['short']} short, {check['long']} long, "
                                f"{check['undeclared']} undeclared"),
        ("  decoded again", f"{check['decoded_again']} (libsndfile disagreed with the file; ffmpeg)"),
        ("over full scale", f"{levels['clipped_tracks']} tracks, {levels['clipped_samples']} samples"),
        ("  scaled down", f"{levels['scaled_tracks']} tracks (min gain {levels['min_gain']:.4g}), "
                          "none clipped"),
    ]  # fmt: skip


def _print_source_notes(root: str, limit: int = 20) -> None:
    """Indexed tracks whose decode does not match the file, or that were scaled down."""
    import pyarrow.compute as pc

    index = readers.read_published(
        layout.at(root, layout.INDEX), schemas.AUDIO_INDEX, "duet shards"
    )
    first = index.filter(pc.equal(index["stream"], index["stream"][0])) if len(index) else index
    noted = first.filter(pc.or_(pc.is_valid(first["decode_note"]), pc.less(first["gain"], 1.0)))
    if not noted.num_rows:
        return
    print(f"\ntracks with a decode note or a gain ({noted.num_rows}, first {limit}; "
          "the index has decoder, length_check, decode_note, clipped, gain):")  # fmt: skip
    for r in noted.sort_by("track_id").slice(0, limit).to_pylist():
        declared = "-" if r["declared_duration"] is None else f"{r['declared_duration']:.3f}"
        print(f"  {str(r['track_id'])[:40]:<40}  {r['length_check'] or '-':<6} "
              f"{r['source_duration']:.3f} s of {declared} declared, {r['decoder'].split()[0]}, "
              f"gain {r['gain']:.4g}, {r['clipped']} over full scale")  # fmt: skip
        if r["decode_note"]:
            print(f"    {r['decode_note'][:300]}")
