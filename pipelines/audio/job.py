"""``duet shards``: decode every track once into indexed WebDataset shards (a Beam job).

Shape of the job::

    manifest ──read (one worker)──> rows ──key by stable hash mod N──> GroupByKey(shard)
      └─> failures                                  └─> WriteShard: decode each track, stream members
                                                        into one tar per stream, index + report
    reports ──CombineGlobally──> finalize: stats, manifest failures, stale-file cleanup, _SUCCESS

Only manifest rows travel through the shuffle, never audio: a worker decodes the tracks of
the shard it writes, so memory stays at one track and nothing big is shuffled. A shard whose
inputs and configuration are unchanged since the last run (same fingerprint in its report) is
left untouched, which makes re-runs after a crash or after adding tracks incremental.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import traceback
from collections import Counter
from dataclasses import dataclass
from typing import TypedDict

import apache_beam as beam
from apache_beam.metrics import Metrics
from threadpoolctl import threadpool_limits

from duet import layout, publish, schemas, storage
from duet.errors import DuetError
from duet.hashing import member_key, shard_of
from duet.pipelines.audio.decode import AudioError
from duet.pipelines.audio.manifest import ManifestRow, read_manifest
from duet.pipelines.audio.mel import MelProfile, resolve_profile
from duet.pipelines.audio.stats import BandStats, merge_in_order
from duet.pipelines.audio.tar import TarWriter
from duet.pipelines.audio.track import (
    AudioConfig,
    ProcessedTrack,
    process_track,
    sidecar_bytes,
)
from duet.progress import record

FORMAT_VERSION = 1
DEFAULT_SHARD_BYTES = 256 * 1024 * 1024
TYPICAL_TRACK_SECONDS = 240.0
DEFAULT_STREAMS = "wav-16000,wav-22050,mel-choi,mel-alonso,mel-ferraro"
"""Every stream the published systems read: CLMR's 22.05 kHz and Choi's 16 kHz waveforms, and
the mel profiles of Choi, Alonso-Jiménez and Ferraro."""


class ShardsCounts(TypedDict):
    input_rows: int
    indexed: int
    failed: int
    failed_by_stage: dict[str, int]


class ShardsSummary(layout.Summary[ShardsCounts]):
    """The root's ``_SUCCESS``: what the shards job read, wrote and refused."""

    num_shards: int
    streams: list[str]
    audio_seconds: float  # stored (excerpts)
    source_seconds: float  # decoded
    bytes: dict[str, int]  # per stream
    stats_split: str  # the split the mel statistics are over: train, or all


@dataclass(frozen=True)
class ShardsJob:
    tracks: str
    output: str
    config: AudioConfig
    num_shards: int | None = None
    shard_bytes: int = DEFAULT_SHARD_BYTES
    progress_dir: str | None = None


def parse_streams(spec: str) -> tuple[tuple[int, ...], tuple[MelProfile, ...]]:
    """``wav-16000,mel-alonso,my-profile.yaml`` → (waveform rates, mel profiles), each once."""
    rates, profiles = [], []
    for item in filter(None, (s.strip() for s in spec.split(","))):
        if item.startswith("wav-") and item[4:].isdigit():
            rates.append(int(item[4:]))
        elif item.startswith("mel-"):
            profiles.append(resolve_profile(item[4:]))
        elif item.endswith((".yaml", ".yml")):
            profiles.append(resolve_profile(item))
        else:
            raise DuetError(f"unknown stream {item!r} (wav-<rate>, mel-<profile> or a .yaml)")
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
    body = {
        "format": FORMAT_VERSION,
        "shard": shard,
        "num_shards": num_shards,
        "config": config.to_dict(),
        "tracks": [[r.track_id, r.audio_uri, r.split, *_source_stamp(r.audio_uri)] for r in rows],
    }
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def _report_complete(output: str, report: dict, config: AudioConfig) -> bool:
    shard = report["shard"]
    needed = [layout.shard(s, shard) for s in config.streams]
    needed += [layout.part(layout.INDEX, shard), layout.part(layout.FAILURES, shard)]
    return all(storage.exists(storage.join(output, p)) for p in needed)


def _failure(row: ManifestRow, stage: str, error: str) -> dict:
    return {"track_id": row.track_id, "audio_uri": row.audio_uri, "stage": stage, "error": error}


def _process(row: ManifestRow, config: AudioConfig) -> ProcessedTrack | dict:
    """The track's members, or its failure row: one bad track never stops the job."""
    try:
        return process_track(row.audio_uri, config)
    except AudioError as exc:
        return _failure(row, exc.stage, exc.message)
    except Exception as exc:  # noqa: BLE001 - one bad track must never stop the job
        detail = traceback.format_exception_only(type(exc), exc)[-1].strip()
        return _failure(row, "internal", detail[:500])


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
    return _write_shard(job, shard, num_shards, rows)


def _write_shard(job: ShardsJob, shard: int, num_shards: int, rows: list[ManifestRow]) -> dict:
    rows = sorted(rows, key=lambda r: r.track_id)
    config, out = job.config, job.output
    fingerprint = shard_fingerprint(shard, num_shards, rows, config)
    report_uri = layout.at(out, layout.part(layout.REPORTS, shard, "json"))
    if storage.exists(report_uri):
        previous = json.loads(storage.read_bytes(report_uri))
        if previous.get("fingerprint") == fingerprint and _report_complete(out, previous, config):
            record(job.progress_dir, done=len(rows), failed=previous["failed"])
            return {**previous, "reused": True}
        storage.delete([report_uri])

    writers = {
        s: TarWriter(storage.create(layout.at(out, layout.shard(s, shard)))) for s in config.streams
    }
    index_rows: list[dict] = []
    failures: list[dict] = []
    stats: dict[str, dict[str, BandStats]] = {"train": {}, "all": {}}
    keys: dict[str, str] = {}
    totals = {"tracks": 0, "audio_seconds": 0.0, "source_seconds": 0.0,
              "with_split": sum(r.split is not None for r in rows)}  # fmt: skip
    for row in rows:
        key = member_key(row.track_id)
        if key in keys:
            track: ProcessedTrack | dict = _failure(
                row, "shard", f"member key collides with track {keys[key]!r}"
            )
        else:
            keys[key] = row.track_id
            track = _process(row, config)
        if isinstance(track, dict):
            failures.append(track)
            record(job.progress_dir, failed=1)
            continue
        for member in track.members:
            offset = writers[member.stream].add(f"{key}.{member.extension}", member.data)
            writers[member.stream].add(
                f"{key}.json", sidecar_bytes(row.track_id, member, track.info)
            )
            index_rows.append({
                "track_id": row.track_id, "stream": member.stream, "shard": layout.shard(member.stream, shard),
                "member": f"{key}.{member.extension}", "offset": offset, "size": len(member.data),
                "payload_offset": member.payload_offset, "format": member.format, "dtype": member.dtype,
                "sample_rate": member.sample_rate, "profile": member.profile, "samples": member.samples,
                "frames": member.frames, "n_mels": member.n_mels, "duration": member.duration,
                "sha256": member.sha256, "split": row.split,
            })  # fmt: skip
        duration = track.members[0].duration
        totals["tracks"] += 1
        totals["audio_seconds"] += duration
        totals["source_seconds"] += track.info["source_duration"]
        for name, feats in track.mels.items():
            part = BandStats.of(feats)
            for split in ("all", "train") if row.split == "train" else ("all",):
                held = stats[split].get(name)
                stats[split][name] = part if held is None else held.merge(part)
        record(job.progress_dir, seconds=track.info["source_duration"])
    for writer in writers.values():
        writer.close()
    schemas.write_table(
        schemas.from_rows(index_rows, schemas.AUDIO_INDEX),
        layout.at(out, layout.part(layout.INDEX, shard)), schemas.AUDIO_INDEX,
    )  # fmt: skip
    schemas.write_table(
        schemas.from_rows(failures, schemas.FAILURES),
        layout.at(out, layout.part(layout.FAILURES, shard)), schemas.FAILURES,
    )  # fmt: skip
    stages = Counter(f["stage"] for f in failures)
    report = {
        "shard": shard,
        "num_shards": num_shards,
        "fingerprint": fingerprint,
        "rows": len(rows),
        "failed": len(failures),
        "failed_by_stage": dict(sorted(stages.items())),
        "bytes": {s: w.position for s, w in writers.items()},
        "stats": {
            split: {n: s.to_json() for n, s in sorted(d.items())} for split, d in stats.items()
        },
        **totals,
    }
    storage.write_bytes(report_uri, publish.dumps(report))
    return {**report, "reused": False}


class ReadManifest(beam.DoFn):
    """Reads the whole manifest on one worker; emits rows, failures and one meta record."""

    def process(self, spec: str):
        manifest = read_manifest(spec)
        for failure in manifest.failures:
            yield beam.pvalue.TaggedOutput("failures", failure)
        yield beam.pvalue.TaggedOutput(
            "meta", {"fingerprint": manifest.fingerprint, "input_rows": manifest.input_rows,
                     "valid_rows": len(manifest.rows)})  # fmt: skip
        yield from manifest.rows


class WriteShard(beam.DoFn):
    def __init__(self, job: ShardsJob):
        self.job = job
        self.tracks_ok = Metrics.counter("shards", "tracks_ok")
        self.tracks_failed = Metrics.counter("shards", "tracks_failed")
        self.written = Metrics.counter("shards", "shards_written")
        self.reused = Metrics.counter("shards", "shards_reused")

    def process(self, element, num_shards: int):
        shard, rows = element
        report = write_shard(self.job, shard, num_shards, [r for r in rows if r is not None])
        (self.reused if report["reused"] else self.written).inc()
        self.tracks_ok.inc(report["tracks"])
        self.tracks_failed.inc(report["failed"])
        yield report


def _stale_files(output: str, expected: set[str]) -> list[str]:
    stale = []
    for folder in layout.SHARD_FOLDERS:
        for uri in storage.list_files(layout.at(output, folder)):
            relative = uri[len(storage.join(output, "")) :]
            if relative not in expected:
                stale.append(uri)
    return stale


def finalize(
    reports: list[dict], manifest_failures: list[dict], meta: dict, job: ShardsJob
) -> dict:
    """Merge statistics, write manifest failures, delete stale files, publish ``_SUCCESS``."""
    reports = sorted(reports, key=lambda r: r["shard"])
    num_shards = len(reports)
    config, out = job.config, job.output
    schemas.write_table(
        schemas.from_rows(manifest_failures, schemas.FAILURES),
        layout.at(out, layout.MANIFEST_FAILURES), schemas.FAILURES,
    )  # fmt: skip
    split = "train" if any(r["with_split"] for r in reports) else "all"
    expected = {layout.MANIFEST_FAILURES}
    for profile in config.profiles:
        parts = [BandStats.from_json(r["stats"][split][profile.name])
                 for r in reports if profile.name in r["stats"][split]]  # fmt: skip
        total = merge_in_order(parts) if parts else BandStats.empty(profile.n_mels)
        body = {"profile": profile.to_dict(), "split": split, "frames": total.count,
                "mean": total.mean.tolist(), "std": total.std.tolist()}  # fmt: skip
        name = layout.stats(profile.stream)
        storage.write_bytes(layout.at(out, name), publish.dumps(body))
        expected.add(name)
    for shard in range(num_shards):
        expected.update(layout.shard(s, shard) for s in config.streams)
        expected.update(layout.part(f, shard, e) for f, e in ((layout.INDEX, "parquet"),
                        (layout.FAILURES, "parquet"), (layout.REPORTS, "json")))  # fmt: skip
    storage.delete(_stale_files(out, expected))
    stages: dict[str, int] = {}
    for r in reports:
        for stage, n in r["failed_by_stage"].items():
            stages[stage] = stages.get(stage, 0) + n
    if manifest_failures:
        stages["manifest"] = stages.get("manifest", 0) + len(manifest_failures)
    tracks_ok = sum(r["tracks"] for r in reports)
    failed = sum(r["failed"] for r in reports) + len(manifest_failures)
    body = layout.summary(
        "shards",
        format_version=FORMAT_VERSION,
        config=config.to_dict(),
        inputs={"tracks": {"uri": job.tracks, "fingerprint": meta["fingerprint"]}},
        counts={
            "input_rows": meta["input_rows"],
            "indexed": tracks_ok,
            "failed": failed,
            "failed_by_stage": dict(sorted(stages.items())),
        },
        num_shards=num_shards,
        streams=config.streams,
        audio_seconds=round(sum(r["audio_seconds"] for r in reports), 3),
        source_seconds=round(sum(r["source_seconds"] for r in reports), 3),
        bytes={s: sum(r["bytes"][s] for r in reports) for s in config.streams},
        stats_split=split,
    )
    publish.write_success(out, body)
    return body


def build(pipeline: beam.Pipeline, job: ShardsJob) -> beam.PCollection:
    """Add the shards job to ``pipeline``; returns a PCollection holding the ``_SUCCESS`` body."""
    read = (
        pipeline
        | "Manifest" >> beam.Create([job.tracks])
        | "ReadManifest" >> beam.ParDo(ReadManifest()).with_outputs("failures", "meta", main="rows")
    )
    rows = read.rows | "Spread" >> beam.Reshuffle()
    if job.num_shards:
        num_shards = pipeline | "FixedShards" >> beam.Create([job.num_shards])
    else:
        num_shards = (
            read.meta
            | "SizeShards" >> beam.Map(
                lambda m: estimate_num_shards(m["valid_rows"], job.config, job.shard_bytes))
        )  # fmt: skip
    n = beam.pvalue.AsSingleton(num_shards)
    keyed = rows | "KeyByShard" >> beam.Map(lambda r, n: (shard_of(r.track_id, n), r), n=n)
    every = num_shards | "EveryShard" >> beam.FlatMap(lambda k: ((i, None) for i in range(k)))
    reports = (
        (keyed, every)
        | "Join" >> beam.Flatten()
        | "GroupByShard" >> beam.GroupByKey()
        | "WriteShard" >> beam.ParDo(WriteShard(job), num_shards=n)
    )
    return (
        reports
        | "AllReports" >> beam.combiners.ToList()
        | "Finalize"
        >> beam.Map(
            finalize,
            manifest_failures=beam.pvalue.AsList(read.failures),
            meta=beam.pvalue.AsSingleton(read.meta),
            job=job,
        )
    )


def previous_num_shards(output: str) -> int | None:
    """Shard count of an earlier run in ``output`` (published or interrupted), if any."""
    body = publish.read_success(output)
    if body:
        return int(body["num_shards"])
    first = layout.at(output, layout.part(layout.REPORTS, 0, "json"))
    if storage.exists(first):
        return int(json.loads(storage.read_bytes(first))["num_shards"])
    return None
