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

import gzip
import hashlib
import json
import math
from collections import Counter
from dataclasses import dataclass, field

import apache_beam as beam
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.json as pajson
from duet.pipelines.cooc_kernels import dedupe_rows, string_keys, take_rows
from duet.pipelines.manifest import track_id_problem

from duet import __version__, publish, schemas, storage

FORMAT_VERSION = 1
FORMATS = ("mpd", "melon", "table")
MELON_GENRES = ("detailed", "major", "both")
MELON_PLAYLIST_FILES = ("train.json", "val.json", "test.json")
MELON_SONG_META = "song_meta.json"
MAX_EXAMPLES = 20  # failure rows listed per file and reason; all are counted
ENTRIES = pa.schema(
    [
        pa.field("playlist_id", pa.string(), nullable=False),
        pa.field("origin", pa.string(), nullable=False),
        pa.field("pos", pa.int64(), nullable=False),
        pa.field("track_id", pa.string(), nullable=False),
        pa.field("source", pa.string(), nullable=False),
    ]
)
"""Shuffled between the parse and write steps: one row per playlist entry; ``origin`` names
the record, so one id used by two records is told apart from rows of one playlist."""


@dataclass(frozen=True)
class PlaylistsJob:
    inputs: tuple[str, ...]
    format: str
    output: str
    tracks: str | None = None
    track_key: str = "track_id"
    melon_genres: str = "detailed"
    parts: int | None = None


@dataclass
class Parsed:
    """What one input file yields."""

    entries: pa.Table
    meta: pa.Table
    failures: list[dict] = field(default_factory=list)
    drops: Counter = field(default_factory=Counter)  # "reason/entries|playlists|files" → n
    unmatched: pa.Array | None = None  # distinct ids without audio (when mapping)


def _drop(drops: Counter, reason: str, entries: int = 0, playlists: int = 0) -> None:
    if entries:
        drops[f"{reason}/entries"] += entries
    if playlists:
        drops[f"{reason}/playlists"] += playlists


class _Collector:
    """Accumulates one file's entries and metadata as columns, with the bad-input bookkeeping."""

    def __init__(self, source: str, label: str):
        self.source = source
        self.label = label
        self.cols: dict[str, list] = {"playlist_id": [], "origin": [], "pos": [], "track_id": [],
                                      "source": []}  # fmt: skip
        self.meta: dict[str, tuple[list, list]] = {}
        self.failures: list[dict] = []
        self.drops: Counter = Counter()
        self._examples: Counter = Counter()

    def fail(self, record: str | None, error: str, reason: str | None = None) -> None:
        key = reason or error
        self._examples[key] += 1
        if self._examples[key] <= MAX_EXAMPLES:
            self.failures.append({"source": self.source, "record": record, "error": error})

    def playlist(self, playlist_id: object, origin: str, tracks: list) -> None:
        """``tracks``: (pos, track_id, artist_ids, genres) tuples, in playlist order."""
        if not isinstance(playlist_id, (str, int)) or isinstance(playlist_id, bool):
            self.fail(origin, f"playlist id must be a string or integer, got {type(playlist_id).__name__}",
                      "invalid_playlist_id")  # fmt: skip
            _drop(self.drops, "invalid_playlist_id", len(tracks), 1)
            return
        pid = str(playlist_id)
        if not tracks:
            _drop(self.drops, "empty_playlist", 0, 1)
            return
        for pos, track, artists, genres in tracks:
            problem = track_id_problem(track)
            if problem:
                self.fail(f"{origin} pos {pos}", problem, "invalid_track_id")
                _drop(self.drops, "invalid_track_id", 1)
                continue
            self.cols["playlist_id"].append(pid)
            self.cols["origin"].append(origin)
            self.cols["pos"].append(pos)
            self.cols["track_id"].append(track)
            self.cols["source"].append(self.label)
            if track not in self.meta or (artists and not self.meta[track][0]):
                self.meta[track] = (artists, genres)

    def song(self, track: str, artists: list, genres: list) -> None:
        self.meta[track] = (artists, genres)

    def result(self) -> Parsed:
        entries = pa.table(self.cols, schema=ENTRIES)
        ids = list(self.meta)
        meta = pa.table({"track_id": ids, "artist_ids": [self.meta[t][0] for t in ids],
                         "genres": [self.meta[t][1] for t in ids]}, schema=schemas.TRACK_META)  # fmt: skip
        return Parsed(entries, meta, self.failures, self.drops)


def _strings(values: object) -> list[str]:
    if not isinstance(values, list):
        return []
    return [
        str(v) for v in values if isinstance(v, (str, int)) and not isinstance(v, bool) and str(v)
    ]


def _load_json(data: bytes, source: str):
    if source.endswith(".gz") or data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    return json.loads(data)


def parse_mpd(data: bytes, source: str) -> Parsed:
    """One ``mpd.slice.*.json`` (optionally gzipped): track ids are ``track_uri``s, artists
    ``artist_uri``s (``artist_name`` when a slice has no uri); ``pos`` falls back to order."""
    out = _Collector(source, "mpd")
    try:
        doc = _load_json(data, source)
        playlists = doc["playlists"]
        if not isinstance(playlists, list):
            raise ValueError("'playlists' is not a list")
    except (ValueError, KeyError, TypeError, OSError, EOFError) as exc:
        out.fail(None, f"unreadable MPD slice: {type(exc).__name__}: {str(exc)[:300]}")
        out.drops["unreadable_file/files"] += 1
        return out.result()
    for number, item in enumerate(playlists):
        origin = f"{source}#{number}"
        if (
            not isinstance(item, dict)
            or "pid" not in item
            or not isinstance(item.get("tracks", []), list)
        ):
            out.fail(
                origin, "playlist record without 'pid' or with non-list 'tracks'", "invalid_record"
            )
            _drop(out.drops, "invalid_record", 0, 1)
            continue
        tracks = []
        for order, entry in enumerate(item.get("tracks") or []):
            entry = entry if isinstance(entry, dict) else {}
            pos = entry.get("pos")
            pos = pos if isinstance(pos, int) and not isinstance(pos, bool) else order
            artist = entry.get("artist_uri") or entry.get("artist_name")
            tracks.append((pos, entry.get("track_uri"), _strings([artist]), []))
        out.playlist(item["pid"], origin, tracks)
    return out.result()


def melon_genres(song: dict, which: str) -> list[str]:
    major = _strings(song.get("song_gn_gnr_basket"))
    detailed = _strings(song.get("song_gn_dtl_gnr_basket"))
    chosen = {"major": major, "detailed": detailed, "both": major + detailed}[which]
    return list(dict.fromkeys(chosen))


def parse_melon(data: bytes, source: str, genres: str = "detailed") -> Parsed:
    """Melon ``train/val/test.json`` (id, songs) or ``song_meta.json`` (id, artist_id_basket,
    song_gn_gnr_basket, song_gn_dtl_gnr_basket); song and playlist ids become strings."""
    name = source.rsplit("/", 1)[-1]
    out = _Collector(source, "melon:" + name.split(".")[0])
    try:
        doc = _load_json(data, source)
        if not isinstance(doc, list):
            raise ValueError("expected a JSON list of records")
    except (ValueError, TypeError, OSError, EOFError) as exc:
        out.fail(None, f"unreadable Melon file: {type(exc).__name__}: {str(exc)[:300]}")
        out.drops["unreadable_file/files"] += 1
        return out.result()
    is_meta = name.startswith("song_meta")
    for number, item in enumerate(doc):
        origin = f"{source}#{number}"
        if not isinstance(item, dict) or "id" not in item:
            out.fail(origin, "record without 'id'", "invalid_record")
            _drop(out.drops, "invalid_record", 0, 0 if is_meta else 1)
            continue
        if is_meta:
            out.song(
                str(item["id"]), _strings(item.get("artist_id_basket")), melon_genres(item, genres)
            )
            continue
        songs = item.get("songs")
        songs = songs if isinstance(songs, list) else []
        tracks = [(pos, str(s) if isinstance(s, int) and not isinstance(s, bool) else s, [], [])
                  for pos, s in enumerate(songs)]  # fmt: skip
        out.playlist(item["id"], origin, tracks)
    return out.result()


def parse_table(data: bytes, source: str) -> Parsed:
    """Parquet/CSV/JSONL rows ``playlist_id, track_id[, pos]`` (rows of one playlist may span
    files; without ``pos`` the row order is the playlist order)."""
    out = _Collector(source, "table")
    try:
        table = schemas.table_from_bytes(data, source, strings=("playlist_id", "track_id"))
        missing = {"playlist_id", "track_id"} - set(table.column_names)
        if missing:
            raise ValueError(f"no column(s) {sorted(missing)}; found {table.column_names}")
    except (pa.ArrowException, ValueError, OSError) as exc:
        out.fail(None, f"unreadable table: {type(exc).__name__}: {str(exc)[:300]}")
        out.drops["unreadable_file/files"] += 1
        return out.result()
    pids = table.column("playlist_id").to_pylist()
    tracks = table.column("track_id").to_pylist()
    pos = table.column("pos").to_pylist() if "pos" in table.column_names else list(range(len(pids)))
    rows: dict[object, list] = {}
    for i, (p, t) in enumerate(zip(pids, tracks, strict=True)):
        if p is None:
            out.fail(f"{source} row {i}", "playlist_id is null", "invalid_playlist_id")
            _drop(out.drops, "invalid_playlist_id", 1)
            continue
        rows.setdefault(p, []).append((pos[i] if isinstance(pos[i], int) else i, t, [], []))
    for p, entries in rows.items():
        out.playlist(p, "", entries)  # one origin: rows with the same id form one playlist
    return out.result()


def audio_ids(spec: str, key_column: str = "track_id") -> tuple[pa.Array, pa.Array]:
    """(playlist-side key, track_id) of every track with audio: from a published dataset root
    (its audio index) or from a track manifest whose ``key_column`` holds the playlist ids."""
    from duet import index as audio_index

    if storage.exists(publish.marker_uri(spec)):
        ids = pa.array(audio_index.AudioIndex.open(spec).track_ids, pa.string())
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
    _drop(parsed.drops, "no_audio", pc.sum(pc.is_null(where)).as_py() or 0)
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
    _drop(drops, "duplicate_playlist_id", int(duplicate.sum()), int((new_origin & duplicate).sum()))
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
    _drop(drops, "repeated_in_playlist", int(repeats))
    sizes = np.diff(indptr)
    short = sizes < 2
    _drop(drops, "under_two_tracks", int(sizes[short].sum()), int(short.sum()))
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

_PATTERNS = {
    "mpd": ("*.json", "*.json.gz"),
    "melon": tuple(
        f"{n}{gz}" for n in (*MELON_PLAYLIST_FILES, MELON_SONG_META) for gz in ("", ".gz")
    ),
    "table": ("*.parquet", "*.csv", "*.csv.gz", "*.jsonl", "*.jsonl.gz", "*.ndjson"),
}


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
        out = _Collector(uri, job.format)
        out.fail(None, f"cannot read: {exc}")
        out.drops["unreadable_file/files"] += 1
        return out.result()
    if job.format == "mpd":
        return parse_mpd(data, uri)
    if job.format == "melon":
        return parse_melon(data, uri, job.melon_genres)
    return parse_table(data, uri)


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


def part_name(table: str, part: int) -> str:
    return f"{table}/part-{part:05d}.parquet"


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
        drops_table(drops), storage.join(out, "playlists_dropped.parquet"), schemas.PLAYLIST_DROPS
    )
    schemas.write_table(schemas.from_rows(failures, schemas.SOURCE_FAILURES),
                        storage.join(out, "playlists_failures.parquet"), schemas.SOURCE_FAILURES)  # fmt: skip
    written = {(r["table"], r["part"]) for r in reports}
    for table, schema in (("playlists", schemas.PLAYLISTS), ("track_meta", schemas.TRACK_META)):
        for p in range(parts):
            if (table, p) not in written:
                schemas.write_table(
                    schema.empty_table(),
                    storage.join(out, part_name(f"{table}.parquet", p)),
                    schema,
                )
    for table in ("playlists.parquet", "track_meta.parquet"):
        folder = storage.join(out, table)
        expected = {storage.join(out, part_name(table, p)) for p in range(parts)}
        storage.delete([u for u in storage.list_files(folder)
                        if u not in expected and not u.endswith(publish.SUCCESS)])  # fmt: skip
    stamps = [[u, *storage.file_size_and_mtime(u)] for u in files]
    body = {
        "job": "playlists",
        "code_version": __version__,
        "format_version": FORMAT_VERSION,
        "config": {
            "format": job.format,
            "parts": parts,
            "tracks": job.tracks,
            "track_key": job.track_key,
            "melon_genres": job.melon_genres,
        },  # fmt: skip
        "inputs": {
            "files": len(files),
            "fingerprint": hashlib.sha256(json.dumps(stamps).encode()).hexdigest(),
        },
        "counts": {
            "playlists": counts["playlists"],
            "entries": counts["entries"],
            "entries_read": counts["entries_read"],
            "tracks_with_meta": counts["track_meta"],
            "failures": len(failures),
        },  # fmt: skip
        "dropped": {k: int(v) for k, v in sorted(drops.items())},
    }
    for table in ("playlists.parquet", "track_meta.parquet"):
        publish.write_success(storage.join(out, table), body)
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
        table, storage.join(job.output, part_name("playlists.parquet", part)), schemas.PLAYLISTS
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
        table, storage.join(job.output, part_name("track_meta.parquet", part)), schemas.TRACK_META
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
