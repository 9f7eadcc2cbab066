"""``duet playlists`` on one machine, in memory bounded by design: the steps of the Beam job
(``steps``), with the GroupByKey replaced by parts spilled to local disk.

    units ──worker processes──> parse_unit ──partition──> spill/<tag>/<unit>.arrow (P batches)
    parts ──worker processes──> read batch p of every spill file ──> write_part p
    reports ──> finalize (``_SUCCESS`` last)

A worker holds one unit (one MPD slice, or about a million table rows) or one part (about
2 M entries) at a time, so peak memory depends on the part size, not on the number of
playlists; the spill takes about 30 bytes per entry on disk (LZ4). The output is byte for
byte the Beam job's (tested), whatever the number of workers.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from multiprocessing import get_context

import pyarrow as pa
from tqdm import tqdm

from duet.errors import DuetError
from duet.pipelines.playlists.steps import (
    Plan,
    PlaylistsJob,
    Unit,
    audio_ids,
    finalize,
    parse_report,
    parse_unit,
    part_of,
    plan,
    tagged_tables,
    write_part,
)
from duet.pipelines.spill import PartSpill


class WorkerDied(DuetError):
    """A worker process ended without a result (killed, usually for memory)."""


_STATE: dict = {}


@dataclass(frozen=True)
class Prepared:
    """What is checked before anything is written: the plan and the ids with audio."""

    plan: Plan
    audio: tuple[pa.Array, pa.Array] | None


def prepare(job: PlaylistsJob) -> Prepared:
    """The job's plan and audio ids; FileNotFoundError or ValueError for a user mistake."""
    return Prepared(plan(job), audio_ids(job.tracks, job.track_key) if job.tracks else None)


def _init(job: PlaylistsJob, parts: int, folder: str, audio, filesystem_args: tuple) -> None:
    """Per worker process: Beam's filesystem options (``s3://`` endpoint, credentials), the
    job, its spill folder and the ids with audio."""
    if filesystem_args:
        from apache_beam.io.filesystems import FileSystems
        from apache_beam.options.pipeline_options import PipelineOptions

        FileSystems.set_options(PipelineOptions(list(filesystem_args)))
    _STATE.update(job=job, spill=PartSpill(folder, parts), audio=audio)


def _parse(index: int, unit: Unit) -> dict:
    spill: PartSpill = _STATE["spill"]
    parsed = parse_unit(unit, _STATE["job"], _STATE["audio"])
    spilled = sum(spill.write(f"{index:07d}", tag, table, part_of(table, tag, spill.parts))
                  for tag, table in tagged_tables(parsed))  # fmt: skip
    return {**parse_report(unit, parsed), "spilled": spilled}


def _write(part: int) -> list[dict]:
    spill: PartSpill = _STATE["spill"]
    tagged = ((tag, t) for tag in ("records", "meta", "unmatched") for t in spill.read(part, tag))
    return write_part(part, tagged, _STATE["job"])


def _bar(total: int, desc: str, unit: str, show: bool) -> tqdm:
    tty = sys.stderr.isatty()
    return tqdm(total=total, desc=desc, unit=unit, dynamic_ncols=True, smoothing=0.05,
                mininterval=0.2 if tty else 5.0, file=sys.stderr, disable=not show)  # fmt: skip


class _Runner:
    """Calls in worker processes (spawned: no forked Arrow or numba threads), or in this process
    for one worker; a worker that dies ends the run with WorkerDied, never a hang."""

    def __init__(self, workers: int, init: tuple):
        self.pool = None
        if workers > 1:
            self.pool = ProcessPoolExecutor(workers, mp_context=get_context("spawn"),
                                            initializer=_init, initargs=init)  # fmt: skip
        else:
            _init(*init)

    def map(self, fn: Callable, calls: Iterable[tuple]) -> Iterator:
        """Results as they finish."""
        if self.pool is None:
            for args in calls:
                yield fn(*args)
            return
        futures = [self.pool.submit(fn, *args) for args in calls]
        try:
            for future in as_completed(futures):
                yield future.result()
        except BrokenProcessPool as exc:
            raise WorkerDied(
                "a worker process died (out of memory?); try fewer --workers or more --parts"
            ) from exc
        finally:
            for future in futures:
                future.cancel()

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(cancel_futures=True)


def run(job: PlaylistsJob, *, workers: int | None = None, spill_dir: str | None = None,
        progress: bool = True, filesystem_args: tuple[str, ...] = (),
    prepared: Prepared | None = None) -> dict:  # fmt: skip
    """Run the job here; returns the ``_SUCCESS`` body. ``workers``: processes (default: every
    core); ``spill_dir``: where parts are spilled (default: the system's temporary folder);
    ``filesystem_args``: Beam options the workers' filesystems need (``--s3_endpoint_url``...);
    ``prepared``: from :func:`prepare` (default: prepared here)."""
    prepared = prepared or prepare(job)
    the_plan = prepared.plan
    units, parts = the_plan.units, the_plan.parts
    workers = max(1, min(workers or os.cpu_count() or 1, len(units)))
    with tempfile.TemporaryDirectory(prefix="duet-playlists-", dir=spill_dir) as folder:
        runner = _Runner(workers, (job, parts, folder, prepared.audio, tuple(filesystem_args)))
        try:
            per_file = len(units) == len(the_plan.files)
            parsed = []
            with _bar(len(units), "parse", "file" if per_file else "unit", progress) as bar:
                started, playlists, entries, spilled = time.monotonic(), 0, 0, 0
                for report in runner.map(_parse, enumerate(units)):
                    spilled += report.pop("spilled")
                    parsed.append(report)
                    playlists += report["playlists"]
                    entries += report["entries"]
                    rate = entries / max(time.monotonic() - started, 1e-9)
                    bar.set_postfix_str(f"playlists={playlists:,} entries/s={rate:,.0f} "
                                        f"spilled={spilled / 1e9:.2f} GB", refresh=False)  # fmt: skip
                    bar.update()
            reports = []
            with _bar(parts, "write", "part", progress) as bar:
                for part_reports in runner.map(_write, ((p,) for p in range(parts))):
                    reports += part_reports
                    bar.update()
        finally:
            runner.close()
    return finalize(reports, parsed, job, parts, the_plan.files)
