"""Synthetic playlist sets with Million Playlist Dataset statistics, for benchmarks.

MPD: 1 000 000 playlists, 66.3 M entries, 2.26 M unique tracks, lengths 5–250 (mean 66,
median 49), heavy-tailed track popularity (the top track in ~46 000 playlists, about half of
all tracks in a single playlist). Lengths here are log-normal clipped to [5, 250]; track
popularity is a shifted power law p(r) ∝ (r + 450)^-1.35 over 5 M candidate tracks, which at
1 M playlists gives ~2.3 M distinct tracks, half of them in one playlist, and a top track in
~6 % of playlists. Fewer playlists are a random subset of the same catalogue.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

MPD_PLAYLISTS = 1_000_000


def lengths(n: int, rng: np.random.Generator) -> np.ndarray:
    return np.clip(np.rint(rng.lognormal(3.92, 0.8, n)), 5, 250).astype(np.int64)


POOL, EXPONENT, SHIFT = 5_000_000, 1.35, 450.0


def draw(n_playlists: int, seed: int = 0):
    """(indptr, track indices) of ``n_playlists`` playlists; indices may repeat inside one."""
    rng = np.random.default_rng(seed)
    sizes = lengths(n_playlists, rng)
    indptr = np.zeros(n_playlists + 1, np.int64)
    np.cumsum(sizes, out=indptr[1:])
    # Inverse-CDF sample of p(x) ∝ x^-EXPONENT on [SHIFT, SHIFT + POOL).
    a, lo, hi = 1.0 - EXPONENT, SHIFT, SHIFT + POOL
    u = rng.random(int(indptr[-1]))
    x = ((hi**a - lo**a) * u + lo**a) ** (1.0 / a)
    ranks = np.minimum((x - SHIFT).astype(np.int64), POOL - 1)
    relabel = np.random.default_rng(seed + 1).permutation(POOL).astype(np.int32)
    return indptr, relabel[ranks]


def track_uri(index: np.ndarray) -> pa.Array:
    """Spotify-looking ids: ``spotify:track:`` + 22 base-62 characters derived from the index."""
    alphabet = np.frombuffer(
        b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz", np.uint8
    )
    x = (index.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15)) ^ np.uint64(0x5DEECE66D)
    chars = np.empty((len(index), 22), np.uint8)
    for c in range(22):
        chars[:, c] = alphabet[(x % np.uint64(62)).astype(np.int64)]
        x = x // np.uint64(62) + np.uint64(index.astype(np.uint64) * np.uint64(c + 1))
    prefix = np.frombuffer(b"spotify:track:", np.uint8)
    rows = np.hstack([np.broadcast_to(prefix, (len(index), len(prefix))), chars])
    width = rows.shape[1]
    offsets = np.arange(0, (len(index) + 1) * width, width, dtype=np.int32)
    return pa.StringArray.from_buffers(
        len(index), pa.py_buffer(offsets), pa.py_buffer(rows.tobytes())
    )


def playlists_table(n_playlists: int, seed: int = 0, rows_per_chunk: int = 50_000) -> pa.Table:
    """A playlists table (schema ``PLAYLISTS``) with MPD statistics and string track ids,
    in chunks of ``rows_per_chunk`` playlists (one chunk's strings stay under 2 GiB)."""
    from duet import schemas
    from duet.pipelines.csr import dedupe_rows

    indptr, indices = draw(n_playlists, seed)
    indptr, indices, _ = dedupe_rows(indptr, indices, POOL)
    used, local = np.unique(indices, return_inverse=True)
    vocab = track_uri(used.astype(np.int64))
    chunks = []
    for start in range(0, n_playlists, rows_per_chunk):
        stop = min(start + rows_per_chunk, n_playlists)
        lo, hi = indptr[start], indptr[stop]
        ids = vocab.take(pa.array(local[lo:hi].astype(np.int32)))
        lists = pa.ListArray.from_arrays(
            pa.array((indptr[start : stop + 1] - lo).astype(np.int32)), ids
        )
        chunks.append(pa.record_batch(
            [pa.array([f"synthetic:{i}" for i in range(start, stop)], pa.string()), lists,
             pa.array(["synthetic"] * (stop - start), pa.string())], schema=schemas.PLAYLISTS))  # fmt: skip
    return pa.Table.from_batches(chunks, schema=schemas.PLAYLISTS)


def write_mpd_slices(
    folder: str, n_playlists: int, seed: int = 0, per_slice: int = 1000,
    table: pa.Table | None = None,
) -> list[str]:  # fmt: skip
    """The same playlists as Million Playlist Dataset slices (``mpd.slice.A-B.json``, every
    field the real files carry, ~17 KB per playlist), written one slice at a time (memory:
    the playlists table plus one slice), for measuring ingestion. ``table``: the playlists
    (default: ``playlists_table(n_playlists, seed)``)."""
    import os

    import msgspec

    table = table if table is not None else playlists_table(n_playlists, seed)
    lists = table.column("track_ids")
    os.makedirs(folder, exist_ok=True)
    encode = msgspec.json.Encoder().encode
    paths = []
    for start in range(0, n_playlists, per_slice):
        block = lists.slice(start, per_slice).to_pylist()
        playlists = [{
            "name": f"mix {start + i}", "collaborative": "false", "pid": start + i,
            "modified_at": 1500000000, "num_tracks": len(tracks), "num_albums": len(tracks),
            "num_followers": 1, "num_edits": 1, "duration_ms": 200_000 * len(tracks),
            "num_artists": len(tracks),
            "tracks": [{"pos": p, "artist_name": f"artist {uri[-4:]}", "track_uri": uri,
                        "artist_uri": f"spotify:artist:{uri[-22:]}", "track_name": f"track {uri[-6:]}",
                        "album_uri": f"spotify:album:{uri[-22:]}", "duration_ms": 200_000,
                        "album_name": "album"} for p, uri in enumerate(tracks)],
        } for i, tracks in enumerate(block)]  # fmt: skip
        stop = start + len(block) - 1
        path = os.path.join(folder, f"mpd.slice.{start}-{stop}.json")
        with open(path, "wb") as f:
            f.write(encode({"info": {"generated_on": "synthetic", "slice": f"{start}-{stop}",
                                     "version": "v1"}, "playlists": playlists}))  # fmt: skip
        paths.append(path)
    return paths


def write_entries_table(path: str, table: pa.Table, rows_per_group: int = 1_000_000) -> str:
    """The playlists of ``table`` as one flat Parquet table ``playlist_id, track_id, pos`` (one
    row per entry, the input ``duet playlists --format table`` reads), written chunk by chunk."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    schema = pa.schema(
        [("playlist_id", pa.string()), ("track_id", pa.string()), ("pos", pa.int64())]
    )
    with pq.ParquetWriter(path, schema, compression="zstd") as writer:
        for batch in table.to_batches():
            lists = batch.column(1)
            offsets = lists.offsets.to_numpy()
            pos = np.arange(offsets[-1] - offsets[0]) - np.repeat(
                offsets[:-1] - offsets[0], np.diff(offsets)
            )
            writer.write_table(pa.table({
                "playlist_id": batch.column(0).take(pc.list_parent_indices(lists)),
                "track_id": pc.list_flatten(lists), "pos": pa.array(pos, pa.int64()),
            }, schema=schema), row_group_size=rows_per_group)  # fmt: skip
    return path
