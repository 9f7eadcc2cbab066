"""Plain tables of playlist entries: Parquet, CSV or JSONL rows ``playlist_id, track_id[, pos]``."""

from __future__ import annotations

import pyarrow as pa

from duet import schemas
from duet.pipelines.playlists.common import Collector, Entry, Parsed, drop

PATTERNS = ("*.parquet", "*.csv", "*.csv.gz", "*.jsonl", "*.jsonl.gz", "*.ndjson")
"""Files of a folder given as input."""


def parse_table(data: bytes, source: str) -> Parsed:
    """Parquet/CSV/JSONL rows ``playlist_id, track_id[, pos]`` (rows of one playlist may span
    files; without ``pos`` the row order is the playlist order)."""
    out = Collector(source, "table")
    try:
        table = schemas.table_from_bytes(data, source, strings=("playlist_id", "track_id"))
        missing = {"playlist_id", "track_id"} - set(table.column_names)
        if missing:
            raise ValueError(f"no column(s) {sorted(missing)}; found {table.column_names}")
    except (pa.ArrowException, ValueError, OSError) as exc:
        out.fail(None, f"unreadable table: {type(exc).__name__}: {str(exc)[:300]}")
        out.drops["unreadable_file/files"] += 1
        return out.result()
    pids = table.column("playlist_id").to_pylist()
    tracks = table.column("track_id").to_pylist()
    pos = table.column("pos").to_pylist() if "pos" in table.column_names else list(range(len(pids)))
    rows: dict[object, list[Entry]] = {}
    for i, (p, t) in enumerate(zip(pids, tracks, strict=True)):
        if p is None:
            out.fail(f"{source} row {i}", "playlist_id is null", "invalid_playlist_id")
            drop(out.drops, "invalid_playlist_id", 1)
            continue
        rows.setdefault(p, []).append((pos[i] if isinstance(pos[i], int) else i, t, [], []))
    for p, entries in rows.items():
        out.playlist(p, "", entries)  # one origin: rows with the same id form one playlist
    return out.result()
