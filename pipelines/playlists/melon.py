"""Melon Playlist Dataset: ``train.json``/``val.json``/``test.json`` (playlists) and
``song_meta.json`` (artists and genre baskets of every song)."""

from __future__ import annotations

from duet.pipelines.playlists.common import (
    Collector,
    Entry,
    Parsed,
    drop,
    load_json,
    origin,
    strings,
)

GENRE_BASKETS = ("detailed", "major", "both")
"""Which genre basket becomes ``track_meta.genres``: ``song_gn_dtl_gnr_basket`` (detailed),
``song_gn_gnr_basket`` (major) or both."""
PLAYLIST_FILES = ("train.json", "val.json", "test.json")
SONG_META = "song_meta.json"
PATTERNS = tuple(f"{n}{gz}" for n in (*PLAYLIST_FILES, SONG_META) for gz in ("", ".gz"))
"""Files of a folder given as input."""


def melon_genres(song: dict, which: str) -> list[str]:
    major = strings(song.get("song_gn_gnr_basket"))
    detailed = strings(song.get("song_gn_dtl_gnr_basket"))
    chosen = {"major": major, "detailed": detailed, "both": major + detailed}[which]
    return list(dict.fromkeys(chosen))


def parse_melon(data: bytes, source: str, genres: str = "detailed") -> Parsed:
    """Melon ``train/val/test.json`` (id, songs) or ``song_meta.json`` (id, artist_id_basket,
    song_gn_gnr_basket, song_gn_dtl_gnr_basket); song and playlist ids become strings."""
    name = source.rsplit("/", 1)[-1]
    out = Collector(source, "melon:" + name.split(".")[0])
    try:
        doc = load_json(data, source)
        if not isinstance(doc, list):
            raise ValueError("expected a JSON list of records")
    except (ValueError, TypeError, OSError, EOFError) as exc:
        out.fail(None, f"unreadable Melon file: {type(exc).__name__}: {str(exc)[:300]}")
        out.drops["unreadable_file/files"] += 1
        return out.result()
    is_meta = name.startswith("song_meta")
    for number, item in enumerate(doc):
        record = origin(source, number)
        if not isinstance(item, dict) or "id" not in item:
            out.fail(record, "record without 'id'", "invalid_record")
            drop(out.drops, "invalid_record", 0, 0 if is_meta else 1)
            continue
        if is_meta:
            out.song(item["id"], record, strings(item.get("artist_id_basket")),
                     melon_genres(item, genres))  # fmt: skip
            continue
        songs = item.get("songs")
        songs = songs if isinstance(songs, list) else []
        tracks: list[Entry] = [(pos, s, [], []) for pos, s in enumerate(songs)]
        out.playlist(item["id"], record, tracks)
    return out.result()
