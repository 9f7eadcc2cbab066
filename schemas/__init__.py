"""Arrow schemas of every duet table, declared once, validated on write and on read."""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable

import pyarrow as pa
import pyarrow.parquet as pq

from duet import storage
from duet.errors import DuetError

TRACK_MANIFEST = pa.schema(
    [
        pa.field("track_id", pa.string(), nullable=False),
        pa.field("audio_uri", pa.string(), nullable=False),
        pa.field("artist_ids", pa.list_(pa.string())),
        pa.field("genres", pa.list_(pa.string())),
        pa.field("split", pa.string()),
    ]
)
"""Input of the shards job. Only ``track_id`` and ``audio_uri`` are required."""

MAX_ID_BYTES = 1024


def id_text(value: object) -> str | None:
    """The one rule for an id read from an input record (a track, song or playlist id): a
    string as it is; an integer (not a bool) in decimal, the text the CSV reader gives an
    integer column; None for anything else (null, bool, float, object, list), which is no id
    — never ``"None"``, ``"True"`` or ``"3.5"``. The text is then checked by
    :func:`track_id_problem`."""
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return None


def id_type_problem(value: object, what: str = "track_id") -> str:
    """Why :func:`id_text` refuses ``value`` (one line, for failure rows)."""
    return f"{what} must be a string or an integer, got {type(value).__name__} {str(value)[:40]!r}"


def id_problem(value: object, what: str = "track_id") -> str | None:
    """Why ``value`` read from an input record is not an id (its type by :func:`id_text`, its
    text by :func:`track_id_problem`), or None."""
    text = id_text(value)
    return id_type_problem(value, what) if text is None else track_id_problem(text)


def track_id_problem(value: object) -> str | None:
    """Why ``value`` cannot be a track id, or None. Path-like ids (``../x``) are fine: ids
    never become paths. Control characters (NUL included) and ids over 1 kB are refused."""
    if not isinstance(value, str):
        return f"track_id must be a string, got {type(value).__name__}"
    if not value:
        return "track_id is empty"
    try:
        encoded = value.encode("utf-8")
    except UnicodeEncodeError:
        return "track_id is not valid unicode (lone surrogate)"
    if len(encoded) > MAX_ID_BYTES:
        return f"track_id is {len(encoded)} bytes long (limit {MAX_ID_BYTES})"
    if any(unicodedata.category(ch) == "Cc" for ch in value):
        return "track_id contains control characters (e.g. NUL)"
    return None


class SchemaError(DuetError, ValueError):
    """A table does not match its declared schema."""


def is_id_type(kind: pa.DataType) -> bool:
    """Ids stored as ``kind`` are read: any integer or string type, dictionary-encoded or not."""
    kind = kind.value_type if pa.types.is_dictionary(kind) else kind
    return pa.types.is_integer(kind) or pa.types.is_string(kind) or pa.types.is_large_string(kind)


def id_strings(column: pa.Array | pa.ChunkedArray) -> pa.ChunkedArray:
    """The id rule (:func:`id_text`) for a column, in every table reader (playlists, manifests,
    labels, splits, published tables): ids of any integer or string Arrow type become the
    strings the CSV reader makes (``7`` → ``"7"``), so int64 ids written by pandas mean what the
    same rows as CSV mean; nulls stay null. Other types (float, bool, ...) raise SchemaError."""
    column = column if isinstance(column, pa.ChunkedArray) else pa.chunked_array([column])
    if not is_id_type(column.type):
        raise SchemaError(f"ids must be integers or strings, not {column.type}")
    if pa.types.is_dictionary(column.type):
        column = column.cast(column.type.value_type)
    return column if column.type.equals(pa.string()) else column.cast(pa.string())


def ids_as_strings(table: pa.Table, columns: Iterable[str]) -> pa.Table:
    """``table`` with those of ``columns`` it has that are of an id type as strings
    (:func:`id_strings`); other types are left for the caller to report."""
    for name in columns:
        if name in table.column_names and is_id_type(table.schema.field(name).type):
            where = table.column_names.index(name)
            table = table.set_column(where, name, id_strings(table.column(where)))
    return table


AUDIO_INDEX = pa.schema(
    [
        pa.field("track_id", pa.string(), nullable=False),
        pa.field("stream", pa.string(), nullable=False),
        pa.field("shard", pa.string(), nullable=False),
        pa.field("member", pa.string(), nullable=False),
        pa.field("offset", pa.int64(), nullable=False),
        pa.field("size", pa.int64(), nullable=False),
        pa.field("payload_offset", pa.int32(), nullable=False),
        pa.field("format", pa.string(), nullable=False),
        pa.field("dtype", pa.string(), nullable=False),
        pa.field("sample_rate", pa.int32(), nullable=False),
        pa.field("profile", pa.string()),
        pa.field("samples", pa.int64()),
        pa.field("frames", pa.int64()),
        pa.field("n_mels", pa.int32()),
        pa.field("duration", pa.float64(), nullable=False),
        pa.field("sha256", pa.string(), nullable=False),
        pa.field("split", pa.string()),
        pa.field("decoder", pa.string()),
        pa.field("source_duration", pa.float64()),
        pa.field("declared_duration", pa.float64()),
        pa.field("length_check", pa.string()),
        pa.field("decode_note", pa.string()),
        pa.field("clipped", pa.int64()),
        pa.field("gain", pa.float64()),
        pa.field("block_size", pa.int32()),
        pa.field("block_digests", pa.binary()),
    ]
)
"""One row per (track, stream). ``shard`` is relative to the dataset root, so a published
folder can be copied between disk and buckets; member data is ``[offset, offset + size)``
and, for npy, the array payload starts ``payload_offset`` bytes in.

How the track's source was read (the same on each of its rows; null in indexes written
before these columns existed): ``decoder`` that made the samples (name and version);
``source_duration`` decoded seconds of the whole source; ``declared_duration`` seconds the
file's headers declare (null: not declared in a form duet reads); ``length_check`` ``ok`` /
``short`` (cut, or no decoder finds all it declares) / ``long`` (more than declared), null
when nothing is declared; ``decode_note`` why a second decoder was used or what does not
match; ``clipped`` source samples beyond full scale; ``gain`` the factor every stream was
scaled by so that none is clipped (1.0: untouched).

Integrity of crops (npy members; null in indexes written before these columns existed):
``block_digests`` the XXH3-64 of every ``block_size`` bytes of the array payload (the last
block may be shorter), packed little-endian uint64, so a reader verifies a crop by reading and
checking only the blocks it overlaps (:mod:`duet.index`); ``sha256`` covers the whole member."""

FAILURES = pa.schema(
    [
        pa.field("track_id", pa.string()),
        pa.field("audio_uri", pa.string()),
        pa.field("stage", pa.string(), nullable=False),
        pa.field("error", pa.string(), nullable=False),
    ]
)
"""Dead letters: every input row is either in the index or here."""

PLAYLISTS = pa.schema(
    [
        pa.field("playlist_id", pa.string(), nullable=False),
        pa.field("track_ids", pa.list_(pa.string()), nullable=False),
        pa.field("source", pa.string(), nullable=False),
    ]
)
"""Normalised playlists: ordered, each track at most once, at least two tracks. Also used for
artist groups (``source`` = "artist", ``playlist_id`` = the artist id)."""

TRACK_META = pa.schema(
    [
        pa.field("track_id", pa.string(), nullable=False),
        pa.field("artist_ids", pa.list_(pa.string()), nullable=False),
        pa.field("genres", pa.list_(pa.string()), nullable=False),
    ]
)
"""Per-track metadata from the playlist sources (artists, genres), one row per track."""

PLAYLIST_DROPS = pa.schema(
    [
        pa.field("reason", pa.string(), nullable=False),
        pa.field("entries", pa.int64(), nullable=False),
        pa.field("tracks", pa.int64(), nullable=False),
        pa.field("playlists", pa.int64(), nullable=False),
    ]
)
"""What normalisation removed, per reason: entries (playlist positions), distinct tracks and
whole playlists. Nothing is dropped without a row here."""

SOURCE_FAILURES = pa.schema(
    [
        pa.field("source", pa.string(), nullable=False),
        pa.field("record", pa.string()),
        pa.field("error", pa.string(), nullable=False),
    ]
)
"""Input files or records that could not be read (file, record within it, reason)."""

TOPK = pa.schema(
    [
        pa.field("track_id", pa.string(), nullable=False),
        pa.field("rank", pa.int16(), nullable=False),
        pa.field("neighbor_id", pa.string(), nullable=False),
        pa.field("count", pa.int32(), nullable=False),
    ]
)
"""Top-K co-occurring neighbours per track; rank 0 is the strongest. Sorted by (track_id, rank)."""

COOCCURRENCE = pa.schema(
    [
        pa.field("track_id", pa.string(), nullable=False),
        pa.field("neighbor_id", pa.string(), nullable=False),
        pa.field("count", pa.int32(), nullable=False),
    ]
)
"""Full co-occurrence counts, each unordered pair once (``track_id < neighbor_id``)."""


GENRE_SLOTS = 10
"""Genre ids per track handed to the trainer (Ferraro et al.: up to 10 genres per song)."""

GENRE_PAD = -1
"""Value of unused genre slots."""


def embeddings_schema(dim: int, key: str = "track_id") -> pa.Schema:
    """Embedding tables: one fixed-size float32 vector per ``key`` (``track_id`` for track
    vectors: playlist Word2Vec, CF factors, ``duet embed``; ``id`` for genre vectors)."""
    return pa.schema(
        [
            pa.field(key, pa.string(), nullable=False),
            pa.field("vector", pa.list_(pa.float32(), dim), nullable=False),
        ]
    )


def genre_vectors_schema(dim: int) -> pa.Schema:
    """Genre Word2Vec vectors; ``index`` is what TRACK_GENRES.genre_ids refer to."""
    return pa.schema(
        [pa.field("index", pa.int32(), nullable=False), *embeddings_schema(dim, key="id")]
    )


TRACK_GENRES = pa.schema(
    [
        pa.field("track_id", pa.string(), nullable=False),
        pa.field("genre_ids", pa.list_(pa.int32(), GENRE_SLOTS), nullable=False),
        pa.field("n_genres", pa.int8(), nullable=False),
    ]
)
"""Per track, the first ``n_genres`` slots of ``genre_ids`` index the genre vectors table; the
rest hold GENRE_PAD."""

SPLITS = pa.schema(
    [
        pa.field("track_id", pa.string(), nullable=False),
        pa.field("split", pa.string(), nullable=False),
    ]
)
"""Train/val/test assignment of each track; ``split`` is one of SPLIT_NAMES."""

SPLIT_NAMES = ("train", "val", "test")


def vector_dim(table: pa.Table) -> int:
    """The size of the ``vector`` column of an embedding table, or SchemaError."""
    if "vector" not in table.column_names:
        raise SchemaError("embedding table: required column 'vector' is missing")
    kind = table.schema.field("vector").type
    if pa.types.is_fixed_size_list(kind):
        return kind.list_size
    raise SchemaError(
        f"embedding table: column 'vector' has type {kind}, expected a fixed-size list"
    )


PAIRS = pa.schema(
    [
        pa.field("epoch", pa.int32(), nullable=False),
        pa.field("strategy", pa.string(), nullable=False),
        pa.field("anchor_id", pa.string(), nullable=False),
        pa.field("positive_id", pa.string()),
        pa.field("stream", pa.string()),
        pa.field("anchor_offset", pa.int64()),
        pa.field("positive_offset", pa.int64()),
        pa.field("length", pa.int32()),
    ]
)
"""One epoch's examples of one strategy, in the order the trainer should visit them.
``positive_id`` is null where the positive is an embedding of the anchor (w2v, cf,
multimodal) or another crop of it (self, adjacent, ...). Crop strategies give ``stream`` (an
index stream, e.g. ``wav-22050`` or ``mel-choi``) and offsets and ``length`` in its units
(samples or frames); ``positive_offset`` is null for single-window strategies (cpc)."""


def conform(table: pa.Table, schema: pa.Schema, *, what: str = "table") -> pa.Table:
    """Return ``table`` with exactly ``schema``'s columns and types, or raise SchemaError.

    Missing nullable columns are added as nulls; missing required columns, unknown types and
    nulls in required columns are errors naming the column.
    """
    columns = []
    for field in schema:
        if field.name in table.column_names:
            column = table.column(field.name)
            if pa.types.is_string(field.type) and is_id_type(column.type):
                column = id_strings(column)
            elif pa.types.is_string(field.type) and not pa.types.is_null(column.type):
                raise SchemaError(
                    f"{what}: column {field.name!r} has type {column.type}, expected strings "
                    "(integers are read as their decimal strings)"
                )
            if not column.type.equals(field.type):
                try:
                    column = column.cast(field.type)
                except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
                    raise SchemaError(
                        f"{what}: column {field.name!r} has type {column.type}, expected {field.type}"
                    ) from exc
        elif field.nullable:
            column = pa.nulls(table.num_rows, field.type)
        else:
            raise SchemaError(f"{what}: required column {field.name!r} is missing")
        if not field.nullable and column.null_count:
            raise SchemaError(
                f"{what}: column {field.name!r} has {column.null_count} null value(s)"
            )
        columns.append(column)
    return pa.Table.from_arrays(columns, schema=schema)


def from_rows(rows: list[dict], schema: pa.Schema) -> pa.Table:
    return conform(pa.Table.from_pylist(rows, schema=schema), schema)


def to_parquet_bytes(table: pa.Table, schema: pa.Schema) -> bytes:
    # Arrow-native buffers, never Python file objects: Arrow threads calling back into
    # Python can abort the interpreter at exit (apache/arrow#34314, #50482).
    sink = pa.BufferOutputStream()
    pq.write_table(conform(table, schema), sink, compression="zstd")
    return sink.getvalue().to_pybytes()


def arrow_reader(data: bytes) -> pa.BufferReader:
    """A reader over an Arrow-owned copy of ``data``.

    A reader over Python ``bytes`` makes Arrow's pool threads take the GIL when they drop
    it; at interpreter exit that aborts the process (apache/arrow#34314).
    """
    sink = pa.BufferOutputStream()
    sink.write(data)
    return pa.BufferReader(sink.getvalue())


def parquet_from_bytes(data: bytes) -> pa.Table:
    """A Parquet file as a table; list columns over 2 GB come back as several chunks."""
    f = pq.ParquetFile(arrow_reader(data))
    try:
        return f.read()
    except pa.ArrowNotImplementedError:  # nested column too large for one chunk
        return pa.Table.from_batches(list(f.iter_batches()), schema=f.schema_arrow)


def table_from_bytes(data: bytes, name: str, strings: tuple[str, ...] = ()) -> pa.Table:
    """A Parquet, JSONL or CSV table (by ``name``'s suffix, ``.gz`` allowed for text). The id
    columns named in ``strings`` are read as strings: CSV text as written (ids like "007" must
    not become numbers), integer ids of Parquet and JSONL by :func:`id_strings`."""
    import pyarrow.csv as pacsv
    import pyarrow.json as pajson

    name = name.lower().removesuffix(".gz")
    if name.endswith(".parquet"):
        return ids_as_strings(parquet_from_bytes(data), strings)
    if name.endswith((".jsonl", ".json", ".ndjson")):
        return ids_as_strings(pajson.read_json(arrow_reader(data)), strings)
    types = {column: pa.string() for column in strings}
    return pacsv.read_csv(
        arrow_reader(data), convert_options=pacsv.ConvertOptions(column_types=types)
    )


def write_table(table: pa.Table, uri: str, schema: pa.Schema) -> None:
    """Validate ``table`` against ``schema`` and write it as Parquet to ``uri``."""
    storage.write_bytes(uri, to_parquet_bytes(table, schema))


def stream_parquet(path: str, schema: pa.Schema, tables: Iterable[pa.Table]) -> int:
    """Validate and write ``tables`` as one Parquet file at the local ``path``, one at a time
    (each becomes row groups as it arrives); returns the rows."""
    rows = 0
    with pq.ParquetWriter(path, schema, compression="zstd") as writer:
        for table in tables:
            writer.write_table(conform(table, schema))
            rows += table.num_rows
    return rows


def write_tables(uri: str, schema: pa.Schema, tables: Iterable[pa.Table]) -> int:
    """Validate and write ``tables`` as one Parquet file at ``uri``, one at a time (each becomes
    row groups as it arrives), so memory holds one table, never the file; returns the rows.

    Written to a local temporary file first (beside ``uri`` when local, then renamed), and
    copied to an object store in chunks."""
    import os
    import shutil
    import tempfile

    local = None if storage.is_remote(uri) else storage.local_path(uri)
    folder = os.path.dirname(os.path.abspath(local)) if local else None
    if folder:
        os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".parquet", dir=folder)
    os.close(fd)
    try:
        rows = stream_parquet(tmp, schema, tables)
        if local:
            os.replace(tmp, local)
        else:
            with open(tmp, "rb") as src, storage.create(uri) as dst:
                shutil.copyfileobj(src, dst, 64 << 20)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return rows


def table_parts(uri: str) -> list[str]:
    """The Parquet files of a table: ``uri`` itself, or the ``*.parquet`` parts of a folder.

    A folder may itself be named ``*.parquet`` (Spark-style); files whose name starts with
    ``_`` or ``.`` (markers) are not parts.
    """
    return [
        u for u in storage.list_files(uri)
        if u.endswith(".parquet") and not u.rsplit("/", 1)[-1].startswith(("_", "."))
    ] or [uri]  # fmt: skip


def read_parquet(uri: str) -> pa.Table:
    """One Parquet file as a table; a file that is not Parquet (a CSV, a damaged or empty
    file) is a SchemaError naming it."""
    data = storage.read_bytes(uri)
    try:
        return parquet_from_bytes(data)
    except pa.ArrowInvalid as exc:
        kind = ("empty" if not data else
                "text (CSV?)" if data[:64].isascii() and b"\0" not in data[:512] else "not Parquet")  # fmt: skip
        raise SchemaError(f"{uri} must be a Parquet table but is {kind}: "
                          f"{str(exc).splitlines()[0]} (write it with pyarrow.parquet or "
                          "pandas.DataFrame.to_parquet)") from None  # fmt: skip


def read_parts(parts: list[str], schema: pa.Schema) -> pa.Table:
    """Read Parquet files (URIs) as one table validated against ``schema``."""
    tables = [conform(read_parquet(p), schema, what=p) for p in parts]
    return pa.concat_tables(tables) if tables else schema.empty_table()


def read_table(uri: str, schema: pa.Schema) -> pa.Table:
    """Read a Parquet file, or every part of a folder (see table_parts), and validate it.

    For files that are not duet's own tables (a user's manifest, an exclude list); a table a
    duet job publishes is read with :func:`duet.readers.read_published`, through its marker."""
    return read_parts(table_parts(uri), schema)
