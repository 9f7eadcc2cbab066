"""Plain tables of playlist entries: Parquet, CSV or JSONL rows ``playlist_id, track_id[, pos]``.

Rows of one playlist may span files (and row groups); without ``pos`` the row order in its
file is the playlist order. A Parquet file is read in runs of row groups of about
ROWS_PER_UNIT rows, so a 66 M-row table never sits in one worker; CSV and JSONL files are
read whole (convert very large ones to Parquet). Rows are grouped by id in compiled code
in compiled code; playlist ids of a type other than string or integer go through the
collector, which names every bad playlist.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from duet import schemas, storage
from duet.pipelines.playlists.common import (
    MAX_EXAMPLES,
    POSITIONS,
    RECORDS,
    Collector,
    Entry,
    Parsed,
    clean_ids,
    drop,
    empty_lists,
    positions,
)
from duet.schemas import track_id_problem

PATTERNS = ("*.parquet", "*.csv", "*.csv.gz", "*.jsonl", "*.jsonl.gz", "*.ndjson")
"""Files of a folder given as input."""
COLUMNS = ("playlist_id", "track_id", "pos")
ROWS_PER_UNIT = 1_000_000
"""Rows of a Parquet file read as one unit of work (whole row groups)."""


@contextmanager
def _parquet(uri: str) -> Iterator[pq.ParquetFile]:
    """A Parquet file that reads only what is asked for: natively when local; through ranged
    reads of Beam's filesystem stream on object stores (in this thread, no pre-buffering)."""
    if not storage.is_remote(uri):
        with pq.ParquetFile(storage.local_path(uri)) as f:
            yield f
        return
    with storage.open_read(uri) as stream, pq.ParquetFile(stream, pre_buffer=False) as f:
        yield f


def row_group_runs(
    uri: str, rows_per_unit: int | None = None
) -> tuple[list[tuple[int, tuple]], int]:
    """(first row, row groups) runs of about ``rows_per_unit`` (default ROWS_PER_UNIT) rows of
    a Parquet file, and its rows, from its footer; ([(0, ())], 0) when the footer cannot be
    read (the parse then reports the file)."""
    rows_per_unit = rows_per_unit or ROWS_PER_UNIT
    try:
        with _parquet(uri) as f:
            meta = f.metadata
    except (pa.ArrowException, OSError):
        return [(0, ())], 0
    runs, groups, first, rows = [], [], 0, 0
    for g in range(meta.num_row_groups):
        groups.append(g)
        rows += meta.row_group(g).num_rows
        if rows >= rows_per_unit:
            runs.append((first, tuple(groups)))
            first, groups, rows = first + rows, [], 0
    if groups or not runs:
        runs.append((first, tuple(groups)))
    return runs, meta.num_rows


def _unreadable(source: str, exc: Exception) -> Parsed:
    out = Collector(source, "table")
    out.fail(None, f"unreadable table: {type(exc).__name__}: {str(exc)[:300]}")
    out.drops["unreadable_file/files"] += 1
    return out.result()


def _check_columns(names: list[str]) -> None:
    missing = {"playlist_id", "track_id"} - set(names)
    if missing:
        raise ValueError(f"no column(s) {sorted(missing)}; found {names}")


def read_unit(uri: str, groups: tuple[int, ...], first_row: int) -> Parsed:
    """One unit of a table file: the row groups ``groups`` of a Parquet file (starting at row
    ``first_row``), or a whole CSV/JSONL file (``groups`` empty)."""
    try:
        if uri.lower().endswith(".parquet"):
            with _parquet(uri) as f:
                names = f.schema_arrow.names
                _check_columns(names)
                table = f.read_row_groups(list(groups) if groups else range(f.num_row_groups),
                                          columns=[c for c in COLUMNS if c in names], use_threads=False)  # fmt: skip
        else:
            table = schemas.table_from_bytes(storage.read_bytes(uri), uri, strings=COLUMNS[:2])
            _check_columns(table.column_names)
    except (pa.ArrowException, ValueError, OSError) as exc:
        return _unreadable(uri, exc)
    return parse_rows(table, uri, first_row)


def parse_table(data: bytes, source: str) -> Parsed:
    """A whole Parquet/CSV/JSONL file given as bytes."""
    try:
        table = schemas.table_from_bytes(data, source, strings=COLUMNS[:2])
        _check_columns(table.column_names)
    except (pa.ArrowException, ValueError, OSError) as exc:
        return _unreadable(source, exc)
    return parse_rows(table, source)


def parse_rows(table: pa.Table, source: str, first_row: int = 0) -> Parsed:
    """Rows of one file (its rows ``first_row`` onwards) → one record per playlist id, its
    entries in row order with their positions (the id rule: ``schemas.id_strings``; the order
    rule: ``common.RECORDS``). Failure examples are the first in row order, so a file read in
    several units lists the same ones."""
    table = schemas.ids_as_strings(table, COLUMNS[:2])
    try:
        given = positions(table.column("pos")) if "pos" in table.column_names else None
    except ValueError as exc:
        return _unreadable(source, exc)
    pids, tracks = table.column("playlist_id"), table.column("track_id")
    if not pa.types.is_string(pids.type):
        return _parse_rows_general(table, source, first_row, given)
    n = table.num_rows
    row = np.arange(first_row, first_row + n, dtype=np.int64)
    pids = pids.combine_chunks()
    strings = pa.types.is_string(tracks.type)
    tracks = tracks.combine_chunks()
    pos = given if given is not None else pa.nulls(n, pa.float64())
    out = Parsed(RECORDS.empty_table(), schemas.TRACK_META.empty_table())
    has_id = pids.is_valid().to_numpy(zero_copy_only=False)
    valid = has_id & (clean_ids(tracks) if strings else np.zeros(n, bool))
    at = pos.fill_null(0.0).to_numpy(zero_copy_only=False)
    in_range = (at >= POSITIONS[0]) & (at < POSITIONS[1])
    good = valid & in_range
    for reason, rows in (("invalid_playlist_id", np.flatnonzero(~has_id)),
                         ("invalid_track_id", np.flatnonzero(has_id & ~valid)),
                         ("invalid_position", np.flatnonzero(valid & ~in_range))):  # fmt: skip
        if not len(rows):
            continue
        drop(out.drops, reason, len(rows))
        for i in rows[:MAX_EXAMPLES]:
            record, error = (
                (f"{source} row {row[i]}", "playlist_id is null")
                if reason == "invalid_playlist_id"
                else (f"{source} row {row[i]}", f"pos {at[i]:g} is out of range")
                if reason == "invalid_position"
                else (f"{source} row {row[i]}", track_id_problem(tracks[int(i)].as_py()))
            )
            out.failures.append(
                {"source": source, "record": record, "error": error, "reason": reason}
            )
    keep = np.flatnonzero(good)
    codes = pc.dictionary_encode(pids.take(pa.array(keep))).indices.to_numpy(zero_copy_only=False)
    order = np.argsort(codes, kind="stable")
    keep, codes = keep[order], codes[order]
    starts = np.flatnonzero(np.diff(codes, prepend=-1) != 0) if len(codes) else codes
    offsets = pa.array(np.append(starts, len(codes)).astype(np.int32))
    ids = tracks.take(pa.array(keep)) if strings else pa.array([], pa.string())
    out.records = pa.table({
        "playlist_id": pids.take(pa.array(keep[starts])),
        "origin": pa.array([""] * len(starts), pa.string()),
        "source": pa.array(["table"] * len(starts), pa.string()),
        "pos": pa.ListArray.from_arrays(offsets, pos.take(pa.array(keep))),
        "track_ids": pa.ListArray.from_arrays(offsets, ids),
        "order": pa.array(np.zeros(len(starts), np.int64)),
    }, schema=RECORDS)  # fmt: skip
    unique = pc.unique(ids)
    out.meta = pa.table({"track_id": unique, "artist_ids": empty_lists(len(unique)),
                         "genres": empty_lists(len(unique))}, schema=schemas.TRACK_META)  # fmt: skip
    return out


def _parse_rows_general(
    table: pa.Table, source: str, first_row: int, given: pa.Array | None
) -> Parsed:
    """Playlist ids of another type than string or integer: every playlist is invalid (its
    failure rows are all alike, so their order does not matter)."""
    out = Collector(source, "table")
    pids = table.column("playlist_id").to_pylist()
    tracks = table.column("track_id").to_pylist()
    rows = range(first_row, first_row + len(pids))
    pos = given.to_pylist() if given is not None else [None] * len(pids)
    grouped: dict[object, list[Entry]] = {}
    for k, (i, p, t) in enumerate(zip(rows, pids, tracks, strict=True)):
        if p is None:
            out.fail(f"{source} row {i}", "playlist_id is null", "invalid_playlist_id")
            drop(out.drops, "invalid_playlist_id", 1)
            continue
        grouped.setdefault(p, []).append((pos[k], t, [], []))
    for p, entries in grouped.items():
        out.playlist(p, "", entries)  # one origin: rows with the same id form one playlist
    return out.result()
