"""The Beam graph every shard-set job shares, and its publish step.

Shape::

    inputs ──read (one worker)──> rows ──key by stable hash mod N──> GroupByKey(shard)
      └─> input failures                            └─> write_shard: stream the shard's tracks
                                                        into one tar per stream, index + report
    reports ──ToList──> finalize: statistics, input failures, then the root's new generation
                        published in one step (:func:`publish_root`)

Only input rows travel through the shuffle, never audio or arrays: a worker reads the tracks
of the shard it writes, so memory stays at one track and nothing big is shuffled. A job is an
object with the :class:`ShardSetJob` methods; ``duet shards`` (``pipelines.audio.job``) and
``duet features import`` (``pipelines.features.job``) are the two.

Every file is stored under a name tagged with what decides its bytes and listed in the root's
``_SUCCESS`` (:mod:`duet.publish`): until the new marker replaces the old one, readers keep the
published generation, however the run ends.

One root holds the shard set of one job: the index, statistics and ``_SUCCESS`` are the
root's, so a job refuses a root another job's shards live in (:func:`claim`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Protocol, TypedDict

import apache_beam as beam
from apache_beam.metrics import Metrics

from duet import layout, publish, schemas, storage
from duet.errors import DuetError
from duet.hashing import shard_of
from duet.pipelines.shardset import writer
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
    for uri in storage.list_files(layout.at(output, layout.REPORTS)):
        report = writer.read_report(uri) if uri.endswith(".json") else None
        if report is not None:
            return report.get("job", "shards")
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
    if body and isinstance(body.get("num_shards"), int):
        return body["num_shards"]
    for uri in storage.list_files(layout.at(output, layout.REPORTS)):
        report = writer.read_report(uri) if uri.endswith(".json") else None
        if report and isinstance(report.get("num_shards"), int):
            return report["num_shards"]
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


def finish(output: str, reports: list[dict], input_failures: list[dict], *,
           streams: Sequence[str], profiles: Sequence, input_stage: str) -> dict:  # fmt: skip
    """Everything of the publish step but the marker: write the input failures and each
    profile's statistics (over the training split when any row has a split, else all
    tracks). ``profiles`` have ``name``, ``stream``, ``n_mels`` and ``to_dict()``. Returns
    ``counts``, the summary fields every shard set's ``_SUCCESS`` carries, and ``files``: the
    generation (every shard's files and these) for :func:`publish_root`."""
    reports = sorted(reports, key=lambda r: r["shard"])
    num_shards = len(reports)
    files: dict[str, dict] = {}
    for r in reports:
        files |= r["files"]
    failed = schemas.from_rows(input_failures, schemas.FAILURES)
    files |= publish.write(output, layout.MANIFEST_FAILURES,
                           schemas.to_parquet_bytes(failed, schemas.FAILURES))  # fmt: skip
    split = "train" if any(r["with_split"] for r in reports) else "all"
    for profile in profiles:
        parts = [BandStats.from_json(r["stats"][split][profile.name])
                 for r in reports if profile.name in r["stats"][split]]  # fmt: skip
        total = merge_in_order(parts) if parts else BandStats.empty(profile.n_mels)
        body = {"profile": profile.to_dict(), "split": split, "frames": total.count,
                "mean": total.mean.tolist(), "std": total.std.tolist()}  # fmt: skip
        files |= publish.write(output, layout.stats(profile.stream), publish.dumps(body))
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
        "files": files,
    }


def publish_root(output: str, body: dict, files: dict[str, dict], how: publish.Commit) -> dict:
    """Publish a shard set's generation (``files`` from :func:`finish`) with ``body`` as the
    root's ``_SUCCESS``: refused (nothing changes) when a file is missing, when the root's lock
    names another writer, or when it would index less than half the tracks the root publishes
    (unless ``how.allow_shrink``); then the files of the replaced generation are deleted."""
    return publish.commit(output, body, files, owned=layout.SHARD_FOLDERS, how=how,
                          measures={"indexed tracks": "counts.indexed"}, what=output)  # fmt: skip
