"""The ``duet`` command line: one sub-command per job; Beam options pass through untouched."""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import time
from importlib import metadata

from duet import __version__
from duet.errors import DuetError

BEAM_COMMANDS = ("shards", "playlists", "cooccurrence", "embeddings", "splits", "pairs", "nightly")
_STREAMS_DEFAULT = "wav-16000,wav-22050,mel-choi,mel-alonso,mel-ferraro"


class _QuietBeamImports(logging.Filter):
    """Beam logs a warning about the optional BigQuery client on every import; drop it."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "apitools not found" not in record.getMessage()


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def cmd_doctor(args: argparse.Namespace, beam_args: list[str]) -> int:
    from duet.ffmpeg import FfmpegNotFound, ffmpeg_binary, ffmpeg_version

    rows = [("duet", __version__), ("python", sys.version.split()[0])]
    try:
        path, source = ffmpeg_binary()
        rows += [("ffmpeg", ffmpeg_version()), ("ffmpeg path", f"{path} (from {source})")]
        import soundfile

        rows.append(("libsndfile", soundfile.__libsndfile_version__))
        status = 0
    except FfmpegNotFound as exc:
        rows.append(("ffmpeg", f"MISSING: {exc}"))
        status = 1
    for dist in ("apache-beam", "numpy", "pyarrow", "soxr", "soundfile", "scipy", "torch",
                 "librosa", "webdataset"):  # fmt: skip
        rows.append((dist, _version(dist)))
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        print(f"{key:<{width}}  {value}")
    return status


def cmd_sample_catalog(args: argparse.Namespace, beam_args: list[str]) -> int:
    from duet.sample_catalog import generate

    start = time.monotonic()
    summary = generate(args.output, tracks=args.tracks, seed=args.seed, playlists=args.playlists,
                       broken=not args.no_broken)  # fmt: skip
    print(f"sample catalogue in {args.output} ({time.monotonic() - start:.1f} s): "
          f"{summary['tracks']} tracks ({summary['audio_seconds'] / 60:.1f} min of audio), "
          f"{summary['broken']} broken files, {summary['playlists']} playlists")  # fmt: skip
    print(f"track manifest: {summary['manifest']}")
    return 0


def _parse_streams(spec: str):
    from duet.pipelines.audio.mel import resolve_profile

    rates, profiles = [], []
    for item in filter(None, (s.strip() for s in spec.split(","))):
        if item.startswith("wav-") and item[4:].isdigit():
            rates.append(int(item[4:]))
        elif item.startswith("mel-"):
            profiles.append(resolve_profile(item[4:]))
        elif item.endswith((".yaml", ".yml")):
            profiles.append(resolve_profile(item))
        else:
            raise SystemExit(
                f"duet shards: unknown stream {item!r} (wav-<rate>, mel-<profile> or a .yaml)"
            )
    return tuple(dict.fromkeys(rates)), tuple(dict.fromkeys(profiles))


def _parse_size(text: str) -> int:
    units = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}
    text = text.strip().lower().removesuffix("b")
    if text and text[-1] in units:
        return int(float(text[:-1]) * units[text[-1]])
    return int(text)


def _print_shards_summary(body: dict, metrics: dict, wall: float) -> None:
    from duet import schemas, storage

    counts = body["counts"]
    rows = [
        ("input rows", counts["input_rows"]),
        ("indexed tracks", counts["indexed"]),
        ("failed", counts["failed"]),
        *((f"  failed at {stage}", n) for stage, n in counts["failed_by_stage"].items()),
        ("audio decoded", f"{body['source_seconds'] / 3600:.2f} h"),
        ("shards", f"{body['num_shards']} per stream "
                   f"({metrics.get('shards_written', 0)} written, {metrics.get('shards_reused', 0)} unchanged)"),
        *((f"  {s}", f"{b / 1e6:.1f} MB") for s, b in body["bytes"].items()),
        ("wall time", f"{wall:.1f} s"),
        ("throughput", f"{counts['input_rows'] / wall:.1f} tracks/s, "
                       f"{body['source_seconds'] / wall:.0f}x realtime"),
        ("mel statistics", f"over split '{body['stats_split']}'"),
    ]  # fmt: skip
    width = max(len(k) for k, _ in rows)
    print("\n".join(f"{k:<{width}}  {v}" for k, v in rows))
    failures = schemas.read_table(storage.join(body["output"], "failures"), schemas.FAILURES)
    if failures.num_rows:
        print(f"\nfailures ({failures.num_rows}, first 20):")
        for f in failures.slice(0, 20).to_pylist():
            print(f"  {str(f['track_id'])[:40]:<40}  {f['stage']:<9} {f['error'][:90]}")


def cmd_shards(args: argparse.Namespace, beam_args: list[str]) -> int:
    from duet import publish
    from duet.pipelines import beam_io
    from duet.pipelines.audio import job as shards
    from duet.pipelines.audio.manifest import read_manifest
    from duet.pipelines.audio.track import AudioConfig
    from duet.progress import Monitor

    rates, profiles = _parse_streams(args.streams)
    config = AudioConfig(
        wav_rates=rates, profiles=profiles, wav_format=args.wav_format,
        max_seconds=args.max_seconds, max_duration=args.max_duration, min_seconds=args.min_seconds,
        min_sample_rate=args.min_sample_rate, decoder=args.decoder, decode_timeout=args.decode_timeout,
    )  # fmt: skip
    num_shards = args.num_shards or shards.previous_num_shards(args.output)
    publish.clear_success(args.output)
    pipeline = beam_io.make_pipeline(beam_args)
    local = beam_io.is_local(pipeline.options)
    progress_dir = tempfile.mkdtemp(prefix="duet-progress-") if local else None
    job = shards.ShardsJob(tracks=args.tracks, output=args.output, config=config,
                           num_shards=num_shards, shard_bytes=_parse_size(args.shard_size),
                           progress_dir=progress_dir)  # fmt: skip
    shards.build(pipeline, job)
    start = time.monotonic()
    if local:
        total = len(read_manifest(args.tracks).rows)
        with Monitor(progress_dir, total):
            result = pipeline.run()
            result.wait_until_finish()
    else:
        result = pipeline.run()
        result.wait_until_finish()
    wall = time.monotonic() - start
    metrics = {m.key.metric.name: m.committed for m in result.metrics().query()["counters"]}
    body = publish.require_success(args.output)
    _print_shards_summary({**body, "output": args.output}, metrics, wall)
    return 0


def _add_shards(sub) -> None:
    p = sub.add_parser("shards", help="decode audio into indexed WebDataset shards (Beam job)",
                       description="Unknown options are passed to Beam (e.g. --runner DataflowRunner, "
                                   "--direct_num_workers 2 --direct_running_mode multi_processing).")  # fmt: skip
    p.add_argument(
        "--tracks",
        required=True,
        help="track manifest (.parquet/.csv/.jsonl) or a glob of audio files",
    )
    p.add_argument("--output", required=True, help="dataset root (local path, gs://, s3://)")
    p.add_argument(
        "--streams",
        default=_STREAMS_DEFAULT,
        help=f"comma-separated wav-<rate>, mel-<preset> or profile .yaml (default {_STREAMS_DEFAULT})",
    )
    p.add_argument(
        "--wav-format",
        choices=("npy", "flac"),
        default="npy",
        help="waveform members: int16 .npy (crops are one ranged read) or 16-bit FLAC",
    )
    p.add_argument(
        "--max-seconds",
        type=float,
        default=None,
        help="keep only the centred excerpt of this many seconds (default: whole track)",
    )
    p.add_argument(
        "--max-duration",
        type=float,
        default=3600.0,
        help="hard cap: longer tracks are refused with a failure row (default 3600 s)",
    )
    p.add_argument(
        "--min-seconds", type=float, default=1.0, help="shorter tracks are refused (default 1 s)"
    )
    p.add_argument(
        "--min-sample-rate", type=int, default=8000, help="lower source rates are refused"
    )
    p.add_argument(
        "--decoder",
        choices=("auto", "ffmpeg"),
        default="auto",
        help="auto: libsndfile in-process for MP3/FLAC/Ogg/WAV, ffmpeg for the rest; "
        "ffmpeg: every file in an ffmpeg subprocess (isolation for untrusted input)",
    )
    p.add_argument(
        "--decode-timeout", type=float, default=600.0, help="seconds before ffmpeg is killed"
    )
    p.add_argument(
        "--num-shards",
        type=int,
        default=None,
        help="shards per stream (default: kept from the previous run, else sized from --shard-size)",
    )
    p.add_argument(
        "--shard-size", default="256MB", help="target shard size when sizing (default 256MB)"
    )
    p.set_defaults(func=cmd_shards)


def _run_timed(pipeline) -> tuple[object, float]:
    start = time.monotonic()
    result = pipeline.run()
    result.wait_until_finish()
    return result, time.monotonic() - start


def cmd_playlists(args: argparse.Namespace, beam_args: list[str]) -> int:
    from duet import publish, schemas, storage
    from duet.pipelines import beam_io
    from duet.pipelines.playlists import job as playlists

    job = playlists.PlaylistsJob(
        inputs=tuple(args.input), format=args.format, output=args.output, tracks=args.tracks,
        track_key=args.track_key, melon_genres=args.melon_genres, parts=args.parts,
    )  # fmt: skip
    for table in ("playlists.parquet", "track_meta.parquet"):
        publish.clear_success(storage.join(args.output, table))
    pipeline = beam_io.make_pipeline(beam_args)
    try:
        playlists.build(pipeline, job)
    except (FileNotFoundError, ValueError) as exc:
        raise SystemExit(f"duet playlists: {exc}") from exc
    _, wall = _run_timed(pipeline)
    body = publish.require_success(storage.join(args.output, "playlists.parquet"))
    counts = body["counts"]
    print(
        f"playlists   {counts['playlists']:,} ({counts['entries']:,} entries of "
        f"{counts['entries_read']:,} read) -> {storage.join(args.output, 'playlists.parquet')}"
    )
    print(
        f"track meta  {counts['tracks_with_meta']:,} tracks -> {storage.join(args.output, 'track_meta.parquet')}"
    )
    print(f"wall time   {wall:.1f} s")
    dropped = schemas.read_table(
        storage.join(args.output, "playlists_dropped.parquet"), schemas.PLAYLIST_DROPS
    )
    if dropped.num_rows:
        print("\ndropped (reason: entries / tracks / playlists):")
        for row in dropped.to_pylist():
            print(
                f"  {row['reason']:<22} {row['entries']:>10,} {row['tracks']:>10,} {row['playlists']:>10,}"
            )
    if counts["failures"]:
        print(f"\n{counts['failures']} unreadable files/records: see playlists_failures.parquet")
    return 0


def _add_playlists(sub) -> None:
    p = sub.add_parser("playlists", help="normalise MPD / Melon / table playlists (Beam job)",
                       description="Unknown options are passed to Beam.")  # fmt: skip
    p.add_argument("--input", required=True, nargs="+", help="files, folders or globs")
    p.add_argument("--format", required=True, choices=("mpd", "melon", "table"))
    p.add_argument(
        "--output", required=True, help="dataset root; writes playlists.parquet, track_meta.parquet"
    )
    p.add_argument(
        "--tracks",
        default=None,
        help="keep only tracks with audio: a published dataset root or a track manifest",
    )
    p.add_argument(
        "--track-key",
        default="track_id",
        help="manifest column holding the playlists' track ids (e.g. melon_song_id)",
    )
    p.add_argument(
        "--melon-genres",
        choices=("detailed", "major", "both"),
        default="detailed",
        help="which Melon genre basket becomes track_meta.genres",
    )
    p.add_argument(
        "--parts", type=int, default=None, help="output parts (default: ~256 MB of input each)"
    )
    p.set_defaults(func=cmd_playlists)


def cmd_cooccurrence(args: argparse.Namespace, beam_args: list[str]) -> int:
    from duet import publish, storage
    from duet.pipelines import beam_io
    from duet.pipelines.cooccurrence import job as cooccurrence

    if args.top_k < 1 or args.min_count < 1 or args.blocks < 1:
        raise SystemExit("duet cooccurrence: --top-k, --min-count and --blocks must be >= 1")
    source = args.playlists
    if args.group_by == "artist":
        source = args.track_meta or storage.join(
            storage.dirname(args.playlists.rstrip("/")), "track_meta.parquet"
        )
    if not storage.exists(source):
        raise SystemExit(f"duet cooccurrence: input {source} does not exist")
    job = cooccurrence.CoocJob(
        source=source, output=args.output, top_k=args.top_k, min_count=args.min_count,
        counts=args.counts, seed=args.seed, blocks=args.blocks, group_by=args.group_by,
        max_group_tracks=args.max_group_tracks, threads=args.threads,
    )  # fmt: skip
    publish.clear_success(job.folder)
    pipeline = beam_io.make_pipeline(beam_args)
    cooccurrence.build(pipeline, job)
    _, wall = _run_timed(pipeline)
    body = publish.require_success(job.folder)
    counts = body["counts"]
    rows = [
        ("groups used", f"{counts.get('groups_used', 0):,} of {counts.get('groups_read', 0):,} "
                        f"({counts.get('groups_too_long', 0):,} longer than {job.max_group_tracks:,}, "
                        f"{counts.get('groups_too_short', 0):,} under 2 tracks)"),
        ("entries", f"{counts.get('entries_used', 0):,} ({counts.get('repeated_entries', 0):,} repeats, "
                    f"{counts.get('invalid_entries', 0):,} invalid ids removed)"),
        ("tracks with neighbours", f"{counts['anchor_tracks']:,}"),
        (f"top-{job.top_k} rows", f"{counts['topk_rows']:,}"),
        *([("pairs (counts table)", f"{counts['pairs']:,}")] if job.counts else []),
        ("output", job.folder),
        ("wall time", f"{wall:.1f} s"),
    ]  # fmt: skip
    width = max(len(k) for k, _ in rows)
    print("\n".join(f"{k:<{width}}  {v}" for k, v in rows))
    return 0


def _add_cooccurrence(sub) -> None:
    p = sub.add_parser("cooccurrence", help="co-occurrence counts and top-K neighbours (Beam job)",
                       description="Unknown options are passed to Beam.")  # fmt: skip
    p.add_argument("--playlists", required=True, help="playlists table (file or folder of parts)")
    p.add_argument(
        "--output", required=True, help="dataset root; writes OUT/cooc (or OUT/cooc_artist)"
    )
    p.add_argument("--top-k", type=int, default=10)
    p.add_argument("--min-count", type=int, default=1, help="drop pairs seen in fewer groups")
    p.add_argument(
        "--counts", action="store_true", help="also write every pair (track_id < neighbor_id)"
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the tie rule")
    p.add_argument(
        "--group-by",
        choices=("playlist", "artist"),
        default="playlist",
        help="artist: tracks co-occur when they share an artist (Artist CO baseline)",
    )
    p.add_argument(
        "--track-meta",
        default=None,
        help="with --group-by artist (default: track_meta.parquet beside --playlists)",
    )
    p.add_argument(
        "--blocks",
        type=int,
        default=1,
        help="anchor blocks: 1 is fastest on one machine; more bound each worker's "
        "memory and spread work over Dataflow workers",
    )
    p.add_argument(
        "--max-group-tracks",
        type=int,
        default=10_000,
        help="longer playlists are skipped and counted (cost grows with length²)",
    )
    p.add_argument("--threads", type=int, default=None, help="kernel threads (default: all cores)")
    p.set_defaults(func=cmd_cooccurrence)


def _run_step(job, label: str, beam_args: list[str]) -> tuple[dict, float]:
    """Run a single-process trainer as one Beam step; returns its published sidecar."""
    from duet import publish
    from duet.pipelines import beam_io
    from duet.pipelines.tables import common as embeddings

    publish.clear_success(job.folder)
    pipeline = beam_io.make_pipeline(beam_args)
    beam_io.one_step(pipeline, job.run, label)
    try:
        _, wall = _run_timed(pipeline)
    except (embeddings.EmbeddingInputError, FileNotFoundError) as exc:
        raise SystemExit(f"duet {label}: {str(exc).splitlines()[0]}") from exc
    return publish.require_success(job.folder), wall


def _print_rows(rows: list[tuple[str, str]]) -> None:
    width = max(len(k) for k, _ in rows)
    print("\n".join(f"{k:<{width}}  {v}" for k, v in rows))


def _splits_option(args: argparse.Namespace) -> dict:
    from duet import storage

    names = tuple(s for s in (args.split or "").split(",") if s)
    splits = args.splits or storage.join(args.output, "splits.parquet")
    return {"split": names, "splits": splits if names else None}


def cmd_embeddings(args: argparse.Namespace, beam_args: list[str]) -> int:
    from duet import storage
    from duet.pipelines.tables import cf, w2v

    common = {"output": args.output, "seed": args.seed, "epochs": args.epochs,
              "deterministic": args.deterministic, **_splits_option(args)}  # fmt: skip
    if args.model == "w2v":
        options = {"playlists": args.playlists, "vector_size": args.vector_size,
                   "window": args.window, "alpha": args.alpha, "min_count": args.min_count,
                   "workers": args.workers}  # fmt: skip
        make = w2v.W2VJob
    elif args.model == "genre-w2v":
        options = {"track_meta": args.track_meta, "vector_size": args.vector_size,
                   "window": args.window, "workers": args.workers}  # fmt: skip
        make = w2v.GenreW2VJob
    else:
        options = {"playlists": args.playlists, "model": args.cf_model, "factors": args.factors,
                   "learning_rate": args.learning_rate, "regularization": args.regularization,
                   "max_sampled": args.max_sampled, "threads": args.threads}  # fmt: skip
        make = cf.CFJob
    job = make(**{k: v for k, v in {**common, **options}.items() if v is not None})
    body, wall = _run_step(job, f"embeddings {args.model}", beam_args)
    counts = body["counts"]
    rows = [("model", body["model"])]
    if "playlists_used" in counts:
        rows.append(("playlists", f"{counts['playlists_used']:,} of {counts['playlists_read']:,} "
                                  f"({counts['entries_used']:,} entries)"))  # fmt: skip
    if args.model == "genre-w2v":
        rows += [("genres", f"{counts['genres']:,} ({counts['genres_without_context']:,} never "
                            "listed beside another genre: initial vectors)"),
                 ("tracks", f"{counts['tracks']:,} ({counts['tracks_without_genres']:,} without "
                            f"genres, {counts['unknown_genres']:,} unknown genre entries, "
                            f"{counts['tracks_over_slots']:,} over 10 genres)")]  # fmt: skip
    else:
        rows.append(("vectors", f"{counts['vectors']:,} tracks"))
    if counts.get("long_playlists"):
        rows.append(("long playlists", f"{counts['long_playlists']:,} split into pieces of 10 000"))
    if body["parameters"].get("split"):
        rows.append(("split", ",".join(body["parameters"]["split"])))
    rows += [("output", job.folder), ("wall time", f"{wall:.1f} s")]
    _print_rows(rows)
    return 0 if storage.exists(job.folder) else 1


def _add_embeddings(sub) -> None:
    p = sub.add_parser("embeddings", help="Word2Vec, CF (WARP/BPR/ALS) and genre embedding tables",
                       description="Unknown options are passed to Beam.")  # fmt: skip
    models = p.add_subparsers(dest="model", required=True)

    def common(q, vector_default: int | None):
        q.add_argument("--output", required=True, help="dataset root; writes OUT/emb/<model>")
        q.add_argument("--seed", type=int, default=0)
        q.add_argument("--deterministic", action="store_true",
                       help="one worker: bit-identical tables across runs (slower)")  # fmt: skip
        q.add_argument("--split", default=None,
                       help="train only on tracks of these splits, e.g. train or train,val")  # fmt: skip
        q.add_argument("--splits", default=None, help="splits table (default: OUT/splits.parquet)")
        q.add_argument("--epochs", type=int, default=None)
        if vector_default is not None:
            q.add_argument("--vector-size", type=int, default=vector_default)
            q.add_argument("--window", type=int, default=None,
                           help="default: the longest sentence (whole-playlist context)")  # fmt: skip
            q.add_argument("--workers", type=int, default=None, help="default: all cores")

    q = models.add_parser("w2v", help="playlist Word2Vec (Alonso-Jiménez et al.)")
    q.add_argument("--playlists", required=True)
    common(q, 128)
    q.add_argument("--alpha", type=float, default=0.02)
    q.add_argument("--min-count", type=int, default=1)
    q.set_defaults(func=cmd_embeddings)

    q = models.add_parser("cf", help="track factors: WARP (LightFM), BPR or ALS (implicit)")
    q.add_argument("--playlists", required=True)
    q.add_argument("--model", dest="cf_model", choices=("warp", "bpr", "als"), default="warp")
    common(q, None)
    q.add_argument("--factors", type=int, default=300)
    q.add_argument("--learning-rate", type=float, default=None)
    q.add_argument("--regularization", type=float, default=None)
    q.add_argument("--max-sampled", type=int, default=40, help="WARP negatives per positive")
    q.add_argument("--threads", type=int, default=None, help="default: all cores")
    q.set_defaults(func=cmd_embeddings)

    q = models.add_parser(
        "genre-w2v", help="genre Word2Vec and per-track genre ids (Ferraro et al.)"
    )
    q.add_argument("--track-meta", required=True)
    common(q, 128)
    q.set_defaults(func=cmd_embeddings)


def cmd_splits(args: argparse.Namespace, beam_args: list[str]) -> int:
    from duet.pipelines.tables import splits

    job = splits.SplitsJob(track_meta=args.track_meta, output=args.output, seed=args.seed,
                           test=args.test, val=args.val, exclude=args.exclude)  # fmt: skip
    body, wall = _run_step(job, "splits", beam_args)
    c = body["counts"]
    total = c["train"] + c["val"] + c["test"]
    _print_rows([
        ("method", body["parameters"]["method"]),
        ("tracks", f"{total:,} ({c['excluded']:,} excluded, {c['tracks_without_genres']:,} without genres)"),
        *[(name, f"{c[name]:,} ({100 * c[name] / total:.1f} %)") for name in ("train", "val", "test")],
        ("output", job.folder),
        ("wall time", f"{wall:.1f} s"),
    ])  # fmt: skip
    return 0


def _add_splits(sub) -> None:
    p = sub.add_parser("splits", help="train/val/test splits stratified on genres",
                       description="Unknown options are passed to Beam.")  # fmt: skip
    p.add_argument("--track-meta", required=True)
    p.add_argument("--output", required=True, help="dataset root; writes OUT/splits.parquet")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--test", type=float, default=0.1)
    p.add_argument("--val", type=float, default=0.1)
    p.add_argument("--exclude", default=None,
                   help="track ids to leave out: text (one per line) or a table with track_id")  # fmt: skip
    p.set_defaults(func=cmd_splits)


def _parse_epochs(text: str) -> tuple[int, int]:
    """``A:B`` (epochs A..B-1) or ``N`` (epochs 0..N-1)."""
    try:
        start, stop = text.split(":") if ":" in text else ("0", text)
        start, stop = int(start), int(stop)
    except ValueError:
        raise SystemExit(f"duet pairs: --epochs {text!r} is not A:B or N") from None
    if not 0 <= start < stop:
        raise SystemExit(f"duet pairs: --epochs {text!r} is empty or negative")
    return start, stop


def _pairs_job(args: argparse.Namespace):
    from duet.pipelines.pairs import job as pairs
    from duet.pipelines.pairs.common import STRATEGIES
    from duet.pipelines.pairs.sources import Inputs

    strategies = tuple(s for s in args.strategies.split(",") if s)
    if strategies == ("all",):
        strategies = STRATEGIES
    inputs = Inputs(data=args.data, playlists=args.playlists, topk=args.topk,
                          track_meta=args.track_meta, w2v=args.w2v, cf=args.cf,
                          genres=args.genres, splits=args.splits)  # fmt: skip
    return pairs.PairsJob(inputs=inputs, strategies=strategies, epochs=_parse_epochs(args.epochs),
                          seed=args.seed, run_id=args.run_id,
                          split=tuple(s for s in (args.split or "").split(",") if s),
                          keep=args.keep)  # fmt: skip


def print_pairs_stats(body: dict) -> None:
    rows = [("strategy", "epochs", "rows/epoch", "tracks", "coverage", "unpaired", "too short")]
    for strategy, epochs in sorted(body["stats"].items()):
        stats = list(epochs.values())

        def mean(key: str, stats: list[dict] = stats) -> float:
            return sum(s.get(key, 0) for s in stats) / len(stats)

        rows.append((strategy, str(len(stats)), f"{mean('rows'):,.0f}", f"{mean('eligible'):,.0f}",
                     f"{100 * mean('coverage'):.1f} %", f"{mean('unpaired'):,.0f}",
                     f"{mean('too_short'):,.0f}"))  # fmt: skip
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        print(
            "  ".join(
                c.ljust(w) if i == 0 else c.rjust(w)
                for i, (c, w) in enumerate(zip(row, widths, strict=True))
            )
        )


def cmd_pairs(args: argparse.Namespace, beam_args: list[str]) -> int:
    from apache_beam.options.pipeline_options import PipelineOptions

    from duet import publish, storage
    from duet.pipelines import beam_io
    from duet.pipelines.pairs import job as pairs
    from duet.pipelines.pairs import verify
    from duet.pipelines.pairs.common import PairsInputError, check_strategies
    from duet.pipelines.pairs.runs import latest_run
    from duet.pipelines.pairs.sources import Inputs

    if args.verify:
        job = _pairs_job(args) if args.strategies else None
        inputs = job.inputs if job else Inputs(args.data)
        run = latest_run(args.data) if args.verify == "LATEST" else args.verify
        report = verify.verify(args.data, run, inputs)
        bad = {(s, e): p for s, epochs in report.items() for e, p in epochs.items() if p}
        checked = sum(len(e) for e in report.values())
        for (strategy, epoch), problems in sorted(bad.items()):
            print(f"{strategy} epoch {epoch}: {'; '.join(problems)}")
        print(f"verified {checked} epoch files of run {run}: "
              f"{'all invariants hold' if not bad else f'{len(bad)} with problems'}")  # fmt: skip
        return 1 if bad else 0
    if not args.strategies:
        raise SystemExit("duet pairs: --strategies is required (or --verify RUN)")
    job = _pairs_job(args)
    if beam_io.is_local(PipelineOptions(beam_args)) and not any(
            a.startswith("--direct_num_workers") for a in beam_args):  # fmt: skip
        # epochs are independent and the kernels release the GIL: one thread per core
        beam_args = [*beam_args, "--direct_num_workers", str(os.cpu_count() or 1),
                     "--direct_running_mode", "multi_threading"]  # fmt: skip
    try:
        check_strategies(job.strategies)
        pipeline = beam_io.make_pipeline(beam_args)
        pairs.build(pipeline, job, published=time.time())
        _, wall = _run_timed(pipeline)
    except PairsInputError as exc:
        raise SystemExit(f"duet pairs: {str(exc).splitlines()[0]}") from exc
    body = publish.require_success(job.run_dir)
    print(f"run {job.run}: {len(job.strategies)} strategies x epochs {job.epochs[0]}..{job.epochs[1] - 1}"
          f" ({body['skipped_epochs']} already written) -> {job.run_dir}")  # fmt: skip
    if not body["audio_filter"]:
        print(f"note: {args.data} has no published audio index; tracks were not filtered by audio")
    print_pairs_stats(body)
    print(f"LATEST -> {job.run}; wall time {wall:.1f} s")
    if body.get("pruned"):
        print(f"pruned {len(body['pruned'])} old run(s): {', '.join(body['pruned'])}")
    return 0 if storage.exists(job.run_dir) else 1


def _add_pair_inputs(p) -> None:
    for name, what in (("playlists", "playlists table"), ("topk", "top-K table"),
                       ("track-meta", "track meta (artists)"), ("w2v", "Word2Vec vectors"),
                       ("cf", "CF vectors (default emb/cf-warp)"),
                       ("genres", "track genres (emb/genre_w2v/track_genres.parquet)"),
                       ("splits", "splits table")):  # fmt: skip
        p.add_argument(f"--{name}", default=None, help=f"{what} (default: under --data)")


def _add_pairs(sub) -> None:
    p = sub.add_parser("pairs", help="per-epoch pair manifests for every strategy (Beam job)",
                       description="Unknown options are passed to Beam.")  # fmt: skip
    p.add_argument("--data", required=True, help="dataset root; writes DATA/pairs/<run>/...")
    p.add_argument("--strategies", default=None,
                   help="comma-separated, or 'all': playlist_co, playlist_tco, artist_co, w2v, "
                   "cf, multimodal, self, self_mel, adjacent, random_segment, cpc")  # fmt: skip
    p.add_argument("--epochs", default="0:50", help="A:B for epochs A..B-1, or N (default 0:50)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--run-id", default=None, help="default: run-<digest of inputs and config>")
    p.add_argument("--split", default=None, help="only tracks of these splits, e.g. train")
    p.add_argument("--keep", type=int, default=None, help="keep only the newest K complete runs")
    p.add_argument("--verify", default=None, metavar="RUN",
                   help="re-check the invariants of a published run (or LATEST) and exit")  # fmt: skip
    _add_pair_inputs(p)
    p.set_defaults(func=cmd_pairs)


def cmd_nightly(args: argparse.Namespace, beam_args: list[str]) -> int:
    from duet import nightly
    from duet.pipelines.pairs.common import check_strategies
    from duet.pipelines.pairs.runs import latest_run

    strategies = tuple(s for s in args.strategies.split(",") if s)
    check_strategies(strategies)
    _parse_epochs(args.epochs)
    stages = nightly.plan(args.output, strategies, args.epochs, args.seed, inputs=tuple(args.input or ()),
                          fmt=args.format, tracks=args.tracks, keep=args.keep, cf_model=args.cf_model)  # fmt: skip
    done = nightly.run(stages, args.output, beam_args, invoke=main)
    print(f"[nightly] {sum(v == 'ran' for v in done.values())} stage(s) ran, "
          f"{sum(v == 'skipped' for v in done.values())} skipped; LATEST -> "
          f"{latest_run(args.output)}")  # fmt: skip
    return 0


def _add_nightly(sub) -> None:
    p = sub.add_parser("nightly", help="playlists → co-occurrence → embeddings → pairs, "
                       "skipping stages whose inputs did not change",
                       description="Unknown options are passed to every Beam stage.")  # fmt: skip
    p.add_argument("--output", required=True, help="dataset root")
    p.add_argument("--input", nargs="+", default=None,
                   help="raw playlist files (omit when OUT/playlists.parquet is maintained elsewhere)")  # fmt: skip
    p.add_argument("--format", choices=("mpd", "melon", "table"), default="mpd")
    p.add_argument(
        "--tracks", default=None, help="keep only tracks with audio (see duet playlists)"
    )
    p.add_argument("--strategies", default="playlist_co,playlist_tco")
    p.add_argument("--epochs", default="0:50")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--keep", type=int, default=None, help="keep the newest K pair runs")
    p.add_argument("--cf-model", choices=("warp", "bpr", "als"), default="warp")
    p.set_defaults(func=cmd_nightly)


def cmd_train(args: argparse.Namespace, beam_args: list[str]) -> int:
    from duet.training.loop import TrainConfig, parse_overrides, train

    overrides = parse_overrides(args.set or [])
    cfg = TrainConfig(recipe=args.recipe, data=args.data, out=args.out, epochs=args.epochs,
                      batch_size=args.batch_size, seed=args.seed, resume=args.resume,
                      workers=args.workers, max_steps=args.max_steps, device=args.device,
                      endpoint_url=args.s3_endpoint_url, progress=not args.quiet,
                      shard_cache=args.shard_cache,
                      shard_cache_bytes=_parse_size(args.shard_cache_size))  # fmt: skip
    summary = train(cfg, overrides)
    state = summary.get("state", {})
    print(f"{args.recipe}: epoch {state.get('epoch')} step {state.get('global_step')} "
          f"loss {summary.get('loss')} samples/s {summary.get('samples_per_s')} "
          f"data wait {100 * summary.get('data_wait', 0):.1f} % -> {args.out}")  # fmt: skip
    return 0


def cmd_embed(args: argparse.Namespace, beam_args: list[str]) -> int:
    from duet.training.loop import embed

    n = embed(args.checkpoint, args.data, args.output, endpoint_url=args.s3_endpoint_url,
              device=args.device)  # fmt: skip
    print(f"embedded {n:,} tracks -> {args.output}")
    return 0


def cmd_evaluate(args: argparse.Namespace, beam_args: list[str]) -> int:
    import json

    import numpy as np

    from duet import schemas, storage
    from duet.training import evaluate

    table = schemas.read_embeddings(args.embeddings)
    matrix = np.asarray(table.column("vector").combine_chunks().values).reshape(table.num_rows, -1)
    vectors = dict(zip(table.column("id").to_pylist(), matrix, strict=True))
    report: dict = {"tracks": len(vectors)}
    if args.labels:
        labels = schemas.table_from_bytes(
            storage.read_bytes(args.labels), args.labels, strings=("track_id",)
        )
        values = dict(zip(labels.column("track_id").to_pylist(), labels.column(args.label_column).to_pylist(),
                          strict=True))  # fmt: skip
        if not args.multilabel:
            values = {
                t: (v[0] if v else None) if isinstance(v, list) else v for t, v in values.items()
            }
        ids = sorted(t for t, v in values.items() if t in vectors and v not in (None, []))
        if args.splits:
            split = dict(zip(*(schemas.read_table(args.splits, schemas.SPLITS).column(c).to_pylist()
                               for c in ("track_id", "split")), strict=True))  # fmt: skip
            test = {t for t in ids if split.get(t) == "test"}
        else:
            rng = np.random.default_rng(args.seed)
            test = set(rng.choice(ids, size=max(1, len(ids) // 5), replace=False).tolist())
        train_ids = [t for t in ids if t not in test]
        test_ids = sorted(test)
        report["probe"] = evaluate.probe(
            np.stack([vectors[t] for t in train_ids]), [values[t] for t in train_ids],
            np.stack([vectors[t] for t in test_ids]), [values[t] for t in test_ids],
            multilabel=args.multilabel, seed=args.seed,
        )  # fmt: skip
        if args.shots:
            if args.multilabel:
                raise SystemExit(
                    "--shots: the few-shot probe takes single labels (no --multilabel)"
                )
            report["few_shot"] = evaluate.few_shot(np.stack([vectors[t] for t in ids]),
                                                   [values[t] for t in ids], args.shots,
                                                   args.draws, args.seed)  # fmt: skip
    if args.triplets:
        t = schemas.table_from_bytes(storage.read_bytes(args.triplets), args.triplets,
                                     strings=("anchor", "positive", "negative"))  # fmt: skip
        rows = list(
            zip(*(t.column(c).to_pylist() for c in ("anchor", "positive", "negative")), strict=True)
        )
        report["triplets"] = evaluate.triplet_accuracy(vectors, rows)
    if args.playlists:
        lists = (
            schemas.read_table(args.playlists, schemas.PLAYLISTS).column("track_ids").to_pylist()
        )
        report["continuation"] = evaluate.continuation(vectors, lists, seed=args.seed)
    text = json.dumps(report, indent=1, sort_keys=True)
    print(text)
    if args.output:
        storage.write_bytes(args.output, text.encode())
    return 0


def _add_train(sub) -> None:
    p = sub.add_parser(
        "train", help="train a published system on a dataset root (local, s3://, gs://)"
    )
    p.add_argument("--recipe", required=True, help="a preset of training/recipes (clmr, alonso-co|tco|artist|w2v|simclr, choi-self|adjacent|"
                   "random|cpc, ferraro, ferraro-genre, ferraro-cf, pemr) or a YAML file")  # fmt: skip
    p.add_argument("--data", required=True, help="dataset root URI")
    p.add_argument("--out", required=True, help="checkpoint and metrics folder (local or bucket)")
    p.add_argument("--epochs", type=int, default=None)
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--resume", action="store_true")
    p.add_argument("--workers", type=int, default=2, help="DataLoader worker processes")
    p.add_argument(
        "--max-steps", type=int, default=None, help="stop (and checkpoint) after N steps"
    )
    p.add_argument("--device", default=None, help="default: cuda when available, else cpu")
    p.add_argument("--s3-endpoint-url", default=None)
    p.add_argument("--set", nargs="*", help="recipe overrides, e.g. lr=3e-4 backbone=resnet50")
    p.add_argument(
        "--shard-cache",
        default=None,
        metavar="DIR",
        help="remote data: keep whole shards in this local folder after first use",
    )
    p.add_argument("--shard-cache-size", default="100G", help="bound of --shard-cache (e.g. 500G)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_train)
    p = sub.add_parser("embed", help="track embeddings from a checkpoint (Parquet id, vector)")
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--data", required=True)
    p.add_argument("--output", required=True, help="Parquet file URI")
    p.add_argument("--device", default=None)
    p.add_argument("--s3-endpoint-url", default=None)
    p.set_defaults(func=cmd_embed)
    p = sub.add_parser("evaluate", help="linear probe, triplet accuracy and playlist continuation")
    p.add_argument("--embeddings", required=True, help="Parquet id, vector (duet embed)")
    p.add_argument("--labels", default=None, help="table with track_id and --label-column")
    p.add_argument("--label-column", default="genres")
    p.add_argument(
        "--multilabel", action="store_true", help="tags: ROC-AUC / PR-AUC; else accuracy"
    )
    p.add_argument("--splits", default=None, help="splits table (test = held out); else 80/20")
    p.add_argument("--shots", type=int, default=0, help="also a few-shot probe: K tracks per class")
    p.add_argument("--draws", type=int, default=20, help="few-shot draws averaged")
    p.add_argument("--triplets", default=None, help="table with anchor, positive, negative")
    p.add_argument("--playlists", default=None, help="playlists table for continuation")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--output", default=None, help="write the JSON report here too")
    p.set_defaults(func=cmd_evaluate)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="duet", description=__doc__)
    parser.add_argument("--version", action="version", version=f"duet {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("doctor", help="print versions and which ffmpeg is used").set_defaults(
        func=cmd_doctor
    )
    p = sub.add_parser("sample-catalog", help="generate the built-in sample catalogue")
    p.add_argument("--output", required=True)
    p.add_argument("--tracks", type=int, default=60)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--playlists", type=int, default=None, help="default: 4 per track, at least 40")
    p.add_argument(
        "--no-broken", action="store_true", help="leave out the deliberately broken files"
    )
    p.set_defaults(func=cmd_sample_catalog)
    _add_shards(sub)
    _add_playlists(sub)
    _add_cooccurrence(sub)
    _add_embeddings(sub)
    _add_splits(sub)
    _add_pairs(sub)
    _add_nightly(sub)
    _add_train(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=os.environ.get("DUET_LOG_LEVEL", "WARNING"),
                        format="%(levelname)s %(name)s: %(message)s")  # fmt: skip
    logging.getLogger().addFilter(_QuietBeamImports())
    args, beam_args = build_parser().parse_known_args(argv)
    if args.command not in BEAM_COMMANDS and beam_args:
        raise SystemExit(f"duet {args.command}: unrecognized arguments: {' '.join(beam_args)}")
    if args.command in BEAM_COMMANDS:
        _configure_filesystems(beam_args)
    try:
        return args.func(args, beam_args)
    except DuetError as exc:
        if os.environ.get("DUET_DEBUG"):
            raise
        print(f"duet {args.command}: {exc}", file=sys.stderr)
        return 1


def _configure_filesystems(beam_args: list[str]) -> None:
    """Give Beam's FileSystems the command's options (``--s3_endpoint_url``, credentials,
    ``--project``) before the command touches ``s3://`` or ``gs://`` itself (markers, inputs),
    not only once the pipeline runs."""
    if any(a.startswith(("--s3_", "--project", "--gcs_", "--hdfs_")) for a in beam_args):
        from apache_beam.io.filesystems import FileSystems
        from apache_beam.options.pipeline_options import PipelineOptions

        FileSystems.set_options(PipelineOptions(beam_args))


if __name__ == "__main__":
    sys.exit(main())
