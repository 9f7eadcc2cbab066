"""What every playlist format shares: the parsed entries of one file, the collector that
builds them with the bad-input bookkeeping, and the drop counts.

A format module (``mpd``, ``melon``, ``table``) turns one file's bytes into :class:`Parsed`
through a :class:`Collector`; the job shuffles the entries by playlist and assembles them.
"""

from __future__ import annotations

import gzip
import json
from collections import Counter
from dataclasses import dataclass, field

import pyarrow as pa

from duet import schemas
from duet.schemas import track_id_problem

Entry = tuple[int, object, list[str], list[str]]
"""One playlist entry as a format reads it: (position, track id as found, artist ids, genres);
the collector checks the id."""
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


@dataclass
class Parsed:
    """What one input file yields."""

    entries: pa.Table
    meta: pa.Table
    failures: list[dict] = field(default_factory=list)
    drops: Counter = field(default_factory=Counter)  # "reason/entries|playlists|files" → n
    unmatched: pa.Array | None = None  # distinct ids without audio (when mapping)


def drop(drops: Counter, reason: str, entries: int = 0, playlists: int = 0) -> None:
    if entries:
        drops[f"{reason}/entries"] += entries
    if playlists:
        drops[f"{reason}/playlists"] += playlists


class Collector:
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

    def playlist(self, playlist_id: object, origin: str, tracks: list[Entry]) -> None:
        """``tracks``: (pos, track_id, artist_ids, genres) tuples, in playlist order."""
        if not isinstance(playlist_id, (str, int)) or isinstance(playlist_id, bool):
            self.fail(origin, f"playlist id must be a string or integer, got {type(playlist_id).__name__}",
                      "invalid_playlist_id")  # fmt: skip
            drop(self.drops, "invalid_playlist_id", len(tracks), 1)
            return
        pid = str(playlist_id)
        if not tracks:
            drop(self.drops, "empty_playlist", 0, 1)
            return
        for pos, track, artists, genres in tracks:
            problem = track_id_problem(track)
            if problem is not None or not isinstance(track, str):
                self.fail(f"{origin} pos {pos}", problem or "track_id must be a string",
                          "invalid_track_id")  # fmt: skip
                drop(self.drops, "invalid_track_id", 1)
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


def strings(values: object) -> list[str]:
    if not isinstance(values, list):
        return []
    return [
        str(v) for v in values if isinstance(v, (str, int)) and not isinstance(v, bool) and str(v)
    ]


def load_json(data: bytes, source: str):
    if source.endswith(".gz") or data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    return json.loads(data)
