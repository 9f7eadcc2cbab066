"""``duet playlists``: normalise MPD slices, Melon files or plain tables into playlists and
track metadata (a Beam job).

Shape of the job::

    input files ──Reshuffle──> Parse (one file per element): entries (playlist, origin, pos,
      │                        track) + track metadata + failures + drop counts, optionally
      │                        mapped onto the tracks that have audio
      ├─> entries ──key: hash(playlist_id) mod P──> GroupByKey ──> WritePlaylists part P
      └─> metadata ──key: hash(track_id) mod P───> GroupByKey ──> WriteMeta part P
    reports ──> finalize: dropped + failures tables, stale parts removed, ``_SUCCESS`` markers

Nothing is dropped silently: every removed entry, track or playlist is counted under a
reason in ``playlists_dropped.parquet``; unreadable files and records are listed in
``playlists_failures.parquet``.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections import Counter
from dataclasses import dataclass
from typing import TypedDict

import apache_beam as beam
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.json as pajson

from duet import layout, publish, schemas, storage
from duet.pipelines.csr import dedupe_rows, string_keys, take_rows
from duet.pipelines.playlists import melon, mpd
from duet.pipelines.playlists import table as plain
from duet.pipelines.playlists.common import ENTRIES, Collector, Parsed, drop

FORMAT_VERSION = 1
FORMATS = ("mpd", "melon", "table")
"""The input formats, one module each (its ``PATTERNS`` pick the files of a folder)."""
_PATTERNS = {"mpd": mpd.PATTERNS, "melon": melon.PATTERNS, "table": plain.PATTERNS}
TABLES = {"playlists": (layout.PLAYLISTS, schemas.PLAYLISTS),
          "track_meta": (layout.TRACK_META, schemas.TRACK_META)}  # fmt: skip
"""The two published tables, by the tag of the reports that write their parts."""


class PlaylistsCounts(TypedDict):
    files: int
    playlists: int
    entries: int  # kept in playlists
    entries_read: int
    tracks_with_meta: int
    failures: int  # unreadable files and records


class PlaylistsSummary(layout.Summary[PlaylistsCounts]):
    """The ``_SUCCESS`` of ``playlists.parquet`` and ``track_meta.parquet``."""

    dropped: dict[str, int]  # "<reason>/entries|tracks|playlists|files" → how many


@dataclass(frozen=True)
class PlaylistsJob:
    inputs: tuple[str, ...]
    format: str
    output: str
    tracks: str | None = None
    track_key: str = "track_id"
    melon_genres: str = "detailed"
    parts: int | None = None


def audio_ids(spec: str, key_column: str = "track_id") -> tuple[pa.Array, pa.Array]:
    """(playlist-side key, track_id) of every track with audio: from a published dataset root
    (its audio index), a folder of feature arrays (ids from the ``.npy`` file names, e.g.
    Melon's ``arena_mel``) or a track manifest whose ``key_column`` holds the playlist ids."""
    from duet import index as audio_index
    from duet.pipelines.features.sources import array_ids

    if storage.exists(publish.marker_uri(spec)):
        ids = pa.array(audio_index.AudioIndex.open(spec).track_ids, pa.string())
        return ids, ids
    if storage.list_files(spec):
        ids = pa.array(array_ids(spec), pa.string())
        return ids, ids
    name = spec.lower()
    data = storage.read_bytes(spec)
    if name.endswith(".parquet"):
        table = schemas.parquet_from_bytes(data)
    elif name.endswith((".jsonl", ".json")):
        table = pajson.read_json(schemas.arrow_reader(data))
    else:
        table = pacsv.read_csv(schemas.arrow_reader(data))
    if key_column not in table.column_names or "track_id" not in table.column_names:
        raise ValueError(
            f"{spec}: needs columns 'track_id' and {key_column!r}; has {table.column_names}"
        )
    table = table.filter(pc.is_valid(table.column(key_column)))
    return (table.column(key_column).cast(pa.string()).combine_chunks(),
            table.column("track_id").cast(pa.string()).combine_chunks())  # fmt: skip


def map_to_audio(parsed: Parsed, audio: tuple[pa.Array, pa.Array] | None) -> Parsed:
    """Keep entries and metadata of tracks that have audio, under their audio track id; the
    rest is counted (``no_audio``) and its distinct ids kept in ``unmatched``."""
    if audio is None:
        return parsed
    keys, track_ids = audio
    entries, meta = parsed.entries, parsed.meta
    where = pc.index_in(entries.column("track_id"), value_set=keys)
    drop(parsed.drops, "no_audio", pc.sum(pc.is_null(where)).as_py() or 0)
    parsed.unmatched = pc.unique(entries.column("track_id").filter(pc.is_null(where)))
    entries = entries.filter(pc.is_valid(where))
    parsed.entries = entries.set_column(3, "track_id", track_ids.take(pc.drop_null(where)))
    where = pc.index_in(meta.column("track_id"), value_set=keys)
    meta = meta.filter(pc.is_valid(where))
    parsed.meta = meta.set_column(0, "track_id", track_ids.take(pc.drop_null(where)))
    return parsed


def _runs(column: pa.Array) -> np.ndarray:
    """bool: where a sorted column starts a new value."""
    starts = np.ones(len(column), bool)
    if len(column) > 1:
        starts[1:] = pc.not_equal(column[1:], column[:-1]).to_numpy(zero_copy_only=False)
    return starts


def assemble(entries: pa.Table) -> tuple[pa.Table, Counter]:
    """Entries of whole playlists → playlists table (sorted by id) and what was dropped.

    One id used by several records (origins): the first origin in sort order is kept.
    A track repeated in a playlist counts once (first position); fewer than 2 tracks: dropped.
    """
    drops: Counter = Counter()
    entries = entries.sort_by([("playlist_id", "ascending"), ("origin", "ascending"),
                               ("pos", "ascending"), ("track_id", "ascending")])  # fmt: skip
    pid = entries.column("playlist_id").combine_chunks()
    origin = entries.column("origin").combine_chunks()
    new_pid = _runs(pid)
    new_origin = new_pid | _runs(origin)
    origin_number = np.cumsum(new_origin) - np.repeat(
        np.cumsum(new_origin)[new_pid], np.diff(np.append(np.flatnonzero(new_pid), len(pid)))
    )
    duplicate = origin_number > 0
    drop(drops, "duplicate_playlist_id", int(duplicate.sum()), int((new_origin & duplicate).sum()))
    keep = ~duplicate
    pid, tracks = (
        pid.filter(pa.array(keep)),
        entries.column("track_id").combine_chunks().filter(pa.array(keep)),
    )
    starts = np.flatnonzero(new_pid[keep])
    indptr = np.append(starts, len(pid)).astype(np.int64)
    encoded = pc.dictionary_encode(tracks)
    indptr, indices, repeats = dedupe_rows(
        indptr,
        encoded.indices.to_numpy(zero_copy_only=False).astype(np.int32),
        len(encoded.dictionary),
    )
    drop(drops, "repeated_in_playlist", int(repeats))
    sizes = np.diff(indptr)
    short = sizes < 2
    drop(drops, "under_two_tracks", int(sizes[short].sum()), int(short.sum()))
    rows = np.flatnonzero(~short)
    indptr, indices = take_rows(indptr, indices, rows)
    table = pa.table(
        {"playlist_id": pid.take(pa.array(starts[rows])) if len(rows) else pa.array([], pa.string()),
         "track_ids": pa.ListArray.from_arrays(pa.array(indptr.astype(np.int32)),
                                               encoded.dictionary.take(pa.array(indices))),
         "source": entries.column("source").combine_chunks().filter(pa.array(keep)).take(pa.array(starts[rows]))},
        schema=schemas.PLAYLISTS,
    )  # fmt: skip
    return table, drops


# ---------------------------------------------------------------- inputs and finalize


def input_files(inputs: tuple[str, ...], fmt: str) -> list[str]:
    """Files named by ``inputs`` (files, folders or globs); folders contribute the files of
    ``fmt`` (e.g. every ``*.json`` of an MPD folder, Melon's four files)."""
    import fnmatch

    found: list[str] = []
    for spec in inputs:
        if any(c in spec for c in "*?["):
            matched = storage.glob(spec)
        elif storage.exists(spec) and not storage.list_files(spec):
            matched = [spec]
        else:
            matched = [u for u in storage.list_files(spec)
                       if any(fnmatch.fnmatch(u.rsplit("/", 1)[-1], p) for p in _PATTERNS[fmt])]  # fmt: skip
        if not matched:
            raise FileNotFoundError(f"duet playlists: {spec!r} matches no {fmt} input file")
        found.extend(matched)
    return sorted(dict.fromkeys(found))


def parse_file(uri: str, job: PlaylistsJob) -> Parsed:
    try:
        data = storage.read_bytes(uri)
    except OSError as exc:
        out = Collector(uri, job.format)
        out.fail(None, f"cannot read: {exc}")
        out.drops["unreadable_file/files"] += 1
        return out.result()
    if job.format == "mpd":
        return mpd.parse_mpd(data, uri)
    if job.format == "melon":
        return melon.parse_melon(data, uri, job.melon_genres)
    return plain.parse_table(data, uri)


def merge_meta(meta: pa.Table) -> pa.Table:
    """One row per track: the sorted union of its artists and genres across inputs."""
    rows: dict[str, tuple[set, set]] = {}
    for t, artists, genres in zip(
        *(meta.column(c).to_pylist() for c in ("track_id", "artist_ids", "genres")), strict=True
    ):
        held = rows.setdefault(t, (set(), set()))
        held[0].update(artists or [])
        held[1].update(genres or [])
    ids = sorted(rows)
    return pa.table({"track_id": ids, "artist_ids": [sorted(rows[t][0]) for t in ids],
                     "genres": [sorted(rows[t][1]) for t in ids]}, schema=schemas.TRACK_META)  # fmt: skip


def drops_table(drops: Counter) -> pa.Table:
    reasons = sorted({k.split("/")[0] for k in drops})
    return pa.table({
        "reason": reasons,
        "entries": [drops.get(f"{r}/entries", 0) for r in reasons],
        "tracks": [drops.get(f"{r}/tracks", 0) for r in reasons],
        "playlists": [drops.get(f"{r}/playlists", 0) for r in reasons],
    }, schema=schemas.PLAYLIST_DROPS)  # fmt: skip


def finalize(
    reports: list[dict], parsed: list[dict], job: PlaylistsJob, parts: int, files: list[str]
) -> dict:
    """Write the dropped and failures tables, remove stale parts, publish both tables."""
    out = job.output
    drops: Counter = Counter()
    failures: list[dict] = []
    counts: Counter = Counter()
    for r in parsed:
        drops.update(r["drops"])
        failures.extend(r["failures"])
        counts["entries_read"] += r["entries"]
    for r in reports:
        drops.update(r["drops"])
        counts[r["table"]] += r["rows"]
        if r["table"] == "playlists":
            counts["entries"] += r["entries"]
    failures.sort(key=lambda f: (f["source"], f["record"] or "", f["error"]))
    schemas.write_table(
        drops_table(drops), layout.at(out, layout.PLAYLISTS_DROPPED), schemas.PLAYLIST_DROPS
    )
    schemas.write_table(schemas.from_rows(failures, schemas.SOURCE_FAILURES),
                        layout.at(out, layout.PLAYLISTS_FAILURES), schemas.SOURCE_FAILURES)  # fmt: skip
    written = {(r["table"], r["part"]) for r in reports}
    for tag, (table, schema) in TABLES.items():
        for p in range(parts):
            if (tag, p) not in written:
                schemas.write_table(
                    schema.empty_table(), layout.at(out, layout.part(table, p)), schema
                )
        expected = {layout.at(out, layout.part(table, p)) for p in range(parts)}
        storage.delete([u for u in storage.list_files(layout.at(out, table))
                        if u not in expected and not u.endswith(publish.SUCCESS)])  # fmt: skip
    stamps = [[u, *storage.file_size_and_mtime(u)] for u in files]
    inputs: dict[str, layout.Input] = {"files": {
        "uri": list(job.inputs), "fingerprint": hashlib.sha256(json.dumps(stamps).encode()).hexdigest()}}  # fmt: skip
    if job.tracks:
        inputs["tracks"] = layout.input_of(job.tracks)
    body = layout.summary(
        "playlists",
        format_version=FORMAT_VERSION,
        config={
            "format": job.format,
            "parts": parts,
            "tracks": job.tracks,
            "track_key": job.track_key,
            "melon_genres": job.melon_genres,
        },  # fmt: skip
        inputs=inputs,
        counts={
            "files": len(files),
            "playlists": counts["playlists"],
            "entries": counts["entries"],
            "entries_read": counts["entries_read"],
            "tracks_with_meta": counts["track_meta"],
            "failures": len(failures),
        },
        dropped={k: int(v) for k, v in sorted(drops.items())},
    )
    for table, _ in TABLES.values():
        publish.write_success(layout.at(out, table), body)
    return body


# ---------------------------------------------------------------- Beam plumbing


def _part_of(ids: pa.Array, parts: int) -> np.ndarray:
    return (string_keys(ids) % np.uint64(parts)).astype(np.int64)


def _by_part(table: pa.Table, column: str, parts: int, tag: str):
    if not table.num_rows:
        return
    part = _part_of(table.column(column).combine_chunks(), parts)
    for p in np.unique(part):
        yield int(p), (tag, table.filter(pa.array(part == p)))


class Parse(beam.DoFn):
    """One input file → entries and metadata keyed by part, plus a small report."""

    def __init__(self, job: PlaylistsJob, parts: int):
        self.job, self.parts = job, parts

    def process(self, uri: str, audio):
        parsed = map_to_audio(parse_file(uri, self.job), audio)
        yield beam.pvalue.TaggedOutput("report", {
            "drops": dict(parsed.drops), "failures": parsed.failures, "entries": parsed.entries.num_rows})  # fmt: skip
        for item in _by_part(parsed.entries, "playlist_id", self.parts, "entries"):
            yield beam.pvalue.TaggedOutput("entries", item)
        yield from _by_part(parsed.meta, "track_id", self.parts, "meta")
        if parsed.unmatched is not None and len(parsed.unmatched):
            yield from _by_part(
                pa.table({"track_id": parsed.unmatched}), "track_id", self.parts, "unmatched"
            )


def write_playlists(element, job: PlaylistsJob) -> dict:
    part, tagged = element
    tables = [t for _, t in tagged]
    entries = pa.concat_tables(tables) if tables else ENTRIES.empty_table()
    table, drops = assemble(entries)
    schemas.write_table(
        table, layout.at(job.output, layout.part(layout.PLAYLISTS, part)), schemas.PLAYLISTS
    )
    entries_kept = int(pc.sum(pc.list_value_length(table.column("track_ids"))).as_py() or 0)
    return {
        "table": "playlists",
        "part": part,
        "rows": table.num_rows,
        "entries": entries_kept,
        "drops": dict(drops),
    }


def write_meta(element, job: PlaylistsJob) -> dict:
    part, tagged = element
    meta = [t for tag, t in tagged if tag == "meta"]
    unmatched = [t.column("track_id") for tag, t in tagged if tag == "unmatched"]
    table = merge_meta(pa.concat_tables(meta)) if meta else schemas.TRACK_META.empty_table()
    schemas.write_table(
        table, layout.at(job.output, layout.part(layout.TRACK_META, part)), schemas.TRACK_META
    )
    drops = {}
    if unmatched:
        drops["no_audio/tracks"] = len(pc.unique(pa.chunked_array(unmatched).combine_chunks()))
    return {"table": "track_meta", "part": part, "rows": table.num_rows, "drops": drops}


def default_parts(files: list[str]) -> int:
    """About one part per 256 MB of input."""
    size = sum(storage.file_size_and_mtime(u)[0] for u in files)
    return max(1, math.ceil(size / (256 << 20)))


def build(pipeline: beam.Pipeline, job: PlaylistsJob) -> beam.PCollection:
    """Add the playlists job to ``pipeline``; returns a PCollection of the ``_SUCCESS`` body."""
    files = input_files(job.inputs, job.format)
    parts = job.parts or default_parts(files)
    audio = audio_ids(job.tracks, job.track_key) if job.tracks else None
    parsed = (
        pipeline
        | "Files" >> beam.Create(files)
        | "Spread" >> beam.Reshuffle()
        | "Parse"
        >> beam.ParDo(Parse(job, parts), audio).with_outputs("entries", "report", main="meta")
    )
    playlists = (
        parsed.entries
        | "ByPlaylist" >> beam.GroupByKey()
        | "WritePlaylists" >> beam.Map(write_playlists, job)
    )
    meta = parsed.meta | "ByTrack" >> beam.GroupByKey() | "WriteMeta" >> beam.Map(write_meta, job)
    reports = (
        (playlists, meta) | "Reports" >> beam.Flatten() | "AllReports" >> beam.combiners.ToList()
    )
    parse_reports = parsed.report | "AllParsed" >> beam.combiners.ToList()
    return reports | "Finalize" >> beam.Map(
        lambda r, p: finalize(r, p, job, parts, files), beam.pvalue.AsSingleton(parse_reports)
    )
