"""Small published tables written directly, for tests that need a table and not the job that
makes it: playlists, track metadata, splits, an audio index of given lengths, top-K. Each is
published the way the jobs publish (duet.publish: a tagged part listed in ``_SUCCESS``)."""

from __future__ import annotations

import os

import pyarrow as pa

from duet import layout, publish, schemas


def publish_table(folder: str, logical: str, table: pa.Table, schema: pa.Schema,
                  job: str = "test", owned: tuple[str, ...] = ("",)) -> str:  # fmt: skip
    """``table`` as the one file ``logical`` of a new generation of ``folder`` (whose marker
    governs ``owned``); returns the folder."""
    files = publish.write(folder, logical, schemas.to_parquet_bytes(table, schema))
    body = layout.summary(job, format_version=2, config={}, inputs={},
                          counts={"rows": table.num_rows})  # fmt: skip
    publish.commit(folder, body, files, owned=owned, how=publish.Commit(allow_shrink=True))
    return folder


def publish_files(folder: str, body: dict, files: dict[str, bytes]) -> str:
    """``files`` (logical name → bytes) as a new generation of ``folder`` with ``body`` as its
    ``_SUCCESS``; returns the folder."""
    listed: dict[str, dict] = {}
    for logical, data in files.items():
        listed |= publish.write(folder, logical, data)
    publish.commit(folder, body, listed, how=publish.Commit(allow_shrink=True))
    return folder


def republish(folder: str, body: dict) -> str:
    """``body`` as the ``_SUCCESS`` of the published ``folder``, listing the same files (a
    table written by a helper, described as its job describes it)."""
    files = publish.open_folder(folder, "a test helper").files
    publish.commit(folder, body, files, how=publish.Commit(allow_shrink=True))
    return folder


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
    publish_table(root, layout.part(layout.INDEX, 0), schemas.from_rows(rows, schemas.AUDIO_INDEX),
                  schemas.AUDIO_INDEX, job="shards", owned=layout.SHARD_FOLDERS)  # fmt: skip


def write_topk(root: str, topk: dict[str, list[str]]) -> str:
    rows = [{"track_id": t, "rank": r, "neighbor_id": n, "count": 10 - r}
            for t, ns in sorted(topk.items()) for r, n in enumerate(ns)]  # fmt: skip
    publish_table(os.path.join(root, "cooc"), layout.part(layout.TOPK, 0),
                  schemas.from_rows(rows, schemas.TOPK), schemas.TOPK)  # fmt: skip
    return os.path.join(root, "cooc", "topk.parquet")


def write_playlists(root: str, lists: list[list[str]], name: str = "playlists.parquet") -> str:
    """A published-looking playlists table folder under ``root``."""
    folder = os.path.join(root, name)
    rows = [
        {"playlist_id": f"p{i}", "track_ids": t, "source": "planted"} for i, t in enumerate(lists)
    ]
    return publish_table(folder, layout.part_name(0), schemas.from_rows(rows, schemas.PLAYLISTS),
                         schemas.PLAYLISTS)  # fmt: skip


def write_track_meta(root: str, genres: dict[str, list[str]]) -> str:
    folder = os.path.join(root, "track_meta.parquet")
    rows = [{"track_id": t, "artist_ids": [], "genres": g} for t, g in genres.items()]
    return publish_table(folder, layout.part_name(0), schemas.from_rows(rows, schemas.TRACK_META),
                         schemas.TRACK_META)  # fmt: skip


def write_splits(root: str, assignment: dict[str, str]) -> str:
    folder = os.path.join(root, "splits.parquet")
    rows = [{"track_id": t, "split": s} for t, s in assignment.items()]
    return publish_table(folder, layout.part_name(0), schemas.from_rows(rows, schemas.SPLITS),
                         schemas.SPLITS)  # fmt: skip
