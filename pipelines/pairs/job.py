"""Per-epoch pair manifests for every strategy, published atomically.

Each (strategy, epoch) is a pure function of (tables, seed, epoch, strategy): its random draws
come from ``derive_seed(seed, epoch, strategy)``, so epochs are independent Beam elements and
the result is the same on any runner and worker count. Layout::

    pairs/<run>/<strategy>/epoch=NNNN/part-00000.parquet   PAIRS rows
    pairs/<run>/<strategy>/epoch=NNNN/_SUCCESS             that epoch's statistics
    pairs/<run>/_SUCCESS                                   every statistic, config, inputs
    pairs/LATEST                                           the newest complete run's id

A run's folder is trusted only with its ``_SUCCESS``; ``LATEST`` is replaced (one write) after
it. A re-run of the same run skips epochs whose marker matches, so a crashed run resumes.
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
from duet.pipelines.pairs.common import CROPS, FORMAT_VERSION, EpochStats, check_strategies
from duet.pipelines.pairs.runs import prune, write_latest
from duet.pipelines.pairs.sources import Inputs, Sources, require
from duet.pipelines.pairs.strategies import make_epoch


class PairsCounts(TypedDict):
    epochs: int
    written: int
    skipped: int


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

    def fingerprints(self) -> dict[str, str]:
        names = sorted({n for s in self.strategies for n in self.inputs.needed(s, self.split)})
        out = {n: publish.input_fingerprint(self.inputs.uri(n)) for n in names}
        if any(s in CROPS for s in self.strategies) or storage.exists(
                publish.marker_uri(self.inputs.data)):  # fmt: skip
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
        return self.run_id or f"run-{self.key[:12]}"

    @property
    def run_dir(self) -> str:
        return layout.at(self.inputs.data, layout.pair_run(self.run))

    def epoch_dir(self, strategy: str, epoch: int) -> str:
        return layout.at(self.inputs.data, layout.pair_epoch(self.run, strategy, epoch))


def epoch_marker(job: PairsJob, strategy: str, epoch: int) -> dict | None:
    body = publish.read_success(job.epoch_dir(strategy, epoch))
    return body if body and body.get("key") == job.key else None


def write_epoch(job: PairsJob, sources: Sources, strategy: str, epoch: int) -> dict:
    """Write one (strategy, epoch) unless a matching marker says it is already there."""
    done = epoch_marker(job, strategy, epoch)
    if done is not None:
        return {**done, "skipped": True}
    folder = job.epoch_dir(strategy, epoch)
    publish.clear_success(folder)
    table, stats = make_epoch(sources, strategy, job.seed, epoch)
    schemas.write_table(table, layout.at(folder, layout.PAIRS_PART), schemas.PAIRS)
    body = {"strategy": strategy, "epoch": epoch, "key": job.key, "stats": stats}
    publish.write_success(folder, body)
    return {**body, "skipped": False}


def finalize(results: list[dict], job: PairsJob, published: float) -> dict:
    stats: dict = {}
    for r in sorted(results, key=lambda r: (r["strategy"], r["epoch"])):
        stats.setdefault(r["strategy"], {})[f"{r['epoch']:04d}"] = r["stats"]
    crops = {s: asdict(c) for s, c in CROPS.items() if s in job.strategies}
    skipped = sum(r["skipped"] for r in results)
    body = layout.summary(
        "pairs",
        format_version=FORMAT_VERSION,
        config={"strategies": sorted(job.strategies), "epochs": list(job.epochs),
                "seed": job.seed, "split": list(job.split), "crops": crops},  # fmt: skip
        inputs={n: {"uri": job.inputs.uri(n) if n != "audio_index" else job.inputs.data,
                    "fingerprint": f} for n, f in job.fingerprints().items()},  # fmt: skip
        counts={"epochs": len(results), "written": len(results) - skipped, "skipped": skipped},
        run=job.run, key=job.key, seed=job.seed, split=list(job.split),
        strategies=sorted(job.strategies), epochs=list(job.epochs),
        audio_filter=storage.exists(publish.marker_uri(job.inputs.data)), crops=crops,
        stats=stats, published=published, skipped_epochs=skipped,
    )  # fmt: skip
    publish.write_success(job.run_dir, body)
    write_latest(job.inputs.data, job.run)
    if job.keep:
        body["pruned"] = prune(job.inputs.data, job.keep, job.run)
    return body


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


def build(pipeline: beam.Pipeline, job: PairsJob, published: float) -> beam.PCollection:
    """Add the pairs job to ``pipeline``; returns a PCollection of the run's ``_SUCCESS``."""
    check_strategies(job.strategies)
    for strategy in job.strategies:
        for name in job.inputs.needed(strategy, job.split):
            require(job.inputs.uri(name), f"{strategy} needs the {name} table")
    if job.split and not job.inputs.splits_table():
        Sources(job.inputs, job.split).index_split()  # the index's split column, checked now
    current = publish.read_success(job.run_dir)
    if current is not None and current.get("key") != job.key:
        publish.clear_success(job.run_dir)  # a reused --run-id over other inputs: unpublish
    tasks = [(s, e) for s in sorted(job.strategies) for e in range(*job.epochs)]
    return (
        pipeline
        | "Tasks" >> beam.Create(tasks)
        | "Spread" >> beam.Reshuffle()
        | "WriteEpoch" >> beam.ParDo(WriteEpoch(job))
        | "Collect" >> beam.combiners.ToList()
        | "Publish" >> beam.Map(finalize, job, published)
    )
