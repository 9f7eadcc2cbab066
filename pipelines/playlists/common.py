"""What every playlist format shares: the parsed records of one input unit, the collector that
builds them with the bad-input bookkeeping, and the drop counts.

A format module (``mpd``, ``melon``, ``table``) turns one unit (a file, or a run of a big
table's rows) into :class:`Parsed`, through a :class:`Collector` or, for clean inputs, through
a columnar fast path with the same result; the job partitions the records by playlist and
assembles each part (``assemble``).
"""

from __future__ import annotations

import gzip
import json
import math
from collections import Counter
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from duet import schemas
from duet.schemas import MAX_ID_BYTES, id_problem, id_text, id_type_problem

Entry = tuple[object, object, list[str], list[str]]
"""One playlist entry as a format reads it: (position, track id as found, artist ids, genres);
the collector applies the id and order rules (``schemas.id_text``, :func:`position`)."""
MAX_EXAMPLES = 20  # failure rows listed per file and reason; all are counted
POSITIONS = (-(2**62), 2**62)
"""Entry positions kept: a ``pos`` outside is a failure row (positions are compared as float64,
exact for whole numbers up to 2⁵³)."""
ORIGIN_DIGITS = 12


def origin(source: str, record: int) -> str:
    """The ``origin`` of record number ``record`` of ``source`` (``slice.json#000000000002``):
    zero-padded, so the string order the assembler sorts origins by is the record order — a
    playlist id used twice keeps its first record (#2 before #10)."""
    return f"{source}#{record:0{ORIGIN_DIGITS}d}"


CONTROL = r"[\x{0}-\x{1f}\x{7f}-\x{9f}]"
"""RE2 class of the Unicode control characters (category Cc) that track ids may not hold."""
RECORDS = pa.schema(
    [
        pa.field("playlist_id", pa.string(), nullable=False),
        pa.field("origin", pa.string(), nullable=False),
        pa.field("source", pa.string(), nullable=False),
        pa.field("pos", pa.list_(pa.float64()), nullable=False),
        pa.field("track_ids", pa.list_(pa.string()), nullable=False),
        pa.field("order", pa.int64(), nullable=False),
    ]
)
"""Shuffled between the parse and write steps: one row per playlist record with its valid
entries (``pos[i]``, null when the input gives none, and ``track_ids[i]``) in input order,
never empty. ``origin`` names the record, so one id used by two records is told apart from rows
of one playlist (table rows share origin ""); ``order`` is the input order of the record's
unit (:func:`unit_order`), which places rows of one playlist read from several files.

The order rule, the same for every format: a playlist's entries are sorted by position
(any numeric type, compared as numbers); entries without a position (null, NaN, not a number,
or no ``pos`` column) follow the positioned ones; ties and unpositioned entries keep the input
order — files in path order, rows in file order."""
UNIT_ROWS_BITS = 40
"""``order`` = file number << 40 | first row of the unit (files of up to 2⁴⁰ rows)."""


@dataclass
class Parsed:
    """What one input unit yields. Failures are dicts (source, record, error, reason), at most
    MAX_EXAMPLES per reason, in input order."""

    records: pa.Table
    meta: pa.Table
    failures: list[dict] = field(default_factory=list)
    drops: Counter = field(default_factory=Counter)  # "reason/entries|playlists|files" → n
    unmatched: pa.Array | None = None  # distinct ids without audio (when mapping)

    @property
    def entries(self) -> int:
        return len(pc.list_flatten(self.records.column("track_ids")))

    @property
    def unpositioned(self) -> int:
        """Entries without a position (they follow the positioned ones, see RECORDS)."""
        return pc.list_flatten(self.records.column("pos")).null_count


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
        self.cols: dict[str, list] = {"playlist_id": [], "origin": []}
        self.pos: list[float | None] = []
        self.tracks: list[str] = []
        self.sizes: list[int] = []
        self.meta: dict[str, tuple[list, list]] = {}
        self.failures: list[dict] = []
        self.drops: Counter = Counter()
        self._examples: Counter = Counter()

    def fail(self, record: str | None, error: str, reason: str | None = None) -> None:
        key = reason or error
        self._examples[key] += 1
        if self._examples[key] <= MAX_EXAMPLES:
            self.failures.append(
                {"source": self.source, "record": record, "error": error, "reason": key}
            )

    def playlist(self, playlist_id: object, origin: str, tracks: list[Entry]) -> None:
        """``tracks``: (pos, track_id, artist_ids, genres) tuples, in playlist order; ids follow
        :func:`duet.schemas.id_text`, positions must lie in POSITIONS."""
        pid = id_text(playlist_id)
        if pid is None:
            self.fail(origin, id_type_problem(playlist_id, "playlist id"), "invalid_playlist_id")
            drop(self.drops, "invalid_playlist_id", len(tracks), 1)
            return
        if not tracks:
            drop(self.drops, "empty_playlist", 0, 1)
            return
        kept = 0
        for number, (pos, raw, artists, genres) in enumerate(tracks):
            at = position(pos)
            record = f"{origin} pos {pos}" if pos is not None else f"{origin} entry {number}"
            if at is not None and not POSITIONS[0] <= at < POSITIONS[1]:
                self.fail(record, f"pos {pos} is out of range", "invalid_position")
                drop(self.drops, "invalid_position", 1)
                continue
            track, problem = id_text(raw), id_problem(raw)
            if problem is not None:
                self.fail(record, problem, "invalid_track_id")
                drop(self.drops, "invalid_track_id", 1)
                continue
            assert track is not None  # id_problem refuses every value id_text cannot read
            self.pos.append(at)
            self.tracks.append(track)
            kept += 1
            if track not in self.meta or (artists and not self.meta[track][0]):
                self.meta[track] = (artists, genres)
        if kept:
            self.cols["playlist_id"].append(pid)
            self.cols["origin"].append(origin)
            self.sizes.append(kept)

    def song(self, raw: object, origin: str, artists: list, genres: list) -> None:
        """A track's metadata record (Melon's ``song_meta``); its id follows
        :func:`duet.schemas.id_text`, a bad one is a failure row."""
        track, problem = id_text(raw), id_problem(raw)
        if problem is not None:
            self.fail(origin, problem, "invalid_track_id")
            self.drops["invalid_track_id/tracks"] += 1
            return
        assert track is not None  # id_problem refuses every value id_text cannot read
        self.meta[track] = (artists, genres)

    def result(self) -> Parsed:
        offsets = pa.array(
            np.concatenate([[0], np.cumsum(self.sizes, dtype=np.int64)]).astype(np.int32)
        )
        records = pa.table({
            "playlist_id": pa.array(self.cols["playlist_id"], pa.string()),
            "origin": pa.array(self.cols["origin"], pa.string()),
            "source": pa.array([self.label] * len(self.sizes), pa.string()),
            "pos": pa.ListArray.from_arrays(offsets, pa.array(self.pos, pa.float64())),
            "track_ids": pa.ListArray.from_arrays(offsets, pa.array(self.tracks, pa.string())),
            "order": pa.array(np.zeros(len(self.sizes), np.int64)),
        }, schema=RECORDS)  # fmt: skip
        ids = list(self.meta)
        meta = pa.table({"track_id": ids, "artist_ids": [self.meta[t][0] for t in ids],
                         "genres": [self.meta[t][1] for t in ids]}, schema=schemas.TRACK_META)  # fmt: skip
        return Parsed(records, meta, self.failures, self.drops)


def position(value: object) -> float | None:
    """An entry's position under the order rule (RECORDS): a finite number, else None."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        number = float(value)
        return number if math.isfinite(number) else None
    return None


def positions(column: pa.ChunkedArray | pa.Array) -> pa.Array:
    """A ``pos`` column of any numeric type as float64 positions (null where missing or NaN);
    ValueError for a column that is not numeric."""
    kind = column.type
    if not (pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_decimal(kind)
            or pa.types.is_null(kind)):  # fmt: skip
        raise ValueError(f"column 'pos' has type {kind}; positions must be numbers")
    values = pc.cast(column, pa.float64())
    values = values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values
    return pc.if_else(pc.is_finite(values), values, pa.scalar(None, pa.float64()))


def unit_order(file: int, first_row: int) -> int:
    """The ``order`` of every record of a unit: its file's number in path order, then its
    first row."""
    return (file << UNIT_ROWS_BITS) | first_row


def strings(values: object) -> list[str]:
    """The ids of a list (artists, genres) by :func:`duet.schemas.id_text`; others are left out."""
    if not isinstance(values, list):
        return []
    return [text for v in values if (text := id_text(v))]


def load_json(data: bytes, source: str):
    if source.endswith(".gz") or data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    return json.loads(data)


def cap_examples(failures: list[dict]) -> list[dict]:
    """At most MAX_EXAMPLES failures per (source, reason), the first ones in input order (a file
    read in several units lists as many examples as when read whole)."""
    seen: Counter = Counter()
    kept = []
    for f in failures:
        seen[f["source"], f.get("reason") or f["error"]] += 1
        if seen[f["source"], f.get("reason") or f["error"]] <= MAX_EXAMPLES:
            kept.append(f)
    return kept


def empty_lists(n: int) -> pa.ListArray:
    """``n`` empty ``list<string>`` values."""
    return pa.ListArray.from_arrays(pa.array(np.zeros(n + 1, np.int32)), pa.array([], pa.string()))


def clean_ids(ids: pa.Array) -> np.ndarray:
    """bool per id: a valid track id (``audio.manifest.track_id_problem`` finds nothing), in
    compiled code: not null, not empty, at most MAX_ID_BYTES of UTF-8, no control character."""
    length = pc.binary_length(ids)
    good = pc.and_(pc.greater(length, 0), pc.less_equal(length, MAX_ID_BYTES))
    good = pc.and_(good, pc.invert(pc.match_substring_regex(ids, CONTROL)))
    return good.fill_null(False).to_numpy(zero_copy_only=False)
