"""Per-epoch pair manifests for every strategy, published atomically.

Each (strategy, epoch) is a pure function of (tables, seed, epoch, strategy): its random draws
come from ``derive_seed(seed, epoch, strategy)``, so epochs are independent Beam elements and
the result is the same on any runner and worker count. Layout::

    pairs/<run>/<strategy>/epoch-NNNN/part-00000-<tag>.parquet   PAIRS rows
    pairs/<run>/_SUCCESS                      every statistic, config, inputs and the files
    pairs/LATEST                              the newest complete run's id

A run's folder is trusted only through its ``_SUCCESS`` (duet.publish), written once every
epoch is, then ``LATEST`` is replaced (one write). While a run is unfinished each written
epoch also has ``epoch-NNNN/_SUCCESS`` (its key, statistics and file), so a re-run of the same
run resumes at the epochs it misses; publishing removes those. Epochs of a published run with
the same key are reused too (a longer ``--epochs`` range computes only the new ones).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from functools import cached_property
from typing import Any, NotRequired, TypedDict

import apache_beam as beam
from apache_beam.metrics import Metrics

from duet import __version__, layout, progress, publish, schemas, storage
from duet.pipelines.pairs.common import (
    CROPS,
    FORMAT_VERSION,
    EpochStats,
    PairsInputError,
    check_strategies,
)
from duet.pipelines.pairs.runs import prune, read_run, write_latest
from duet.pipelines.pairs.sources import Inputs, Sources, require
from duet.pipelines.pairs.strategies import make_epoch


class PairsCounts(TypedDict):
    epochs: int
    written: int
    skipped: int
    rows: int


class PairsSummary(layout.Summary[PairsCounts]):
    """A run's ``pairs/<run>/_SUCCESS``: every epoch's statistics, the config, the inputs."""

    run: str
    key: str
    seed: int
    split: list[str]
    strategies: list[str]
    epochs: list[int]
    audio_filter: bool  # whether tracks were filtered by a published audio index
    crops: dict[str, dict[str, Any]]
    stats: dict[str, dict[str, EpochStats]]  # strategy → "NNNN" → statistics
    published: float
    skipped_epochs: int
    pruned: NotRequired[list[str]]  # runs deleted by --keep


@dataclass(frozen=True)
class PairsJob:
    inputs: Inputs
    strategies: tuple[str, ...]
    epochs: tuple[int, int]
    seed: int = 0
    run_id: str | None = None
    split: tuple[str, ...] = ()
    keep: int | None = None
    commit: publish.Commit = publish.Commit()

    def fingerprints(self) -> dict[str, str]:
        names = sorted({n for s in self.strategies for n in self.inputs.needed(s, self.split)})
        out = {n: publish.input_fingerprint(self.inputs.uri(n)) for n in names}
        if any(s in CROPS for s in self.strategies) or publish.read_success(self.inputs.data):
            out["audio_index"] = publish.input_fingerprint(self.inputs.data)
        return out

    @cached_property
    def key(self) -> str:
        """Digest of everything that decides the run's bytes (not the epoch range)."""
        body = {"strategies": sorted(self.strategies), "seed": self.seed, "split": self.split,
                "inputs": self.fingerprints(), "format": FORMAT_VERSION, "code": __version__}  # fmt: skip
        return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()

    @property
    def run(self) -> str:
        return layout.slug(self.run_id, "--run-id") if self.run_id else f"run-{self.key[:12]}"

    @property
    def run_dir(self) -> str:
        return layout.at(self.inputs.data, layout.pair_run(self.run))

    @property
    def lock_dir(self) -> str:
        """The folder whose lock every pairs run of the root takes (runs share ``LATEST``)."""
        return layout.at(self.inputs.data, layout.PAIRS)

    def epoch_dir(self, strategy: str, epoch: int) -> str:
        return layout.at(self.inputs.data, layout.pair_epoch(self.run, strategy, epoch))


def _exists(folder: str, entry: dict) -> bool:
    """Whether a listed file is in place with its listed size."""
    try:
        size, _ = storage.file_size_and_mtime(storage.join(folder, *entry["name"].split("/")))
    except OSError:
        return False
    return size == entry["size"]


def previous_epoch(job: PairsJob, strategy: str, epoch: int) -> dict | None:
    """An epoch already written with this run's key: in the published run, or by an unfinished
    run of it (its epoch marker), with its file in place."""
    logical = layout.pair_part(strategy, epoch)
    published = publish.read_success(job.run_dir)
    if published and published.get("key") == job.key and logical in published.get("files", {}):
        entry = published["files"][logical]
        stats = published["stats"][strategy][f"{epoch:04d}"]
        if _exists(job.run_dir, entry):
            return {"strategy": strategy, "epoch": epoch, "key": job.key, "stats": stats,
                    "files": {logical: entry}}  # fmt: skip
    body = publish.read_success(job.epoch_dir(strategy, epoch))
    if body and body.get("key") == job.key and isinstance(body.get("files"), dict):
        entry = body["files"].get(logical)
        if entry is not None and _exists(job.run_dir, entry):
            return body
    return None


def write_epoch(job: PairsJob, sources: Sources, strategy: str, epoch: int) -> dict:
    """Write one (strategy, epoch) unless it is already there (see :func:`previous_epoch`)."""
    done = previous_epoch(job, strategy, epoch)
    if done is not None:
        return {**done, "skipped": True}
    table, stats = make_epoch(sources, strategy, job.seed, epoch)
    files = publish.write(job.run_dir, layout.pair_part(strategy, epoch),
                          schemas.to_parquet_bytes(table, schemas.PAIRS))  # fmt: skip
    body = {"strategy": strategy, "epoch": epoch, "key": job.key, "stats": stats, "files": files}
    storage.write_bytes(publish.marker_uri(job.epoch_dir(strategy, epoch)), publish.dumps(body))
    return {**body, "skipped": False}


def _refuse_empty(stats: dict, job: PairsJob) -> None:
    """A strategy that gave no row in any epoch is an error, not a published empty run."""
    for strategy, epochs in sorted(stats.items()):
        if not any(e["rows"] for e in epochs.values()):
            eligible = max(e.get("eligible", 0) for e in epochs.values())
            raise PairsInputError(
                f"{strategy}: no pairs in epochs {job.epochs[0]}..{job.epochs[1] - 1} "
                f"({eligible} eligible tracks); nothing was published (check its input tables)"
            )


def _refuse_shrink(stats: dict, job: PairsJob) -> None:
    """Rows per epoch of a strategy less than half those of the LATEST run: refused unless
    allowed (a truncated playlists table upstream, say)."""
    if job.commit.allow_shrink:
        return
    try:
        latest = read_run(job.inputs.data)
    except publish.NotPublished:
        return
    for strategy, epochs in sorted(stats.items()):
        before = latest[1].get("stats", {}).get(strategy)
        if not before:
            continue
        old = sum(e["rows"] for e in before.values()) / len(before)
        new = sum(e["rows"] for e in epochs.values()) / len(epochs)
        if new * 2 < old:
            raise publish.WouldShrink(
                f"{job.run_dir}: {strategy} would shrink from {old:,.0f} to {new:,.0f} rows per "
                f"epoch against LATEST ({latest[0]}); nothing was published (check the inputs, or "
                "pass --allow-shrink)"
            )


def finalize(results: list[dict], job: PairsJob, published: float) -> dict:
    stats: dict = {}
    files: dict[str, dict] = {}
    for r in sorted(results, key=lambda r: (r["strategy"], r["epoch"])):
        stats.setdefault(r["strategy"], {})[f"{r['epoch']:04d}"] = r["stats"]
        files |= r["files"]
    crops = {s: asdict(c) for s, c in CROPS.items() if s in job.strategies}
    skipped = sum(r["skipped"] for r in results)
    body = layout.summary(
        "pairs",
        format_version=FORMAT_VERSION,
        config={"strategies": sorted(job.strategies), "epochs": list(job.epochs),
                "seed": job.seed, "split": list(job.split), "crops": crops},  # fmt: skip
        inputs={n: {"uri": job.inputs.uri(n) if n != "audio_index" else job.inputs.data,
                    "fingerprint": f} for n, f in job.fingerprints().items()},  # fmt: skip
        counts={"epochs": len(results), "written": len(results) - skipped, "skipped": skipped,
                "rows": sum(e["rows"] for s in stats.values() for e in s.values())},  # fmt: skip
        run=job.run, key=job.key, seed=job.seed, split=list(job.split),
        strategies=sorted(job.strategies), epochs=list(job.epochs),
        audio_filter=publish.read_success(job.inputs.data) is not None, crops=crops,
        stats=stats, published=published, skipped_epochs=skipped,
    )  # fmt: skip
    _refuse_empty(stats, job)
    _refuse_shrink(stats, job)
    marker = publish.commit(job.run_dir, body, files, how=job.commit, what=job.run_dir,
                            lock=job.lock_dir)  # fmt: skip
    write_latest(job.inputs.data, job.run)
    if job.keep:
        marker["pruned"] = prune(job.inputs.data, job.keep, job.run)
    return marker


_SOURCES: dict[tuple, Sources] = {}


class WriteEpoch(beam.DoFn):
    """One (strategy, epoch) per element; the tables are loaded once per worker process."""

    def __init__(self, job: PairsJob):
        self.job = job
        self.written = Metrics.counter("pairs", "epochs_written")
        self.skipped = Metrics.counter("pairs", "epochs_skipped")

    def process(self, element):
        strategy, epoch = element
        cache_key = (self.job.inputs, self.job.split)
        sources = _SOURCES.setdefault(cache_key, Sources(self.job.inputs, self.job.split))
        result = write_epoch(self.job, sources, strategy, epoch)
        progress.tick()
        (self.skipped if result["skipped"] else self.written).inc()
        yield result


def check_inputs(job: PairsJob) -> None:
    """Refuse a job before it touches anything: unknown strategies, an invalid run id, or a
    strategy whose input table is not published."""
    check_strategies(job.strategies)
    if job.run_id is not None:
        layout.slug(job.run_id, "--run-id")
    for strategy in job.strategies:
        for name in job.inputs.needed(strategy, job.split):
            require(
                job.inputs.uri(name),
                name,
                f"{strategy} needs the {name} table",
                job.inputs.given(name),
            )
    if job.split and not job.inputs.splits_table():
        Sources(job.inputs, job.split).index_split()  # the index's split column, checked now


def build(pipeline: beam.Pipeline, job: PairsJob, published: float) -> beam.PCollection:
    """Add the pairs job to ``pipeline``; returns a PCollection of the run's ``_SUCCESS``."""
    check_inputs(job)
    tasks = [(s, e) for s in sorted(job.strategies) for e in range(*job.epochs)]
    return (
        pipeline
        | "Tasks" >> beam.Create(tasks)
        | "Spread" >> beam.Reshuffle()
        | "WriteEpoch" >> beam.ParDo(WriteEpoch(job))
        | "Collect" >> beam.combiners.ToList()
        | "Publish" >> beam.Map(finalize, job, published)
    )
