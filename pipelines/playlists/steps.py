"""The steps of ``duet playlists`` as plain functions, shared by the Beam graph (``job``) and
the local runner (``local``), so both write the same bytes:

    plan: input files → units (a file, or a run of a Parquet file's row groups) and P parts
    parse_unit: one unit → records, track metadata, failures, drop counts (mapped to audio)
    partition: records by hash(playlist_id) mod P, metadata by hash(track_id) mod P
    write_part: everything of part p → playlists part p and track_meta part p (tagged names)
    finalize: both tables' new generations published together (duet.publish: each
              ``_SUCCESS`` lists its parts, the replaced parts are removed), then the dropped
              and failures tables
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import math
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TypedDict

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from duet import layout, publish, schemas, storage
from duet.errors import NothingProduced
from duet.pipelines.csr import string_keys
from duet.pipelines.playlists import melon, mpd
from duet.pipelines.playlists import table as plain
from duet.pipelines.playlists.assemble import assemble, merge_meta
from duet.pipelines.playlists.common import (
    RECORDS,
    Collector,
    Parsed,
    cap_examples,
    drop,
    unit_order,
)

FORMAT_VERSION = 2
"""2: parts stored under tagged names listed in each table's ``_SUCCESS`` (duet.publish)."""
SAMPLE = 3
"""Ids shown from each side when the playlists' ids match no audio."""
FORMATS = ("mpd", "melon", "table")
"""The input formats, one module each (its ``PATTERNS`` pick the files of a folder)."""
_PATTERNS = {"mpd": mpd.PATTERNS, "melon": melon.PATTERNS, "table": plain.PATTERNS}
BYTES_PER_PART = 256 << 20
ROWS_PER_PART = 2_000_000
"""Default parts: one per 256 MB of input, or per 2 M Parquet rows when that gives more, so a
part (what one worker assembles at a time) stays near 2 M entries whatever the input size."""
UNMATCHED = pa.schema([pa.field("track_id", pa.string(), nullable=False)])
TAGS = {"records": ("playlist_id", RECORDS), "meta": ("track_id", schemas.TRACK_META),
        "unmatched": ("track_id", UNMATCHED)}  # fmt: skip
"""What is partitioned: tag → (key column, schema)."""
TABLES = {"playlists": (layout.PLAYLISTS, schemas.PLAYLISTS),
          "track_meta": (layout.TRACK_META, schemas.TRACK_META)}  # fmt: skip
"""The two published tables, by the tag of the reports that write their parts."""


class PlaylistsCounts(TypedDict):
    files: int
    playlists: int
    entries: int  # kept in playlists
    entries_read: int
    entries_without_pos: int  # read without a position: placed after the positioned ones
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
    commit: publish.Commit = publish.Commit()

    def folder(self, table: str) -> str:
        return layout.at(self.output, table)


@dataclass(frozen=True)
class Unit:
    """One element of work: a file, or the row groups ``groups`` of a Parquet file; ``file`` is
    the file's number in path order (with ``first_row``, the input order of its records)."""

    uri: str
    first_row: int = 0
    groups: tuple[int, ...] = ()
    file: int = 0


@dataclass(frozen=True)
class Plan:
    files: list[str]
    units: list[Unit]
    parts: int


def input_files(inputs: tuple[str, ...], fmt: str) -> list[str]:
    """Files named by ``inputs`` (files, folders or globs); folders contribute the files of
    ``fmt`` (e.g. every ``*.json`` of an MPD folder, Melon's four files)."""
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
            raise FileNotFoundError(
                f"{spec!r} matches no {fmt} input file (expected "
                f"{' or '.join(_PATTERNS[fmt])}; check --format)"
            )
        found.extend(matched)
    return sorted(dict.fromkeys(found))


def plan(job: PlaylistsJob) -> Plan:
    """The job's files, units and parts (``job.parts`` or the default, see ROWS_PER_PART)."""
    files = input_files(job.inputs, job.format)
    units, rows = [], 0
    for number, uri in enumerate(files):
        if job.format == "table" and uri.lower().endswith(".parquet"):
            runs, file_rows = plain.row_group_runs(uri)
            units += [Unit(uri, first, groups, number) for first, groups in runs]
            rows += file_rows
        else:
            units.append(Unit(uri, file=number))
    size = sum(storage.file_size_and_mtime(u)[0] for u in files)
    parts = job.parts or max(1, math.ceil(size / BYTES_PER_PART), math.ceil(rows / ROWS_PER_PART))
    return Plan(files, units, parts)


def audio_ids(spec: str, key_column: str = "track_id") -> tuple[pa.Array, pa.Array]:
    """(playlist-side key, track_id) of every track with audio: from a published dataset root
    (its audio index), a folder of feature arrays (ids from the ``.npy`` file names, e.g.
    Melon's ``arena_mel``) or a track manifest whose ``key_column`` holds the playlist ids."""
    from duet import index as audio_index
    from duet.pipelines.features.sources import array_ids

    if publish.read_success(spec) is not None:
        ids = pa.array(audio_index.AudioIndex.open(spec).track_ids, pa.string())
        return ids, ids
    if storage.list_files(spec):
        ids = pa.array(array_ids(spec), pa.string())
        return ids, ids
    # CSV text as written ("0007" stays "0007"), integer ids of Parquet and JSONL as the CSV
    # reader's strings: the one id rule of every table reader
    table = schemas.table_from_bytes(storage.read_bytes(spec), spec,
                                     strings=(key_column, "track_id"))  # fmt: skip
    if key_column not in table.column_names or "track_id" not in table.column_names:
        raise ValueError(
            f"{spec}: needs columns 'track_id' and {key_column!r}; has {table.column_names}"
        )
    table = table.filter(pc.is_valid(table.column(key_column)))
    return (schemas.id_strings(table.column(key_column)).combine_chunks(),
            schemas.id_strings(table.column("track_id")).combine_chunks())  # fmt: skip


def map_to_audio(parsed: Parsed, audio: tuple[pa.Array, pa.Array] | None) -> Parsed:
    """Keep entries and metadata of tracks that have audio, under their audio track id; the
    rest is counted (``no_audio``) and its distinct ids kept in ``unmatched``; records left
    without entries disappear."""
    if audio is None:
        return parsed
    keys, track_ids = audio
    records, meta = parsed.records, parsed.meta
    lists = records.column("track_ids").combine_chunks()
    flat = pc.list_flatten(lists)
    where = pc.index_in(flat, value_set=keys)
    found = where.is_valid().to_numpy(zero_copy_only=False)
    drop(parsed.drops, "no_audio", int((~found).sum()))
    parsed.unmatched = pc.unique(flat.filter(pc.invert(where.is_valid())))
    parents = pc.list_parent_indices(lists).to_numpy(zero_copy_only=False)
    sizes = np.bincount(parents[found], minlength=records.num_rows)
    offsets = pa.array(np.concatenate([[0], np.cumsum(sizes)]).astype(np.int32))
    positions = pc.list_flatten(records.column("pos").combine_chunks()).filter(pa.array(found))
    records = records.set_column(3, "pos", pa.ListArray.from_arrays(offsets, positions))
    records = records.set_column(
        4, "track_ids", pa.ListArray.from_arrays(offsets, track_ids.take(pc.drop_null(where)))
    )
    parsed.records = records.filter(pa.array(sizes > 0))
    where = pc.index_in(meta.column("track_id"), value_set=keys)
    meta = meta.filter(pc.is_valid(where))
    parsed.meta = meta.set_column(0, "track_id", track_ids.take(pc.drop_null(where)))
    return parsed


def parse_unit(unit: Unit, job: PlaylistsJob, audio=None) -> Parsed:
    """One unit → its records (in the unit's input order, see ``common.RECORDS``), metadata,
    failures and drops, mapped onto ``audio``."""
    parsed = _parse(unit, job)
    order = pa.array(np.full(parsed.records.num_rows, unit_order(unit.file, unit.first_row)))
    parsed.records = parsed.records.set_column(5, "order", order)
    return map_to_audio(parsed, audio)


def _parse(unit: Unit, job: PlaylistsJob) -> Parsed:
    if job.format == "table":
        return plain.read_unit(unit.uri, unit.groups, unit.first_row)
    try:
        data = storage.read_bytes(unit.uri)
    except OSError as exc:
        out = Collector(unit.uri, job.format)
        out.fail(None, f"cannot read: {exc}")
        out.drops["unreadable_file/files"] += 1
        return out.result()
    if job.format == "mpd":
        return mpd.parse_mpd(data, unit.uri)
    return melon.parse_melon(data, unit.uri, job.melon_genres)


def parse_report(unit: Unit, parsed: Parsed) -> dict:
    """The small summary of one unit that finalize needs (and the progress display shows)."""
    unmatched = [] if parsed.unmatched is None else parsed.unmatched[:1000].to_pylist()
    return {"source": unit.uri, "first_row": unit.first_row, "drops": dict(parsed.drops),
            "failures": parsed.failures, "entries": parsed.entries,
            "unpositioned": parsed.unpositioned,
            "playlists": parsed.records.num_rows, "unmatched": sorted(unmatched)[:SAMPLE]}  # fmt: skip


def tagged_tables(parsed: Parsed) -> Iterator[tuple[str, pa.Table]]:
    """The unit's tables that are partitioned, by tag (see TAGS); empty ones left out."""
    unmatched = parsed.unmatched if parsed.unmatched is not None else pa.array([], pa.string())
    tables = {"records": parsed.records, "meta": parsed.meta,
              "unmatched": pa.table({"track_id": unmatched}, schema=UNMATCHED)}  # fmt: skip
    for tag, table in tables.items():
        if table.num_rows:
            yield tag, table


def part_of(table: pa.Table, tag: str, parts: int) -> np.ndarray:
    """int64 part of every row: a stable 64-bit hash of its key column, mod ``parts``."""
    ids = table.column(TAGS[tag][0]).combine_chunks()
    return (string_keys(ids) % np.uint64(parts)).astype(np.int64)


def write_part(part: int, tagged: Iterable[tuple[str, pa.Table]], job: PlaylistsJob) -> list[dict]:
    """Write playlists part ``part`` and track_meta part ``part`` from every table of the part
    (in any order: the result is sorted); returns their reports."""
    tables: dict[str, list[pa.Table]] = {tag: [] for tag in TAGS}
    for tag, table in tagged:
        tables[tag].append(table)
    records = pa.concat_tables(tables["records"]) if tables["records"] else RECORDS.empty_table()
    playlists, drops = assemble(records)
    del records, tables["records"]
    playlist_files = publish.write(job.folder(layout.PLAYLISTS), layout.part_name(part),
                                   schemas.to_parquet_bytes(playlists, schemas.PLAYLISTS))  # fmt: skip
    entries = int(pc.sum(pc.list_value_length(playlists.column("track_ids"))).as_py() or 0)
    meta = tables["meta"]
    meta = merge_meta(pa.concat_tables(meta)) if meta else schemas.TRACK_META.empty_table()
    meta_files = publish.write(job.folder(layout.TRACK_META), layout.part_name(part),
                               schemas.to_parquet_bytes(meta, schemas.TRACK_META))  # fmt: skip
    meta_drops = {}
    if tables["unmatched"]:
        ids = pa.concat_tables(tables["unmatched"]).column("track_id").combine_chunks()
        meta_drops["no_audio/tracks"] = len(pc.unique(ids))
    return [{"table": "playlists", "part": part, "rows": playlists.num_rows, "entries": entries,
             "drops": dict(drops), "files": playlist_files},
            {"table": "track_meta", "part": part, "rows": meta.num_rows, "drops": meta_drops,
             "files": meta_files}]  # fmt: skip


def drops_table(drops: Counter) -> pa.Table:
    reasons = sorted({k.split("/")[0] for k in drops})
    return pa.table({
        "reason": reasons,
        "entries": [drops.get(f"{r}/entries", 0) for r in reasons],
        "tracks": [drops.get(f"{r}/tracks", 0) for r in reasons],
        "playlists": [drops.get(f"{r}/playlists", 0) for r in reasons],
    }, schema=schemas.PLAYLIST_DROPS)  # fmt: skip


def why_empty(
    job: PlaylistsJob,
    files: list[str],
    entries_read: int,
    failures: list[dict],
    drops: Counter,
    parsed: list[dict],
) -> str:
    """Why no playlist came out, with examples: the ids on each side when the playlists' ids
    match no track with audio, else the parser's reason."""
    if drops.get("no_audio/entries") and job.tracks:
        theirs = sorted({i for r in parsed for i in r.get("unmatched", [])})[:SAMPLE]
        ours = sorted(audio_ids(job.tracks, job.track_key)[0][:1000].to_pylist())[:SAMPLE]
        return (f"none of the playlists' track ids matches a track under --tracks {job.tracks}: "
                f"playlists have {', '.join(map(repr, theirs))}, the audio has "
                f"{', '.join(map(repr, ours))} (ids must be equal: name the audio's ids with "
                "duet shards --id-from stem|path or --id-column, or give --tracks a manifest "
                "with a column of the playlists' ids and name it with --track-key)")  # fmt: skip
    if not entries_read:
        reason = (f"{failures[0]['error']} ({failures[0]['source']})" if failures
                  else "the files hold no playlist entries")  # fmt: skip
        return (f"no playlist read from {len(files)} file(s) as --format {job.format}: {reason} "
                "(check --format: mpd, melon or table)")  # fmt: skip
    reasons = ", ".join(f"{k.split('/')[0]} {v:,}" for k, v in sorted(drops.items())
                        if k.endswith("/entries"))  # fmt: skip
    return f"every playlist was dropped ({reasons or 'no entries kept'})"


def finalize(
    reports: list[dict], parsed: list[dict], job: PlaylistsJob, parts: int, files: list[str]
) -> dict:
    """Publish both tables' new generations together (refused, changing nothing, when either
    would shrink by more than half or the folders' locks name another writer), then write the
    dropped and failures tables; no playlist at all publishes nothing (NothingProduced, with
    the reason)."""
    out = job.output
    drops: Counter = Counter()
    failures: list[dict] = []
    counts: Counter = Counter()
    for r in sorted(parsed, key=lambda r: (r["source"], r["first_row"])):
        drops.update(r["drops"])
        failures.extend(r["failures"])
        counts["entries_read"] += r["entries"]
        counts["entries_without_pos"] += r["unpositioned"]
    written: dict[str, dict[str, dict]] = {tag: {} for tag in TABLES}
    for r in reports:
        drops.update(r["drops"])
        counts[r["table"]] += r["rows"]
        written[r["table"]] |= r["files"]
        if r["table"] == "playlists":
            counts["entries"] += r["entries"]
    failures = sorted(
        cap_examples(failures), key=lambda f: (f["source"], f["record"] or "", f["error"])
    )
    if not counts["playlists"]:
        raise NothingProduced(
            why_empty(job, files, counts["entries_read"], failures, drops, parsed)
        )
    for tag, (table, schema) in TABLES.items():
        for p in range(parts):
            if layout.part_name(p) not in written[tag]:
                written[tag] |= publish.write(job.folder(table), layout.part_name(p),
                                              schemas.to_parquet_bytes(schema.empty_table(), schema))  # fmt: skip
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
            "entries_without_pos": counts["entries_without_pos"],
            "tracks_with_meta": counts["track_meta"],
            "failures": len(failures),
        },
        dropped={k: int(v) for k, v in sorted(drops.items())},
    )
    measures = {"playlists": {"playlists": "counts.playlists"},
                "track_meta": {"tracks": "counts.tracks_with_meta"}}  # fmt: skip
    publish.commit_all([
        (job.folder(table), body, written[tag],
         {"measures": measures[tag], "how": job.commit, "what": job.folder(table)})
        for tag, (table, _) in TABLES.items()
    ])  # fmt: skip
    schemas.write_table(
        drops_table(drops), layout.at(out, layout.PLAYLISTS_DROPPED), schemas.PLAYLIST_DROPS
    )
    schemas.write_table(schemas.from_rows(failures, schemas.SOURCE_FAILURES),
                        layout.at(out, layout.PLAYLISTS_FAILURES), schemas.SOURCE_FAILURES)  # fmt: skip
    return body
