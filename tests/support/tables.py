"""Small published-looking tables written directly, for tests that need a table and not the
job that makes it: playlists, track metadata, splits, an audio index of given lengths, top-K."""

from __future__ import annotations

import os

from duet import publish, schemas

STREAMS = {"wav-22050": ("samples", 22050), "mel-alonso": ("frames", 22050),
           "mel-choi": ("frames", 16000)}  # fmt: skip


def write_index(root: str, lengths: dict[str, dict[str, int]]) -> None:
    """A published root whose audio index gives each track's length per stream."""
    rows = []
    for track, streams in lengths.items():
        for stream, n in streams.items():
            unit, rate = STREAMS[stream]
            rows.append({"track_id": track, "stream": stream, "shard": "s.tar", "member": "m",
                         "offset": 0, "size": 1, "payload_offset": 0, "format": "npy",
                         "dtype": "int16", "sample_rate": rate, unit: n, "duration": 1.0,
                         "sha256": "0"})  # fmt: skip
    schemas.write_table(schemas.from_rows(rows, schemas.AUDIO_INDEX),
                        os.path.join(root, "index", "part-00000.parquet"), schemas.AUDIO_INDEX)  # fmt: skip
    publish.write_success(root, {"job": "shards"})


def write_topk(root: str, topk: dict[str, list[str]]) -> str:
    folder = os.path.join(root, "cooc", "topk.parquet")
    rows = [{"track_id": t, "rank": r, "neighbor_id": n, "count": 10 - r}
            for t, ns in sorted(topk.items()) for r, n in enumerate(ns)]  # fmt: skip
    schemas.write_table(schemas.from_rows(rows, schemas.TOPK),
                        os.path.join(folder, "part-00000.parquet"), schemas.TOPK)  # fmt: skip
    return folder


def write_playlists(root: str, lists: list[list[str]], name: str = "playlists.parquet") -> str:
    """A published-looking playlists table folder under ``root``."""
    folder = os.path.join(root, name)
    rows = [
        {"playlist_id": f"p{i}", "track_ids": t, "source": "planted"} for i, t in enumerate(lists)
    ]
    schemas.write_table(schemas.from_rows(rows, schemas.PLAYLISTS),
                        os.path.join(folder, "part-00000.parquet"), schemas.PLAYLISTS)  # fmt: skip
    return folder


def write_track_meta(root: str, genres: dict[str, list[str]]) -> str:
    folder = os.path.join(root, "track_meta.parquet")
    rows = [{"track_id": t, "artist_ids": [], "genres": g} for t, g in genres.items()]
    schemas.write_table(schemas.from_rows(rows, schemas.TRACK_META),
                        os.path.join(folder, "part-00000.parquet"), schemas.TRACK_META)  # fmt: skip
    return folder


def write_splits(root: str, assignment: dict[str, str]) -> str:
    folder = os.path.join(root, "splits.parquet")
    rows = [{"track_id": t, "split": s} for t, s in assignment.items()]
    schemas.write_table(schemas.from_rows(rows, schemas.SPLITS),
                        os.path.join(folder, "part-00000.parquet"), schemas.SPLITS)  # fmt: skip
    return folder
