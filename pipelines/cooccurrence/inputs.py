"""The co-occurrence job's input: a playlists (or track-meta) table cut into units of about a
given number of rows, from the Parquet footers of the files its marker lists (or of the
user's own file), and the reading of one unit."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq

from duet import publish, schemas, storage


def input_splits(uri: str, rows_per_chunk: int, made_by: str = "duet playlists",
                 column: str = "track_ids") -> list[tuple[str, tuple[int, ...]]]:  # fmt: skip
    """(file, row groups) units of about ``rows_per_chunk`` rows of a published table (from
    the Parquet footers of the parts its ``_SUCCESS`` lists) or of the user's own file
    (:func:`duet.publish.input_uris`)."""
    splits = []
    for part in publish.input_uris(uri, made_by):
        with storage.open_read(part) as f:
            try:
                parquet = pq.ParquetFile(f)
            except pa.ArrowInvalid:  # not Parquet: the one-line reason of the table readers
                schemas.read_parquet(part)
                raise
            meta = parquet.metadata
            if column not in parquet.schema_arrow.names:
                raise schemas.SchemaError(
                    f"{part}: required column {column!r} is missing (has "
                    f"{', '.join(parquet.schema_arrow.names)}; a table as duet playlists "
                    "writes it: run duet playlists --format table on a playlist_id, "
                    "track_id, pos table)"
                )
        group, rows = [], 0
        for g in range(meta.num_row_groups):
            group.append(g)
            rows += meta.row_group(g).num_rows
            if rows >= rows_per_chunk:
                splits.append((part, tuple(group)))
                group, rows = [], 0
        if group or not splits or splits[-1][0] != part:
            splits.append((part, tuple(group)))
    return splits


def read_split(split: tuple[str, tuple[int, ...]], columns: list[str]) -> pa.Table:
    part, groups = split
    with pq.ParquetFile(schemas.arrow_reader(storage.read_bytes(part))) as f:
        return f.read_row_groups(list(groups), columns=columns, use_threads=False)
