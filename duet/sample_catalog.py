"""``duet sample-catalog``: a deterministic, realistic little catalogue for demos, tests and
benchmarks — synthesised tracks in five codecs, a track manifest, playlists in Million
Playlist Dataset slice format, Melon-style metadata, and a few deliberately broken files."""

from __future__ import annotations

import json
import os
import subprocess
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypedDict

import numpy as np
import pyarrow as pa

from duet import schemas
from duet.ffmpeg import ffmpeg_path
from duet.synth import GENRES, render

CODECS = {
    "mp3": ["-c:a", "libmp3lame", "-b:a", "192k"],
    "flac": ["-c:a", "flac"],
    "ogg": ["-c:a", "libvorbis", "-q:a", "4"],
    "wav": ["-c:a", "pcm_s16le"],
    "m4a": ["-c:a", "aac", "-b:a", "160k"],
}
SAMPLE_RATES = (22050, 44100, 48000)
ARTISTS_PER_GENRE = 3
BROKEN = {
    "duet:broken:truncated": "truncated.mp3",
    "duet:broken:empty": "empty.flac",
    "duet:broken:not-audio": "not-audio.wav",
    "duet:broken:silent": "silent.flac",
}


@dataclass(frozen=True)
class Track:
    index: int
    track_id: str
    genre: int
    artist: int
    seconds: float
    sample_rate: int
    channels: int
    codec: str
    key: int
    tempo: float

    @property
    def path(self) -> str:
        return f"audio/{GENRES[self.genre].name}/{self.index:05d}.{self.codec}"


def encode(
    samples: np.ndarray, sample_rate: int, codec: str, path: str, *, seconds: float | None = None
) -> None:
    """Encode float32 ``[samples, channels]`` audio to ``path`` with ffmpeg (bit-exact flags)."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    cmd = [ffmpeg_path(), "-nostdin", "-hide_banner", "-loglevel", "error", "-y",
           "-f", "f32le", "-ar", str(sample_rate), "-ac", str(samples.shape[1]), "-i", "pipe:0",
           *CODECS[codec], "-map_metadata", "-1", "-fflags", "+bitexact", "-flags:a", "+bitexact"]  # fmt: skip
    if seconds is not None:
        cmd += ["-t", str(seconds)]
    subprocess.run([*cmd, path], input=np.ascontiguousarray(samples, "<f4").tobytes(), check=True)


def plan_tracks(n: int, rng: np.random.Generator) -> list[Track]:
    artists = [
        (g, int(rng.integers(12)), float(rng.uniform(*GENRES[g].tempo)))
        for g in range(len(GENRES))
        for _ in range(ARTISTS_PER_GENRE)
    ]
    codecs = list(CODECS)
    tracks = []
    for i in range(n):
        artist = int(rng.integers(len(artists)))
        genre, key, tempo = artists[artist]
        tracks.append(Track(
            index=i, track_id=f"duet:track:{i:05d}", genre=genre, artist=artist,
            seconds=float(rng.uniform(10, 60)), sample_rate=SAMPLE_RATES[i % 3],
            channels=1 + (i % 2), codec=codecs[i % len(codecs)],
            key=(key + int(rng.integers(-1, 2))) % 12, tempo=tempo * float(rng.uniform(0.97, 1.03)),
        ))  # fmt: skip
    return tracks


def plan_playlists(tracks: list[Track], count: int, rng: np.random.Generator) -> list[list[int]]:
    """Playlists with a theme genre and favourite artists, so co-occurrence carries signal."""
    by_genre = {g: [t.index for t in tracks if t.genre == g] for g in range(len(GENRES))}
    by_artist: dict[int, list[int]] = {}
    for t in tracks:
        by_artist.setdefault(t.artist, []).append(t.index)
    out = []
    for _ in range(count):
        genre = int(rng.integers(len(GENRES)))
        pool = by_genre[genre] or [t.index for t in tracks]
        favourites = [a for a in by_artist if tracks[by_artist[a][0]].genre == genre]
        fav = by_artist[favourites[int(rng.integers(len(favourites)))]] if favourites else pool
        length = min(int(rng.integers(5, 21)), max(5, 2 * len(pool)))
        chosen: list[int] = []
        for _ in range(length * 3):
            if len(chosen) >= min(length, len(tracks)):
                break
            r = rng.random()
            source = fav if r < 0.4 else pool if r < 0.9 else range(len(tracks))
            pick = int(rng.choice(list(source)))
            if pick not in chosen:
                chosen.append(pick)
        out.append(chosen)
    return out


def _mpd_slice(tracks: list[Track], playlists: list[list[int]], broken_ids: list[str]) -> dict:
    items = []
    for pid, members in enumerate(playlists):
        entries: list[dict[str, Any]] = [
            {
                "pos": pos,
                "artist_name": f"{GENRES[tracks[i].genre].name.title()} Artist {tracks[i].artist}",
                "track_uri": tracks[i].track_id,
                "artist_uri": f"duet:artist:{tracks[i].artist:03d}",
                "track_name": f"Track {i}",
                "album_uri": f"duet:album:{tracks[i].artist:03d}",
                "duration_ms": int(tracks[i].seconds * 1000),
                "album_name": f"Album {tracks[i].artist}",
            }
            for pos, i in enumerate(members)
        ]
        if broken_ids and pid % 25 == 0:
            bad = broken_ids[(pid // 25) % len(broken_ids)]
            entries.append({"pos": len(entries), "artist_name": "Broken", "track_uri": bad,
                            "artist_uri": "duet:artist:broken", "track_name": bad,
                            "album_uri": "duet:album:broken", "duration_ms": 0,
                            "album_name": "Broken"})  # fmt: skip
        genre = GENRES[tracks[members[0]].genre].name if members else "mixed"
        items.append({
            "name": f"{genre} mix {pid}", "collaborative": "false", "pid": pid,
            "modified_at": 1500000000 + pid, "num_tracks": len(entries),
            "num_albums": len({e["album_uri"] for e in entries}), "num_followers": 1,
            "num_edits": 1, "duration_ms": sum(e["duration_ms"] for e in entries),
            "num_artists": len({e["artist_uri"] for e in entries}), "tracks": entries,
        })  # fmt: skip
    return {"info": {"generated_on": "2026-01-01T00:00:00", "slice": f"0-{len(items) - 1}",
                     "version": "duet-sample"}, "playlists": items}  # fmt: skip


def _genre_code(genre: int) -> str:
    return f"GN{(genre + 1) * 100:04d}"


def _write_json(path: str, data) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        json.dump(data, f, ensure_ascii=False, indent=1, sort_keys=True)


def _write_broken(output: str, rng: np.random.Generator) -> None:
    folder = os.path.join(output, "broken")
    os.makedirs(folder, exist_ok=True)
    audio = render(GENRES[0], key=0, tempo=120, seconds=8, sr=44100, channels=2, rng=rng)
    whole = os.path.join(folder, "whole.mp3")
    encode(audio, 44100, "mp3", whole)
    with open(whole, "rb") as f:
        head = f.read(1500)
    os.remove(whole)
    with open(os.path.join(folder, BROKEN["duet:broken:truncated"]), "wb") as f:
        f.write(head)
    open(os.path.join(folder, BROKEN["duet:broken:empty"]), "wb").close()
    with open(os.path.join(folder, BROKEN["duet:broken:not-audio"]), "w") as f:
        f.write("This is a text file that only pretends to be a WAV file.\n")
    encode(
        np.zeros((15 * 22050, 1), np.float32),
        22050,
        "flac",
        os.path.join(folder, BROKEN["duet:broken:silent"]),
    )


class CatalogSummary(TypedDict):
    tracks: int
    broken: int  # deliberately broken files
    playlists: int
    audio_seconds: float
    manifest: str  # the track manifest's path


def generate(
    output: str,
    *,
    tracks: int = 60,
    seed: int = 0,
    playlists: int | None = None,
    broken: bool = True,
    workers: int | None = None,
) -> CatalogSummary:
    """Write the catalogue under ``output``; returns a summary. Same (tracks, seed) → same files."""  # fmt: skip
    if tracks < 1:
        raise ValueError("--tracks must be at least 1")
    rng = np.random.default_rng(seed)
    plan = plan_tracks(tracks, rng)

    def make(t: Track) -> None:
        audio = render(GENRES[t.genre], key=t.key, tempo=t.tempo, seconds=t.seconds,
                       sr=t.sample_rate, channels=t.channels,
                       rng=np.random.default_rng([seed, t.index]))  # fmt: skip
        encode(audio, t.sample_rate, t.codec, os.path.join(output, t.path))

    with ThreadPoolExecutor(max_workers=workers or os.cpu_count() or 1) as pool:
        list(pool.map(make, plan))
    rows = [
        {"track_id": t.track_id, "audio_uri": t.path, "artist_ids": [f"duet:artist:{t.artist:03d}"],
         "genres": [GENRES[t.genre].name], "split": None, "melon_song_id": t.index}
        for t in plan
    ]  # fmt: skip
    broken_ids: list[str] = []
    if broken:
        _write_broken(output, np.random.default_rng([seed, 999_999]))
        broken_ids = list(BROKEN)
        rows += [{"track_id": tid, "audio_uri": f"broken/{name}", "artist_ids": ["duet:artist:broken"],
                  "genres": [], "split": None, "melon_song_id": tracks + i}
                 for i, (tid, name) in enumerate(BROKEN.items())]  # fmt: skip
    table = schemas.conform(pa.Table.from_pylist(rows), schemas.TRACK_MANIFEST)
    table = table.append_column(
        "melon_song_id", pa.array([r["melon_song_id"] for r in rows], pa.int64())
    )
    schemas.write_table(table, os.path.join(output, "tracks.parquet"), table.schema)
    lists = plan_playlists(plan, playlists or max(40, tracks * 4), rng)
    mpd = _mpd_slice(plan, lists, broken_ids)
    _write_json(os.path.join(output, "mpd", f"mpd.slice.0-{len(lists) - 1}.json"), mpd)
    song_meta = [
        {"id": t.index, "song_name": f"Track {t.index}", "artist_id_basket": [t.artist],
         "artist_name_basket": [f"Artist {t.artist}"], "song_gn_gnr_basket": [_genre_code(t.genre)],
         "song_gn_dtl_gnr_basket": [_genre_code(t.genre)[:-2] + f"{1 + t.index % 3:02d}"]}
        for t in plan
    ]  # fmt: skip
    _write_json(os.path.join(output, "melon", "song_meta.json"), song_meta)
    melon = [{"id": pid, "plylst_title": f"mix {pid}", "tags": [GENRES[plan[m[0]].genre].name],
              "songs": m, "like_cnt": 1, "updt_date": "2020-01-01 00:00:00.000"}
             for pid, m in enumerate(lists)]  # fmt: skip
    _write_json(os.path.join(output, "melon", "train.json"), melon)
    return {
        "tracks": tracks,
        "broken": len(broken_ids),
        "playlists": len(lists),
        "audio_seconds": round(sum(t.seconds for t in plan), 1),
        "manifest": os.path.join(output, "tracks.parquet"),
    }
