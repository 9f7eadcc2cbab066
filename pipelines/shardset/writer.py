"""Write one shard of every stream: members into deterministic tars, their index rows, the
failures, per-band statistics by split, and the shard's report, written last.

Every file of a shard is stored under a name tagged with the shard's fingerprint (a digest of
everything that decides its bytes, :mod:`duet.publish`), so a run writes beside the published
generation, never over it, and a re-run finds a shard whose inputs and configuration are
unchanged under the same names and keeps it when all its files are there
(:func:`previous_report`) — which is how a killed run resumes.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Sequence

import numpy as np

from duet import layout, publish, schemas, storage
from duet.hashing import member_key
from duet.pipelines.shardset.member import Member, sidecar_bytes
from duet.pipelines.shardset.stats import BandStats
from duet.pipelines.shardset.tar import TarWriter


def fingerprint(body: dict) -> str:
    """Digest of a shard's fingerprint body (canonical JSON)."""
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def failure(track_id: str | None, uri: str | None, stage: str, error: str) -> dict:
    """A dead-letter row (``schemas.FAILURES``)."""
    return {"track_id": track_id, "audio_uri": uri, "stage": stage, "error": error}


def report_name(shard: int) -> str:
    """The logical name of a shard's report (``reports/part-NNNNN.json``)."""
    return layout.part(layout.REPORTS, shard, "json")


def _complete(output: str, report: dict) -> bool:
    """Whether every file a shard's report lists is in place with its listed size."""
    for item in report.get("files", {}).values():
        try:
            size, _ = storage.file_size_and_mtime(layout.at(output, item["name"]))
        except OSError:
            return False
        if size != item["size"]:
            return False
    return bool(report.get("files"))


def read_report(uri: str) -> dict | None:
    """A report a run left, or None when it is missing or unreadable."""
    try:
        return publish.parse(storage.read_bytes(uri))
    except OSError:
        return None


def previous_report(output: str, shard: int, digest: str) -> dict | None:
    """The report an earlier run left for this shard when its fingerprint is ``digest`` and
    every file it lists is in place (its ``files`` then include the report itself); else None.
    Reports are stored under names tagged with the fingerprint, so a stale one is never found
    here (the next publish deletes it)."""
    name = publish.tagged(report_name(shard), publish.tag_of(digest))
    uri = layout.at(output, name)
    previous = read_report(uri)
    if previous is None or previous.get("fingerprint") != digest or not _complete(output, previous):
        return None
    size, _ = storage.file_size_and_mtime(uri)
    own = publish.entry(report_name(shard), name, size)
    return {**previous, "files": {**previous["files"], **own}}


class ShardWriter:
    """Streams one shard's members into one tar per stream and collects what the shard's
    index part, failures part and report hold. Memory: one track's members at a time plus
    one small index row per member."""

    def __init__(self, job: str, output: str, shard: int, num_shards: int,
                 streams: Sequence[str], digest: str):  # fmt: skip
        self.job, self.output, self.shard, self.num_shards = job, output, shard, num_shards
        self.digest, self.tag = digest, publish.tag_of(digest)
        self._names = {s: publish.tagged(layout.shard(s, shard), self.tag) for s in streams}
        self._tars = {s: TarWriter(storage.create(layout.at(output, name)))
                      for s, name in self._names.items()}  # fmt: skip
        self._keys: dict[str, str] = {}
        self.index_rows: list[dict] = []
        self.failures: list[dict] = []
        self._stats: dict[str, dict[str, BandStats]] = {"train": {}, "all": {}}
        self.tracks = 0
        self.audio_seconds = 0.0
        self.source_seconds = 0.0

    def key(self, track_id: str, uri: str | None) -> str | None:
        """The track's member key, or None (and a failure row) when another track of this
        shard already holds it."""
        key = member_key(track_id)
        if key in self._keys:
            self.fail(track_id, uri, "shard", f"member key collides with track {self._keys[key]!r}")
            return None
        self._keys[key] = track_id
        return key

    def fail(self, track_id: str | None, uri: str | None, stage: str, error: str) -> None:
        self.failures.append(failure(track_id, uri, stage, error))

    def add(self, track_id: str, key: str, split: str | None, members: list[Member],
            info: dict, *, source_seconds: float, features: dict[str, np.ndarray],
            extra_index: dict | None = None) -> None:  # fmt: skip
        """Append a track's members (each with its ``.json`` sidecar built from ``info``) and
        their index rows; ``features`` (profile name → ``[frames, bands]``) feed the band
        statistics of the split."""
        for member in members:
            tar = self._tars[member.stream]
            offset = tar.add(f"{key}.{member.extension}", member.data)
            tar.add(f"{key}.json", sidecar_bytes(track_id, member, info))
            self.index_rows.append({
                "track_id": track_id, "stream": member.stream,
                "shard": self._names[member.stream],
                "member": f"{key}.{member.extension}", "offset": offset, "size": len(member.data),
                "payload_offset": member.payload_offset, "format": member.format,
                "dtype": member.dtype, "sample_rate": member.sample_rate,
                "profile": member.profile, "samples": member.samples, "frames": member.frames,
                "n_mels": member.n_mels, "duration": member.duration, "sha256": member.sha256,
                "split": split, **member.blocks(), **(extra_index or {}),
            })  # fmt: skip
        self.tracks += 1
        self.audio_seconds += members[0].duration
        self.source_seconds += source_seconds
        for name, frames in features.items():
            part = BandStats.of(frames)
            for which in ("all", "train") if split == "train" else ("all",):
                held = self._stats[which].get(name)
                self._stats[which][name] = part if held is None else held.merge(part)

    def close(self, rows: int, with_split: int, **extra) -> dict:
        """Finish the tars, write the index and failures parts, then the report (last); every
        file under its name tagged with the shard's fingerprint, listed in the report's
        ``files`` (logical name → stored name and size, see :mod:`duet.publish`)."""
        files: dict[str, dict] = {}
        for stream, tar in self._tars.items():
            tar.close()
            files |= publish.entry(layout.shard(stream, self.shard), self._names[stream],
                                   tar.position)  # fmt: skip
        for folder, table, schema in ((layout.INDEX, self.index_rows, schemas.AUDIO_INDEX),
                                      (layout.FAILURES, self.failures, schemas.FAILURES)):  # fmt: skip
            data = schemas.to_parquet_bytes(schemas.from_rows(table, schema), schema)
            files |= publish.write(self.output, layout.part(folder, self.shard), data, self.tag)
        stages = Counter(f["stage"] for f in self.failures)
        report = {
            "job": self.job,
            "shard": self.shard,
            "num_shards": self.num_shards,
            "fingerprint": self.digest,
            "rows": rows,
            "failed": len(self.failures),
            "failed_by_stage": dict(sorted(stages.items())),
            "bytes": {s: w.position for s, w in self._tars.items()},
            "stats": {
                which: {n: s.to_json() for n, s in sorted(d.items())}
                for which, d in self._stats.items()
            },  # fmt: skip
            "tracks": self.tracks,
            "audio_seconds": self.audio_seconds,
            "source_seconds": self.source_seconds,
            "with_split": with_split,
            **extra,
            "files": files,
        }
        own = publish.write(self.output, report_name(self.shard), publish.dumps(report), self.tag)
        return {**report, "files": {**files, **own}, "reused": False}
