"""The Beam graph every shard-set job shares, and its publish step.

Shape::

    inputs ──read (one worker)──> rows ──key by stable hash mod N──> GroupByKey(shard)
      └─> input failures                            └─> write_shard: stream the shard's tracks
                                                        into one tar per stream, index + report
    reports ──ToList──> finalize: statistics, input failures, stale files, ``_SUCCESS``

Only input rows travel through the shuffle, never audio or arrays: a worker reads the tracks
of the shard it writes, so memory stays at one track and nothing big is shuffled. A job is an
object with the :class:`ShardSetJob` methods; ``duet shards`` (``pipelines.audio.job``) and
``duet features import`` (``pipelines.features.job``) are the two.

One root holds the shard set of one job: the index, statistics and ``_SUCCESS`` are the
root's, so a job refuses a root another job's shards live in (:func:`claim`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any, Protocol, TypedDict

import apache_beam as beam
from apache_beam.metrics import Metrics

from duet import layout, publish, schemas, storage
from duet.errors import DuetError
from duet.hashing import shard_of
from duet.pipelines.shardset.stats import BandStats, merge_in_order


class ShardSetCounts(TypedDict):
    input_rows: int
    indexed: int
    failed: int
    failed_by_stage: dict[str, int]


class ShardSetFields(TypedDict):
    """The fields every shard set's ``_SUCCESS`` carries beside the shared ones."""

    num_shards: int
    streams: list[str]
    audio_seconds: float  # stored (excerpts)
    source_seconds: float  # decoded or imported
    bytes: dict[str, int]  # per stream
    stats_split: str  # the split the mel statistics are over: train, or all


class RootTaken(DuetError):
    """The output root holds the shard set of another job."""


class ShardSetJob(Protocol):
    """What :func:`build` needs of a job (a frozen dataclass; Beam pickles it to workers)."""

    @property
    def name(self) -> str:
        """ "shards", "features": the root's owner and the metrics namespace."""

    @property
    def output(self) -> str: ...

    @property
    def num_shards(self) -> int | None: ...

    def read_inputs(self) -> Iterable[Any]:
        """Rows (with ``track_id``), ``TaggedOutput("failures", row)`` and exactly one
        ``TaggedOutput("meta", dict)``."""

    def size_shards(self, meta: dict) -> int: ...

    def write_shard(self, shard: int, num_shards: int, rows: list) -> dict: ...

    def finalize(self, reports: list[dict], input_failures: list[dict], meta: dict) -> dict: ...


def owner(output: str) -> str | None:
    """The job whose shard set lives in ``output`` (published or interrupted), if any."""
    body = publish.read_success(output)
    if body:
        return body.get("job", "shards")
    reports = [u for u in storage.list_files(layout.at(output, layout.REPORTS))
               if u.endswith(".json")]  # fmt: skip
    if reports:
        return json.loads(storage.read_bytes(reports[0])).get("job", "shards")
    return None


COMMANDS = {"shards": "duet shards", "features": "duet features import"}


def claim(output: str, job: str) -> None:
    """Refuse ``output`` when another job's shard set lives there."""
    found = owner(output)
    if found is not None and found != job:
        raise RootTaken(
            f"{output} holds the shards of `{COMMANDS.get(found, found)}`; "
            f"`{COMMANDS.get(job, job)}` writes a dataset root of its own (choose another --output)"
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


class ReadInputs(beam.DoFn):
    def __init__(self, job: ShardSetJob):
        self.job = job

    def process(self, _):
        yield from self.job.read_inputs()


class WriteShard(beam.DoFn):
    def __init__(self, job: ShardSetJob):
        self.job = job
        self.tracks_ok = Metrics.counter(job.name, "tracks_ok")
        self.tracks_failed = Metrics.counter(job.name, "tracks_failed")
        self.written = Metrics.counter(job.name, "shards_written")
        self.reused = Metrics.counter(job.name, "shards_reused")
        self.processed = Metrics.counter(job.name, "rows_processed")
        self.unchanged = Metrics.counter(job.name, "rows_unchanged")

    def process(self, element, num_shards: int):
        shard, rows = element
        rows = [r for r in rows if r is not None]
        report = self.job.write_shard(shard, num_shards, rows)
        (self.reused if report["reused"] else self.written).inc()
        (self.unchanged if report["reused"] else self.processed).inc(len(rows))
        self.tracks_ok.inc(report["tracks"])
        self.tracks_failed.inc(report["failed"])
        yield report


def build(pipeline: beam.Pipeline, job: ShardSetJob) -> beam.PCollection:
    """Add ``job`` to ``pipeline``; returns a PCollection holding the ``_SUCCESS`` body."""
    claim(job.output, job.name)
    read = (
        pipeline
        | "Inputs" >> beam.Create([None])
        | "ReadInputs" >> beam.ParDo(ReadInputs(job)).with_outputs("failures", "meta", main="rows")
    )
    rows = read.rows | "Spread" >> beam.Reshuffle()
    if job.num_shards:
        num_shards = pipeline | "FixedShards" >> beam.Create([job.num_shards])
    else:
        num_shards = read.meta | "SizeShards" >> beam.Map(job.size_shards)
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
            lambda reports, failures, meta: job.finalize(reports, failures, meta),
            failures=beam.pvalue.AsList(read.failures),
            meta=beam.pvalue.AsSingleton(read.meta),
        )
    )


def _stale_files(output: str, expected: set[str]) -> list[str]:
    stale = []
    for folder in layout.SHARD_FOLDERS:
        for uri in storage.list_files(layout.at(output, folder)):
            relative = uri[len(storage.join(output, "")) :].replace("\\", "/")
            if relative not in expected:
                stale.append(uri)
    return stale


def finish(output: str, reports: list[dict], input_failures: list[dict], *,
           streams: Sequence[str], profiles: Sequence, input_stage: str) -> dict:  # fmt: skip
    """Everything of the publish step but the marker: write the input failures and each
    profile's statistics (over the training split when any row has a split, else all
    tracks), delete files no shard of this run wrote. ``profiles`` have ``name``, ``stream``,
    ``n_mels`` and ``to_dict()``. Returns ``counts`` and the summary fields every shard set's
    ``_SUCCESS`` carries."""
    reports = sorted(reports, key=lambda r: r["shard"])
    num_shards = len(reports)
    schemas.write_table(
        schemas.from_rows(input_failures, schemas.FAILURES),
        layout.at(output, layout.MANIFEST_FAILURES), schemas.FAILURES,
    )  # fmt: skip
    split = "train" if any(r["with_split"] for r in reports) else "all"
    expected = {layout.MANIFEST_FAILURES}
    for profile in profiles:
        parts = [BandStats.from_json(r["stats"][split][profile.name])
                 for r in reports if profile.name in r["stats"][split]]  # fmt: skip
        total = merge_in_order(parts) if parts else BandStats.empty(profile.n_mels)
        body = {"profile": profile.to_dict(), "split": split, "frames": total.count,
                "mean": total.mean.tolist(), "std": total.std.tolist()}  # fmt: skip
        name = layout.stats(profile.stream)
        storage.write_bytes(layout.at(output, name), publish.dumps(body))
        expected.add(name)
    for shard in range(num_shards):
        expected.update(layout.shard(s, shard) for s in streams)
        expected.update(layout.part(f, shard, e) for f, e in ((layout.INDEX, "parquet"),
                        (layout.FAILURES, "parquet"), (layout.REPORTS, "json")))  # fmt: skip
    storage.delete(_stale_files(output, expected))
    stages: dict[str, int] = {}
    for r in reports:
        for stage, count in r["failed_by_stage"].items():
            stages[stage] = stages.get(stage, 0) + count
    if input_failures:
        stages[input_stage] = stages.get(input_stage, 0) + len(input_failures)
    return {
        "counts": {
            "indexed": sum(r["tracks"] for r in reports),
            "failed": sum(r["failed"] for r in reports) + len(input_failures),
            "failed_by_stage": dict(sorted(stages.items())),
        },
        "fields": {
            "num_shards": num_shards,
            "streams": list(streams),
            "audio_seconds": round(sum(r["audio_seconds"] for r in reports), 3),
            "source_seconds": round(sum(r["source_seconds"] for r in reports), 3),
            "bytes": {s: sum(r["bytes"][s] for r in reports) for s in streams},
            "stats_split": split,
        },
    }
