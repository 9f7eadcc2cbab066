"""One part's records → its slice of ``playlists.parquet`` and ``track_meta.parquet``.

Pure functions over Arrow columns, the same for the Beam job and the local runner. Strings
are compared once (dictionary-encoded, ranked); the sorting and de-duplication run on
integers, so a part of 2 M entries is assembled in about a second.
"""

from __future__ import annotations

from collections import Counter

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from duet import schemas
from duet.pipelines.csr import dedupe_rows, take_rows
from duet.pipelines.playlists.common import drop, empty_lists


def _starts(column: pa.Array) -> np.ndarray:
    """bool: where a sorted column starts a new value."""
    starts = np.ones(len(column), bool)
    if len(column) > 1:
        starts[1:] = pc.not_equal(column[1:], column[:-1]).to_numpy(zero_copy_only=False)
    return starts


def ranks(values: pa.Array) -> np.ndarray:
    """int64 rank of every value in ascending (UTF-8 byte, i.e. code point) order."""
    out = np.empty(len(values), np.int64)
    out[pc.sort_indices(values).to_numpy()] = np.arange(len(values))
    return out


def _entry_order(
    group: np.ndarray, pos: pa.Array, unit: np.ndarray, entry: np.ndarray
) -> np.ndarray:
    """The order rule (``common.RECORDS``) as one sort: by playlist ``group``, positioned
    entries first by position, then input order — the records' ``unit`` order, then the
    entry's place in its record (``entry`` grows along a record)."""
    missing = pos.is_null().to_numpy(zero_copy_only=False)
    values = pos.fill_null(0.0).to_numpy(zero_copy_only=False)
    return np.lexsort((entry, unit, values, missing, group))


def assemble(records: pa.Table) -> tuple[pa.Table, Counter]:
    """Records of whole playlists → playlists table (sorted by id) and what was dropped.

    One id used by several records (origins): the first origin in sort order is kept; records
    with the same id and origin (rows of one table playlist) are one playlist. Its tracks are
    ordered by the order rule of ``common.RECORDS``; a track repeated in a playlist counts once
    (first position); fewer than 2 tracks: dropped.
    """
    drops: Counter = Counter()
    n = records.num_rows
    keys = pa.table([records.column("playlist_id"), records.column("origin")], names=["p", "o"])
    order = pc.sort_indices(keys, sort_keys=[("p", "ascending"), ("o", "ascending")]).to_numpy()
    pid = records.column("playlist_id").combine_chunks().take(pa.array(order))
    new_pid = _starts(pid)
    new_origin = new_pid | _starts(records.column("origin").combine_chunks().take(pa.array(order)))
    run = np.cumsum(new_origin)
    first = np.flatnonzero(new_pid)
    keep = run == np.repeat(run[first], np.diff(np.append(first, n)))
    tracks = records.column("track_ids").combine_chunks()
    sizes = pc.list_value_length(tracks).to_numpy(zero_copy_only=False).astype(np.int64)
    drop(
        drops,
        "duplicate_playlist_id",
        int(sizes[order[~keep]].sum()),
        int((new_origin & ~keep).sum()),
    )
    kept = order[keep]
    group = (np.cumsum(new_pid) - 1)[keep]
    kept_sizes = sizes[kept]
    begin = np.concatenate([[0], np.cumsum(sizes)])[kept]
    entry = np.repeat(begin - np.concatenate([[0], np.cumsum(kept_sizes)[:-1]]), kept_sizes)
    entry += np.arange(len(entry))
    encoded = pc.dictionary_encode(pc.list_flatten(tracks))
    codes = encoded.indices.to_numpy(zero_copy_only=False)[entry].astype(np.int32)
    pos = pc.list_flatten(records.column("pos").combine_chunks()).take(pa.array(entry))
    unit = np.repeat(records.column("order").to_numpy()[kept], kept_sizes)
    group = np.repeat(group, kept_sizes)
    codes = codes[_entry_order(group, pos, unit, entry)]
    indptr = np.zeros(len(first) + 1, np.int64)
    np.cumsum(np.bincount(group, minlength=len(first)), out=indptr[1:])
    indptr, indices, repeats = dedupe_rows(indptr, codes, len(encoded.dictionary))
    drop(drops, "repeated_in_playlist", int(repeats))
    lengths = np.diff(indptr)
    short = lengths < 2
    drop(drops, "under_two_tracks", int(lengths[short].sum()), int(short.sum()))
    rows = np.flatnonzero(~short)
    indptr, indices = take_rows(indptr, indices, rows)
    firsts = pa.array(first[rows])
    table = pa.table({
        "playlist_id": pid.take(firsts),
        "track_ids": pa.ListArray.from_arrays(pa.array(indptr.astype(np.int32)),
                                              encoded.dictionary.take(pa.array(indices))),
        "source": records.column("source").combine_chunks().take(pa.array(order[first[rows]])),
    }, schema=schemas.PLAYLISTS)  # fmt: skip
    return table, drops


def _union(track_rank: np.ndarray, row_track: np.ndarray, lists: pa.Array) -> pa.ListArray:
    """Per track (in rank order), the sorted distinct strings of its rows' ``lists``."""
    n_tracks = len(track_rank)
    values = pc.list_flatten(lists)
    if not len(values):
        return empty_lists(n_tracks)
    parents = pc.list_parent_indices(lists).to_numpy(zero_copy_only=False)
    encoded = pc.dictionary_encode(values)
    value_rank = ranks(encoded.dictionary)
    width = np.int64(len(value_rank))
    key = np.unique(track_rank[row_track[parents]] * width
                    + value_rank[encoded.indices.to_numpy(zero_copy_only=False)])  # fmt: skip
    by_rank = np.empty(len(value_rank), np.int64)
    by_rank[value_rank] = np.arange(len(value_rank))
    offsets = np.zeros(n_tracks + 1, np.int32)
    np.cumsum(np.bincount(key // width, minlength=n_tracks), out=offsets[1:])
    return pa.ListArray.from_arrays(
        pa.array(offsets), encoded.dictionary.take(pa.array(by_rank[key % width]))
    )


def merge_meta(meta: pa.Table) -> pa.Table:
    """One row per track, sorted by id: the sorted union of its artists and genres across
    inputs."""
    encoded = pc.dictionary_encode(meta.column("track_id").combine_chunks())
    rank = ranks(encoded.dictionary)
    by_rank = np.empty(len(rank), np.int64)
    by_rank[rank] = np.arange(len(rank))
    row_track = encoded.indices.to_numpy(zero_copy_only=False)
    return pa.table({
        "track_id": encoded.dictionary.take(pa.array(by_rank)),
        "artist_ids": _union(rank, row_track, meta.column("artist_ids").combine_chunks()),
        "genres": _union(rank, row_track, meta.column("genres").combine_chunks()),
    }, schema=schemas.TRACK_META)  # fmt: skip
