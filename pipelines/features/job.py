"""``duet features import``: precomputed per-track arrays → a mel stream of a dataset root (a
Beam job on the shard set of ``pipelines.shardset``).

The listing (Melon's ``arena_mel``, a folder, glob or manifest of ``.npy``) is read on one
worker; rows are keyed by a stable hash of the track id and grouped by shard; the worker that
writes a shard reads its arrays a few at a time ahead (``read_ahead`` threads, in order, so a
bucket's per-object latency overlaps), checks each one (:mod:`.arrays`) and streams it as a
float16 time-major member into the stream's tar. Bad arrays are failure rows; a shard whose
listing and configuration are unchanged (same fingerprint) is kept, so a killed run resumes
and a re-run rewrites nothing. The root's new generation is published in one step
(``duet.publish``): the previous one stays readable until then, and after any failure.
"""

from __future__ import annotations

import math
import traceback
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace

import apache_beam as beam

from duet import layout, publish, storage
from duet.errors import DuetError
from duet.pipelines.features import sources
from duet.pipelines.features.arrays import ArrayError, ArraySpec, read_header, to_frames
from duet.pipelines.features.profile import FeatureProfile
from duet.pipelines.shardset import job as shardset
from duet.pipelines.shardset import writer
from duet.pipelines.shardset.member import mel_member
from duet.progress import record

FORMAT_VERSION = 2
"""2: files stored under tagged names listed in the root's ``_SUCCESS`` (duet.publish)."""
DEFAULT_SHARD_BYTES = 256 * 1024 * 1024
MEMBER_OVERHEAD = 2048
"""Tar headers and the ``.json`` sidecar of one track, for sizing shards."""


class NothingImported(DuetError):
    """Not one array could be imported: nothing is published."""


class SplitsUnmatched(DuetError):
    """A splits table was given but holds none of the imported ids: nothing is published."""


@dataclass(frozen=True)
class FeaturesJob:
    """One import: ``input`` (layout ``melon`` or ``npy``) → the ``profile``'s stream in
    ``output``; ``splits`` (a splits table) decides which tracks the statistics cover."""

    input: str
    output: str
    profile: FeatureProfile
    layout: str = "melon"
    orientation: str = "bands-frames"
    id_from: str = "stem"
    splits: str | None = None
    min_frames: int = 256
    max_frames: int | None = None
    num_shards: int | None = None
    shard_bytes: int = DEFAULT_SHARD_BYTES
    read_ahead: int = 8
    progress_dir: str | None = None
    commit: publish.Commit = publish.Commit()
    name = "features"

    @property
    def spec(self) -> ArraySpec:
        longest = self.max_frames or math.ceil(3600 * self.profile.frames_per_second)
        return ArraySpec(self.profile.n_mels, self.orientation, self.min_frames, longest)

    @property
    def streams(self) -> list[str]:
        return [self.profile.stream]

    def config(self) -> dict:
        """Everything that decides the bytes of the stream (hashed into shard fingerprints)."""
        spec = self.spec
        return {"layout": self.layout, "orientation": spec.orientation, "id_from": self.id_from,
                "min_frames": spec.min_frames, "max_frames": spec.max_frames,
                "profiles": [self.profile.to_dict()]}  # fmt: skip

    def read_inputs(self):
        listing = sources.list_arrays(self.input, self.layout, self.id_from)
        rows = listing.rows
        if self.splits:
            split_of = sources.read_splits(self.splits)
            rows = [replace(r, split=split_of.get(r.track_id, r.split)) for r in rows]
        for failure in listing.failures:
            yield beam.pvalue.TaggedOutput("failures", failure)
        yield beam.pvalue.TaggedOutput("meta", {
            "fingerprint": listing.fingerprint, "input_rows": listing.input_rows,
            "ignored": listing.ignored, "valid_rows": len(rows),
            "with_split": sum(r.split is not None for r in rows),
            "source_bytes": sum(r.size or 0 for r in rows),
            "itemsize": _itemsize(rows[0].uri) if rows else None,
        })  # fmt: skip
        yield from rows

    def size_shards(self, meta: dict) -> int:
        """About ``shard_bytes`` of float16 members per shard, from the listed source sizes and
        the first array's item size (manifests, which list no sizes: the profile's frame rate
        over a 30-s excerpt)."""
        if meta["source_bytes"]:
            stored = meta["source_bytes"] * 2 / (meta["itemsize"] or 4)
        else:
            stored = (
                meta["valid_rows"] * 30 * self.profile.frames_per_second * self.profile.n_mels * 2
            )
        stored += meta["valid_rows"] * MEMBER_OVERHEAD
        return max(1, math.ceil(stored / self.shard_bytes))

    def write_shard(self, shard: int, num_shards: int, rows: list[sources.ArrayRow]) -> dict:
        return write_shard(self, shard, num_shards, rows)

    def finalize(self, reports: list[dict], input_failures: list[dict], meta: dict) -> dict:
        return finalize(reports, input_failures, meta, self)


def _itemsize(uri: str) -> int | None:
    """The item size of one array's dtype (from its header), for sizing shards."""
    try:
        return read_header(storage.read_range(uri, 0, 4096)).dtype.itemsize
    except (OSError, ArrayError):
        return None


def _stamped(row: sources.ArrayRow) -> sources.ArrayRow:
    if row.size is not None:
        return row
    try:
        size, mtime = storage.file_size_and_mtime(row.uri)
    except Exception:  # noqa: BLE001 - an unreadable object is stamped unknown; the read reports why
        return row
    return replace(row, size=size, mtime=mtime)


def ordered_map(fn: Callable, items: Iterable, window: int) -> Iterator[tuple]:
    """``(item, fn(item))`` in the order of ``items``, with up to ``window`` calls running or
    finished ahead on threads: overlaps read latency with bounded memory. ``fn`` must not
    raise (return the error)."""
    items = iter(items)
    if window <= 1:
        yield from ((item, fn(item)) for item in items)
        return
    with ThreadPoolExecutor(window) as pool:
        pending: deque = deque()
        for item in items:
            pending.append((item, pool.submit(fn, item)))
            if len(pending) >= window:
                head, future = pending.popleft()
                yield head, future.result()
        while pending:
            head, future = pending.popleft()
            yield head, future.result()


def fetch(row: sources.ArrayRow, spec: ArraySpec) -> bytes | ArrayError:
    """One array's bytes (run on a read-ahead thread), or the ArrayError that refuses it."""
    if row.size is not None and row.size > spec.max_bytes:
        return ArrayError("read", f"{row.size} bytes: larger than {spec.max_frames} frames")
    try:
        return storage.read_bytes(row.uri)
    except FileNotFoundError:
        return ArrayError("read", "no such file")
    except OSError as exc:
        return ArrayError("read", f"cannot read: {str(exc)[:300]}")


def convert(data: bytes, spec: ArraySpec, profile: FeatureProfile):
    """(member, frames, source info) of one array's bytes; ArrayError when refused."""
    frames, info = to_frames(data, spec)
    duration = frames.shape[0] / profile.frames_per_second
    return (
        mel_member(profile.stream, profile.name, profile.sample_rate, duration, frames),
        frames,
        info,
    )


def shard_fingerprint(job: FeaturesJob, shard: int, num_shards: int,
                      rows: list[sources.ArrayRow]) -> str:  # fmt: skip
    return writer.fingerprint({
        "format": FORMAT_VERSION, "shard": shard, "num_shards": num_shards,
        "config": job.config(),
        "tracks": [[r.track_id, r.uri, r.split, r.size, r.mtime] for r in rows],
    })  # fmt: skip


def write_shard(job: FeaturesJob, shard: int, num_shards: int,
                rows: list[sources.ArrayRow]) -> dict:  # fmt: skip
    """Write (or keep) one shard of the stream; return its report."""
    rows = sorted((_stamped(r) for r in rows), key=lambda r: (r.track_id, r.uri))
    digest = shard_fingerprint(job, shard, num_shards, rows)
    previous = writer.previous_report(job.output, shard, digest)
    if previous is not None:
        record(job.progress_dir, done=len(rows), failed=previous["failed"])
        return {**previous, "reused": True}
    shard_writer = writer.ShardWriter(job.name, job.output, shard, num_shards, job.streams,
                                      digest)  # fmt: skip
    copies = Counter(r.track_id for r in rows)
    unique = []
    for row in rows:
        if copies[row.track_id] > 1:
            others = [r.uri for r in rows if r.track_id == row.track_id and r is not row]
            shard_writer.fail(row.track_id, row.uri, "source",
                              f"duplicate track id: {copies[row.track_id]} arrays "
                              f"(also {', '.join(others[:3])})")  # fmt: skip
            record(job.progress_dir, failed=1)
        else:
            unique.append(row)
    spec, profile = job.spec, job.profile
    for row, data in ordered_map(lambda r: fetch(r, spec), unique, job.read_ahead):
        key = shard_writer.key(row.track_id, row.uri)
        if key is None:
            record(job.progress_dir, failed=1)
            continue
        try:
            if isinstance(data, ArrayError):
                raise data
            member, frames, info = convert(data, spec, profile)
        except ArrayError as exc:
            shard_writer.fail(row.track_id, row.uri, exc.stage, exc.message)
            record(job.progress_dir, failed=1)
            continue
        except Exception as exc:  # noqa: BLE001 - one bad array must never stop the job
            detail = traceback.format_exception_only(type(exc), exc)[-1].strip()
            shard_writer.fail(row.track_id, row.uri, "internal", detail[:500])
            record(job.progress_dir, failed=1)
            continue
        del data
        shard_writer.add(row.track_id, key, row.split, [member], info,
                         source_seconds=member.duration, features={profile.name: frames})  # fmt: skip
        record(job.progress_dir, seconds=member.duration)
    return shard_writer.close(rows=len(rows), with_split=sum(r.split is not None for r in rows))


class FeaturesCounts(shardset.ShardSetCounts):
    ignored_files: int  # files of the listing that are not arrays
    with_split: int  # arrays with a split in the splits table


class FeaturesSummary(layout.Summary[FeaturesCounts], shardset.ShardSetFields):
    """The root's ``_SUCCESS`` after an import: what was listed, imported and refused."""


def finalize(reports: list[dict], input_failures: list[dict], meta: dict,
             job: FeaturesJob) -> dict:  # fmt: skip
    """Statistics, listing failures, then the root's new generation — unless nothing was
    imported, which publishes nothing (the previous generation stays)."""
    shared = shardset.finish(job.output, reports, input_failures, streams=job.streams,
                             profiles=[job.profile], input_stage="source")  # fmt: skip
    counts = {"input_rows": meta["input_rows"], "ignored_files": meta["ignored"],
              "with_split": meta["with_split"], **shared["counts"]}  # fmt: skip
    if not counts["indexed"]:
        raise NothingImported(
            f"no array of {job.input} could be imported ({counts['failed']} failed: "
            f"{counts['failed_by_stage']}; see {layout.at(job.output, layout.FAILURES)})"
        )
    if job.splits and not counts["with_split"]:
        raise SplitsUnmatched(
            f"none of the {meta['valid_rows']} arrays of {job.input} is in the splits table "
            f"{job.splits} (do the ids match?); nothing is published"
        )
    inputs: dict[str, layout.Input] = {
        "arrays": {"uri": job.input, "fingerprint": meta["fingerprint"]}
    }
    if job.splits:
        inputs["splits"] = layout.input_of(job.splits)
    body = layout.summary(
        "features",
        format_version=FORMAT_VERSION,
        config=job.config(),
        inputs=inputs,
        counts=counts,
        **shared["fields"],
    )
    return shardset.publish_root(job.output, body, shared["files"], job.commit)


def build(pipeline: beam.Pipeline, job: FeaturesJob) -> beam.PCollection:
    """Add the import to ``pipeline``; returns a PCollection holding the ``_SUCCESS`` body."""
    return shardset.build(pipeline, job)
