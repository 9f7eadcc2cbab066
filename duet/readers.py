"""Reading published tables: exactly the files a folder's ``_SUCCESS`` marker lists (or the
user's own file where a command takes one), validated against the schemas in ``duet.schemas``.

Here rather than in ``duet.schemas`` so that the marker logic (``duet.publish``) and the
schemas stay independent of each other."""

from __future__ import annotations

import pyarrow as pa

from duet import publish, schemas


def read_published(uri: str, schema: pa.Schema, made_by: str) -> pa.Table:
    """A published table (``playlists.parquet``, ``cooc/topk.parquet``, a dataset root's
    ``index``): exactly the files its ``_SUCCESS`` lists, validated; NotPublished (naming
    ``made_by``, the command that makes it) when it has no readable marker."""
    return schemas.read_parts(publish.table_uris(uri, made_by), schema)


def read_input(uri: str, schema: pa.Schema, made_by: str) -> pa.Table:
    """A table a command takes as an argument: a published table through its marker, or the
    user's own file (see :func:`duet.publish.input_uris`), validated."""
    return schemas.read_parts(publish.input_uris(uri, made_by), schema)


def track_keyed(table: pa.Table) -> pa.Table:
    """A track-vector table keyed by ``track_id``: tables written before duet 0.x named the
    key ``id`` (and users' own files may), read under the current name."""
    names = table.column_names
    if "id" in names and "track_id" not in names:
        return table.rename_columns(["track_id" if n == "id" else n for n in names])
    return table


def read_embeddings(uri: str, made_by: str, *, users_own: bool = False) -> pa.Table:
    """A published track-vector table (any vector size; the key column ``track_id``, or
    ``id`` as older tables name it), validated; with ``users_own``, also a
    file that no duet folder governs (``duet embed``'s output, see
    :func:`duet.publish.input_uris`)."""
    parts = (publish.input_uris if users_own else publish.table_uris)(uri, made_by)
    tables = [track_keyed(schemas.read_parquet(p)) for p in parts]
    schema = schemas.embeddings_schema(schemas.vector_dim(tables[0]))
    return pa.concat_tables(
        [schemas.conform(t, schema, what=p) for t, p in zip(tables, parts, strict=True)]
    )
