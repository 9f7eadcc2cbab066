"""``duet playlists``: normalise MPD slices, Melon files or plain tables into playlists and
track metadata — the Beam graph (Dataflow, Flink, Spark, or any runner named by ``--runner``).

Shape of the job::

    units ──Reshuffle──> Parse (one unit per element): records (playlist, origin, positions,
      │                  tracks) + track metadata + failures + drop counts, optionally mapped
      │                  onto the tracks that have audio
      └─> (part, tagged table): records by hash(playlist_id) mod P, metadata (and ids
          without audio) by hash(track_id) mod P ──> GroupByKey ──> WritePart p
    reports ──> finalize: dropped + failures tables, stale parts removed, ``_SUCCESS`` markers

Without ``--runner``, ``duet playlists`` runs the same steps (``steps``) with the local runner
(``local``), which replaces the GroupByKey with parts spilled to local disk: the same bytes
in bounded memory. Nothing is dropped silently: every removed entry, track or playlist is
counted under a reason in ``playlists_dropped.parquet``; unreadable files and records are
listed in ``playlists_failures.parquet``.
"""

from __future__ import annotations

import apache_beam as beam
import numpy as np
import pyarrow as pa
from apache_beam.metrics import Metrics

from duet.pipelines.playlists.steps import (
    FORMATS,
    PlaylistsCounts,
    PlaylistsJob,
    PlaylistsSummary,
    audio_ids,
    finalize,
    parse_report,
    parse_unit,
    part_of,
    plan,
    tagged_tables,
    write_part,
)

__all__ = ["FORMATS", "PlaylistsCounts", "PlaylistsJob", "PlaylistsSummary", "build"]


class Parse(beam.DoFn):
    """One unit → its tables keyed by part, plus a small report."""

    def __init__(self, job: PlaylistsJob, parts: int):
        self.job, self.parts = job, parts
        self.units = Metrics.counter("playlists", "units_parsed")
        self.playlists = Metrics.counter("playlists", "records_parsed")
        self.entries = Metrics.counter("playlists", "entries_parsed")

    def process(self, unit, audio):
        parsed = parse_unit(unit, self.job, audio)
        report = parse_report(unit, parsed)
        self.units.inc()
        self.playlists.inc(report["playlists"])
        self.entries.inc(report["entries"])
        yield report
        for tag, table in tagged_tables(parsed):
            part = part_of(table, tag, self.parts)
            for p in np.unique(part):
                yield beam.pvalue.TaggedOutput(
                    "tables", (int(p), (tag, table.filter(pa.array(part == p))))
                )


def build(pipeline: beam.Pipeline, job: PlaylistsJob) -> beam.PCollection:
    """Add the playlists job to ``pipeline``; returns a PCollection of the ``_SUCCESS`` body."""
    the_plan = plan(job)
    audio = audio_ids(job.tracks, job.track_key) if job.tracks else None
    parsed = (
        pipeline
        | "Units" >> beam.Create(the_plan.units)
        | "Spread" >> beam.Reshuffle()
        | "Parse"
        >> beam.ParDo(Parse(job, the_plan.parts), audio).with_outputs("tables", main="report")
    )
    reports = (
        parsed.tables
        | "ByPart" >> beam.GroupByKey()
        | "WritePart" >> beam.FlatMap(lambda element: write_part(element[0], element[1], job))
        | "AllReports" >> beam.combiners.ToList()
    )
    parse_reports = parsed.report | "AllParsed" >> beam.combiners.ToList()
    return reports | "Finalize" >> beam.Map(
        lambda r, p: finalize(r, p, job, the_plan.parts, the_plan.files),
        beam.pvalue.AsSingleton(parse_reports),
    )
