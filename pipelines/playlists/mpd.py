"""Million Playlist Dataset slices (``mpd.slice.*.json``, optionally gzipped)."""

from __future__ import annotations

from duet.pipelines.playlists.common import Collector, Entry, Parsed, drop, load_json, strings

PATTERNS = ("*.json", "*.json.gz")
"""Files of a folder given as input."""


def parse_mpd(data: bytes, source: str) -> Parsed:
    """One ``mpd.slice.*.json`` (optionally gzipped): track ids are ``track_uri``s, artists
    ``artist_uri``s (``artist_name`` when a slice has no uri); ``pos`` falls back to order."""
    out = Collector(source, "mpd")
    try:
        doc = load_json(data, source)
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
            drop(out.drops, "invalid_record", 0, 1)
            continue
        tracks: list[Entry] = []
        for order, entry in enumerate(item.get("tracks") or []):
            entry = entry if isinstance(entry, dict) else {}
            pos = entry.get("pos")
            pos = pos if isinstance(pos, int) and not isinstance(pos, bool) else order
            artist = entry.get("artist_uri") or entry.get("artist_name")
            tracks.append((pos, entry.get("track_uri"), strings([artist]), []))
        out.playlist(item["pid"], origin, tracks)
    return out.result()
