"""What every table trainer shares: reading playlists (optionally one split only), writing
vector tables, the sidecar.

Word2Vec, LightFM, implicit and the splitter are single-process trainers, run as one Beam step
(:func:`duet.pipelines.beam_io.one_step`): the step gives them the same runners and filesystems
(local, ``s3://``, ``gs://``) as every other job; on Dataflow the step runs on one worker, so
size its machine type to the table (see the README).
"""

from __future__ import annotations

import time
from importlib import metadata
from typing import Any, NotRequired

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from duet import __version__, layout, publish, readers, schemas
from duet.errors import DuetError

FORMAT_VERSION = 2
"""2: tables stored under tagged names listed in the folder's ``_SUCCESS`` (duet.publish)."""
PLAYLISTS_BY = "duet playlists"
SPLITS_BY = "duet splits"


class TableSummary(layout.Summary[dict[str, int]]):
    """The ``_SUCCESS`` sidecar of an embedding or splits table; ``counts`` depend on the model."""

    model: str
    parameters: dict[str, Any]  # the same as config
    seed: int
    libraries: dict[str, str]
    vector_layout: NotRequired[str]  # CF: what the vector's values are
    dropped: NotRequired[dict[str, int]]  # tracks left without a vector, by reason


class EmbeddingInputError(DuetError, ValueError):
    """The input cannot produce embeddings (empty, no usable rows, unknown split)."""


class Diverged(DuetError):
    """A fit produced non-finite values: nothing is published."""

    def __init__(self, epoch: int, what: str, option: str):
        super().__init__(f"diverged at epoch {epoch}: non-finite {what}; lower {option}")


def require_inputs(*tables: tuple[str | None, str]) -> None:
    """Refuse a run before it touches its output when an input table (uri, command that makes
    it) is neither published nor the user's own file (:func:`duet.publish.input_uris`)."""
    for uri, made_by in tables:
        if uri is not None:
            publish.input_uris(uri, made_by)


def library_versions(*dists: str) -> dict[str, str]:
    versions = {"duet": __version__, "numpy": np.__version__}
    for dist in dists:
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[dist] = "not installed"
    return versions


def split_tracks(splits_uri: str | None, names: tuple[str, ...]) -> pa.Array:
    """Track ids assigned to any of ``names`` in a splits table."""
    if splits_uri is None:
        raise EmbeddingInputError(f"training on split(s) {list(names)} needs a splits table")
    unknown = set(names) - set(schemas.SPLIT_NAMES)
    if unknown:
        raise EmbeddingInputError(
            f"unknown split(s) {sorted(unknown)}; expected some of {list(schemas.SPLIT_NAMES)}"
        )
    table = readers.read_input(splits_uri, schemas.SPLITS, SPLITS_BY)
    keep = pc.is_in(table.column("split"), value_set=pa.array(list(names)))
    return table.filter(keep).column("track_id").combine_chunks()


def read_playlists(uri: str, keep: pa.Array | None = None) -> tuple[pa.LargeListArray, dict]:
    """The playlists' track lists (64-bit offsets: the MPD's ids alone are 2.4 GB), restricted
    to the tracks in ``keep`` when given.

    Restriction drops entries, and playlists left with fewer than two tracks; both are counted.
    """
    lists = readers.read_input(uri, schemas.PLAYLISTS, PLAYLISTS_BY).column("track_ids")
    lists = lists.cast(pa.large_list(pa.large_string())).combine_chunks()
    flat = pc.list_flatten(lists)
    counts = {"playlists_read": len(lists), "entries_read": len(flat),
              "tracks_read": len(pc.unique(flat))}  # fmt: skip
    if keep is not None:
        parents = pc.list_parent_indices(lists).to_numpy()
        mask = pc.is_in(flat, value_set=keep.cast(pa.large_string())).to_numpy(zero_copy_only=False)
        lengths = np.bincount(parents[mask], minlength=len(lists))
        offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        lists = pa.LargeListArray.from_arrays(pa.array(offsets), flat.filter(pa.array(mask)))
        long_enough = pa.array(lengths >= 2)
        counts["entries_outside_split"] = int((~mask).sum())
        counts["playlists_outside_split"] = int((lengths < 2).sum())
        lists = lists.filter(long_enough)
    counts["playlists_used"] = len(lists)
    counts["entries_used"] = len(pc.list_flatten(lists))
    if counts["entries_used"] == 0:
        raise EmbeddingInputError(f"{uri}: no playlist entries to train on")
    return lists, counts


def vectors_table(
    ids: list[str] | pa.Array, vectors: np.ndarray, key: str = "track_id"
) -> pa.Table:
    """An embedding table sorted by ``key`` (so identical models write identical files)."""
    ids = pa.array(ids, pa.string())
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    order = pc.sort_indices(ids).to_numpy()
    dim = vectors.shape[1]
    column = pa.FixedSizeListArray.from_arrays(pa.array(vectors[order].reshape(-1)), dim)
    return pa.table({key: ids.take(pa.array(order)), "vector": column})


def publish_tables(folder: str, tables: dict[str, tuple[pa.Table, pa.Schema]], sidecar: dict,
                   *, measures: dict[str, str], how: publish.Commit) -> dict:  # fmt: skip
    """Write each table (by logical name) as a new generation of ``folder`` and publish it with
    the sidecar as its ``_SUCCESS`` (:func:`duet.publish.commit`; ``measures`` feed the shrink
    guard)."""
    files: dict[str, dict] = {}
    for name, (table, schema) in tables.items():
        files |= publish.write(folder, name, schemas.to_parquet_bytes(table, schema))
    return publish.commit(folder, sidecar, files, measures=measures, how=how)


def sidecar(job: str, model: str, parameters: dict, seed: int, inputs: dict[str, str | None],
            counts: dict, libraries: dict, started: float, **extra) -> dict:  # fmt: skip
    """The ``_SUCCESS`` sidecar of a table (:func:`duet.layout.summary`): enough to reproduce it
    and to know its cost. ``job`` is the command (``embeddings``, ``splits``); ``inputs`` maps a
    role (``playlists``, ``splits``) to a URI, recorded with its fingerprint; ``parameters`` are
    the ``config`` (also kept under ``parameters``, the sidecar's own name for them)."""
    return layout.summary(
        job,
        format_version=FORMAT_VERSION,
        config=parameters,
        inputs={role: layout.input_of(uri) for role, uri in inputs.items() if uri is not None},
        counts=counts,
        wall_time_s=time.monotonic() - started,
        model=model,
        parameters=parameters,
        seed=seed,
        libraries=libraries,
        **extra,
    )
