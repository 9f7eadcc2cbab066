"""Write one shard of every stream: members into deterministic tars, their index rows, the
failures, per-band statistics by split, and the shard's report, written last.

A report carries the shard's fingerprint (a digest of everything that decides its bytes), so
a re-run keeps a shard whose inputs and configuration are unchanged and whose files are all
there (:func:`previous_report`) — which is how a killed run resumes.
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


def report_uri(output: str, shard: int) -> str:
    return layout.at(output, layout.part(layout.REPORTS, shard, "json"))


def _complete(output: str, shard: int, streams: Sequence[str]) -> bool:
    needed = [layout.shard(s, shard) for s in streams]
    needed += [layout.part(layout.INDEX, shard), layout.part(layout.FAILURES, shard)]
    return all(storage.exists(layout.at(output, p)) for p in needed)


def previous_report(output: str, shard: int, digest: str, streams: Sequence[str]) -> dict | None:
    """The report of an earlier run of this shard when its fingerprint is ``digest`` and all
    its files exist; otherwise the stale report is deleted and None returned."""
    uri = report_uri(output, shard)
    if not storage.exists(uri):
        return None
    previous = json.loads(storage.read_bytes(uri))
    if previous.get("fingerprint") == digest and _complete(output, shard, streams):
        return previous
    storage.delete([uri])
    return None


class ShardWriter:
    """Streams one shard's members into one tar per stream and collects what the shard's
    index part, failures part and report hold. Memory: one track's members at a time plus
    one small index row per member."""

    def __init__(self, job: str, output: str, shard: int, num_shards: int,
                 streams: Sequence[str]):  # fmt: skip
        self.job, self.output, self.shard, self.num_shards = job, output, shard, num_shards
        self._tars = {s: TarWriter(storage.create(layout.at(output, layout.shard(s, shard))))
                      for s in streams}  # fmt: skip
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
                "shard": layout.shard(member.stream, self.shard),
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

    def close(self, digest: str, rows: int, with_split: int, **extra) -> dict:
        """Finish the tars, write the index and failures parts, then the report (last)."""
        for tar in self._tars.values():
            tar.close()
        schemas.write_table(
            schemas.from_rows(self.index_rows, schemas.AUDIO_INDEX),
            layout.at(self.output, layout.part(layout.INDEX, self.shard)), schemas.AUDIO_INDEX,
        )  # fmt: skip
        schemas.write_table(
            schemas.from_rows(self.failures, schemas.FAILURES),
            layout.at(self.output, layout.part(layout.FAILURES, self.shard)), schemas.FAILURES,
        )  # fmt: skip
        stages = Counter(f["stage"] for f in self.failures)
        report = {
            "job": self.job,
            "shard": self.shard,
            "num_shards": self.num_shards,
            "fingerprint": digest,
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
        }
        storage.write_bytes(report_uri(self.output, self.shard), publish.dumps(report))
        return {**report, "reused": False}
