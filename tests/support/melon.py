"""A miniature Melon Playlist Dataset: ``song_meta.json``, ``train.json`` / ``val.json`` /
``test.json`` and an ``arena_mel/<id // 1000>/<id>.npy`` tree of frequency-major ``(48,
frames)`` float32 dB arrays, with a planted structure (songs of one genre share a spectral
shape and are listed together) and the bad cases a real download can hold: a song without an
array, one array with 40 bands and one truncated file."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field

import numpy as np

GENRES = [f"GN{g + 1:02d}00" for g in range(8)]


@dataclass
class MiniMelon:
    root: str
    arena_mel: str
    arrays: dict[str, np.ndarray] = field(default_factory=dict)  # id → the good source arrays
    missing: str = ""
    forty_bands: str = ""
    truncated: str = ""
    playlists: int = 0

    def path(self, song: str) -> str:
        return os.path.join(self.arena_mel, str(int(song) // 1000), f"{song}.npy")


def _write_json(path: str, value) -> None:
    with open(path, "w", encoding="utf-8") as f:
        json.dump(value, f, ensure_ascii=False)


def write_melon(root: str, songs: int = 96, playlists: int = 72, seed: int = 0) -> MiniMelon:
    """``songs`` songs over 8 genres (ids spread over several ``id // 1000`` folders),
    ``playlists`` playlists of 8–12 songs of one genre split 80/10/10 into the three files."""
    rng = np.random.default_rng(seed)
    os.makedirs(root, exist_ok=True)
    out = MiniMelon(root, os.path.join(root, "arena_mel"))
    ids = [str(i * 7919 % 1_000_003) for i in range(1, songs + 1)]
    genre_of = {s: i % len(GENRES) for i, s in enumerate(ids)}
    shapes = rng.normal(0, 6, size=(len(GENRES), 48))
    meta = []
    for song in ids:
        g = genre_of[song]
        meta.append({"id": int(song), "song_name": f"song {song}", "artist_id_basket": [g * 10 + int(song) % 3],
                     "song_gn_gnr_basket": [GENRES[g]],
                     "song_gn_dtl_gnr_basket": [GENRES[g][:-2] + f"{1 + int(song) % 3:02d}"],
                     "issue_date": "20200101", "album_id": int(song) // 2})  # fmt: skip
    _write_json(os.path.join(root, "song_meta.json"), meta)
    out.missing, out.forty_bands, out.truncated = ids[1], ids[2], ids[3]
    for song in ids:
        if song == out.missing:
            continue
        frames = int(rng.integers(300, 420))
        bands = 40 if song == out.forty_bands else 48
        array = (-45 + shapes[genre_of[song]][:bands, None]
                 + rng.normal(0, 8, size=(bands, frames))).astype(np.float32)  # fmt: skip
        os.makedirs(os.path.dirname(out.path(song)), exist_ok=True)
        np.save(out.path(song), array)
        if song == out.truncated:
            with open(out.path(song), "r+b") as f:
                f.truncate(os.path.getsize(out.path(song)) // 2)
        elif song != out.forty_bands:
            out.arrays[song] = array
    by_genre = {g: [s for s in ids if genre_of[s] == g] for g in range(len(GENRES))}
    lists = []
    for pid in range(playlists):
        pool = by_genre[pid % len(GENRES)]
        chosen = rng.choice(pool, size=min(len(pool), int(rng.integers(8, 13))), replace=False)
        lists.append({"id": 100 + pid, "plylst_title": f"mix {pid}", "tags": [GENRES[pid % 8]],
                      "songs": [int(s) for s in chosen], "like_cnt": int(rng.integers(0, 50)),
                      "updt_date": "2020-01-01 00:00:00.000"})  # fmt: skip
    cut = [int(0.8 * playlists), int(0.9 * playlists)]
    for name, part in zip(
        ("train", "val", "test"), np.split(np.arange(playlists), cut), strict=True
    ):
        _write_json(os.path.join(root, f"{name}.json"), [lists[i] for i in part])
    out.playlists = playlists
    return out
