"""``duet shards``: decode every track once into indexed WebDataset shards (a Beam job).

The graph and the publish step are the shard set's (``pipelines.shardset.job``): the manifest
is read on one worker, rows are keyed by a stable hash of the track id and grouped by shard,
and the worker that writes a shard decodes its tracks one at a time. A shard whose inputs and
configuration are unchanged since the last run (same fingerprint in its report) is left
untouched, which makes re-runs after a crash or after adding tracks incremental; the root's new
generation is published in one step (``duet.publish``), the previous one readable until then.
"""

from __future__ import annotations

import functools
import math
import traceback
from collections import Counter
from dataclasses import dataclass

import apache_beam as beam
from threadpoolctl import threadpool_limits

from duet import layout, publish, storage
from duet.errors import DuetError
from duet.pipelines.audio.decode import LENGTH_CHECKS, AudioError
from duet.pipelines.audio.manifest import Columns, ManifestRow, read_manifest
from duet.pipelines.audio.mel import MelProfile, resolve_profile
from duet.pipelines.audio.track import AudioConfig, process_track
from duet.pipelines.shardset import job as shardset
from duet.pipelines.shardset import writer
from duet.progress import record

FORMAT_VERSION = 3
"""3: files stored under tagged names listed in the root's ``_SUCCESS`` (duet.publish)."""
DEFAULT_SHARD_BYTES = 256 * 1024 * 1024
TYPICAL_TRACK_SECONDS = 240.0
DEFAULT_STREAMS = "wav-16000,wav-22050,mel-choi,mel-alonso,mel-ferraro"
"""Every stream the published systems read: CLMR's 22.05 kHz and Choi's 16 kHz waveforms, and
the mel profiles of Choi, Alonso-Jiménez and Ferraro."""
SOURCE_COLUMNS = ("decoder", "source_duration", "declared_duration", "length_check",
                  "decode_note", "clipped", "gain")  # fmt: skip
"""Per-track fields of ``ProcessedTrack.info`` copied into each of the track's index rows."""
DECODE_CHECK_COUNTS = (*LENGTH_CHECKS, "undeclared", "decoded_again")
"""Counts of tracks by length check in the summary, and of tracks decoded a second time."""


class ShardsCounts(shardset.ShardSetCounts):
    decode_check: dict[str, int]  # tracks by length check (DECODE_CHECK_COUNTS)
    over_range: dict[str, float]  # scaled_tracks, min_gain, clipped_tracks, clipped_samples


class ShardsSummary(layout.Summary[ShardsCounts], shardset.ShardSetFields):
    """The root's ``_SUCCESS``: what the shards job read, wrote and refused."""


@dataclass(frozen=True)
class ShardsJob:
    tracks: str
    output: str
    config: AudioConfig
    columns: Columns = Columns()

    num_shards: int | None = None
    shard_bytes: int = DEFAULT_SHARD_BYTES
    progress_dir: str | None = None
    commit: publish.Commit = publish.Commit()
    name = "shards"

    def read_inputs(self):
        """Manifest rows, failure rows and one meta record (read whole, on one worker)."""
        manifest = read_manifest(self.tracks, self.columns)
        for failure in manifest.failures:
            yield beam.pvalue.TaggedOutput("failures", failure)
        yield beam.pvalue.TaggedOutput(
            "meta", {"fingerprint": manifest.fingerprint, "input_rows": manifest.input_rows,
                     "valid_rows": len(manifest.rows)})  # fmt: skip
        yield from manifest.rows

    def size_shards(self, meta: dict) -> int:
        return estimate_num_shards(meta["valid_rows"], self.config, self.shard_bytes)

    def write_shard(self, shard: int, num_shards: int, rows: list[ManifestRow]) -> dict:
        return write_shard(self, shard, num_shards, rows)

    def finalize(self, reports: list[dict], input_failures: list[dict], meta: dict) -> dict:
        return finalize(reports, input_failures, meta, self)


def parse_streams(spec: str) -> tuple[tuple[int, ...], tuple[MelProfile, ...]]:
    """``wav-16000,mel-alonso,my-profile.yaml`` → (waveform rates, mel profiles), each once."""
    rates, profiles = [], []
    for item in filter(None, (s.strip() for s in spec.split(","))):
        try:
            if item.startswith("wav-") and item[4:].isdigit():
                rates.append(int(item[4:]))
            elif item.startswith("mel-"):
                profiles.append(resolve_profile(layout.slug(item[4:], "mel profile")))
            elif item.endswith((".yaml", ".yml")):
                profiles.append(resolve_profile(item))
            else:
                raise DuetError(f"unknown stream {item!r} (wav-<rate>, mel-<profile> or a .yaml)")
        except ValueError as exc:  # a profile that does not exist or whose name is not a slug
            raise DuetError(f"--streams {item}: {exc}") from None
    return tuple(dict.fromkeys(rates)), tuple(dict.fromkeys(profiles))


def bytes_per_second(config: AudioConfig) -> float:
    """Stored bytes per second of audio, for sizing shards before anything is decoded."""
    wav = sum(2 * r for r in config.wav_rates) * (0.6 if config.wav_format == "flac" else 1.0)
    mel = sum(2 * p.n_mels * p.frames_per_second for p in config.profiles)
    return wav + mel


def estimate_num_shards(count: int, config: AudioConfig, shard_bytes: int) -> int:
    seconds = config.max_seconds or TYPICAL_TRACK_SECONDS
    return max(1, math.ceil(count * seconds * bytes_per_second(config) / shard_bytes))


def _source_stamp(uri: str) -> list:
    """[size, mtime] of an input file; [None, None] when it cannot be read (decode reports why)."""
    try:
        return list(storage.file_size_and_mtime(uri))
    except Exception:  # noqa: BLE001 - an unreachable object is stamped as unknown, not fatal
        return [None, None]


def shard_fingerprint(
    shard: int, num_shards: int, rows: list[ManifestRow], config: AudioConfig
) -> str:
    """Digest of everything that decides a shard's bytes: inputs (with size and mtime), config."""
    return writer.fingerprint({
        "format": FORMAT_VERSION,
        "shard": shard,
        "num_shards": num_shards,
        "config": config.to_dict(),
        "tracks": [[r.track_id, r.audio_uri, r.split, *_source_stamp(r.audio_uri)] for r in rows],
    })  # fmt: skip


@functools.cache
def single_threaded_blas() -> None:
    """Limit BLAS to one thread in this worker process, once.

    Idle OpenBLAS threads spin on the core that decoding needs (measured: ffmpeg decode 145 →
    90 ms per 30-s MP3 once limited); parallelism comes from Beam workers instead. Set per
    process, not per call, because the limit is process-global and worker threads overlap.
    """
    threadpool_limits(limits=1, user_api="blas")


def write_shard(job: ShardsJob, shard: int, num_shards: int, rows: list[ManifestRow]) -> dict:
    """Write (or keep) one shard of every stream; return its report."""
    single_threaded_blas()
    rows = sorted(rows, key=lambda r: r.track_id)
    config, out = job.config, job.output
    digest = shard_fingerprint(shard, num_shards, rows, config)
    previous = writer.previous_report(out, shard, digest)
    if previous is not None:
        record(job.progress_dir, done=len(rows), failed=previous["failed"])
        return {**previous, "reused": True}
    shard_writer = writer.ShardWriter(job.name, out, shard, num_shards, config.streams, digest)
    checks: Counter = Counter()
    levels = {"scaled_tracks": 0, "min_gain": 1.0, "clipped_tracks": 0, "clipped_samples": 0}
    for row in rows:
        key = shard_writer.key(row.track_id, row.audio_uri)
        if key is None:
            record(job.progress_dir, failed=1)
            continue
        try:
            track = process_track(row.audio_uri, config)
        except AudioError as exc:
            shard_writer.fail(row.track_id, row.audio_uri, exc.stage, exc.message)
            record(job.progress_dir, failed=1)
            continue
        except Exception as exc:  # noqa: BLE001 - one bad track must never stop the job
            detail = traceback.format_exception_only(type(exc), exc)[-1].strip()
            shard_writer.fail(row.track_id, row.audio_uri, "internal", detail[:500])
            record(job.progress_dir, failed=1)
            continue
        shard_writer.add(row.track_id, key, row.split, track.members, track.info,
                         source_seconds=track.info["source_duration"], features=track.mels,
                         extra_index={k: track.info[k] for k in SOURCE_COLUMNS})  # fmt: skip
        checks[track.info["length_check"] or "undeclared"] += 1
        checks["decoded_again"] += track.info["decoded_again"]
        if track.info["gain"] < 1.0:
            levels["scaled_tracks"] += 1
            levels["min_gain"] = min(levels["min_gain"], track.info["gain"])
        if track.info["clipped"]:
            levels["clipped_tracks"] += 1
            levels["clipped_samples"] += track.info["clipped"]
        record(job.progress_dir, seconds=track.info["source_duration"])
    return shard_writer.close(
        rows=len(rows),
        with_split=sum(r.split is not None for r in rows),
        decode_check=dict(sorted(checks.items())),
        over_range=levels,
    )


def finalize(
    reports: list[dict], manifest_failures: list[dict], meta: dict, job: ShardsJob
) -> dict:
    """Merge statistics, write manifest failures, publish the root's new generation."""
    config = job.config
    shared = shardset.finish(job.output, reports, manifest_failures, streams=config.streams,
                             profiles=config.profiles, input_stage="manifest")  # fmt: skip
    checks: Counter = Counter()
    for r in reports:
        checks.update(r["decode_check"])
    levels = {k: sum(r["over_range"][k] for r in reports)
              for k in ("scaled_tracks", "clipped_tracks", "clipped_samples")}  # fmt: skip
    levels["min_gain"] = min((r["over_range"]["min_gain"] for r in reports), default=1.0)
    body = layout.summary(
        "shards",
        format_version=FORMAT_VERSION,
        config=config.to_dict(),
        inputs={"tracks": {"uri": job.tracks, "fingerprint": meta["fingerprint"]}},
        counts={
            "input_rows": meta["input_rows"],
            **shared["counts"],
            "decode_check": {k: checks.get(k, 0) for k in DECODE_CHECK_COUNTS},
            "over_range": levels,
        },
        **shared["fields"],
    )
    return shardset.publish_root(job.output, body, shared["files"], job.commit)


def build(pipeline: beam.Pipeline, job: ShardsJob) -> beam.PCollection:
    """Add the shards job to ``pipeline``; returns a PCollection holding the ``_SUCCESS`` body."""
    return shardset.build(pipeline, job)
