"""Every published table of a dataset root in one call, as a ``pyarrow.Table``.

Each function reads exactly the files the table's ``_SUCCESS`` marker lists (never a file a
failed or running job left beside them), validates them against the schema in
``duet.schemas`` and raises ``duet.publish.NotPublished`` — naming the command that makes the
table — when it is not published. ``root`` may be a local path, ``s3://`` or ``gs://``.

Tables convert with ``.to_pandas()``; the same folders also read directly in pandas, DuckDB or
Spark, because a finished folder holds one generation (see docs/dataset-layout.md).

Example::

    from duet import datasets

    pairs = datasets.open_pairs("data/", "playlist_co", epoch=0)   # the LATEST run
    topk = datasets.open_topk("data/").to_pandas()
"""

from __future__ import annotations

import pyarrow as pa

from duet import layout, publish, readers, schemas, storage
from duet.pipelines.pairs import runs as pair_runs


def open_index(root: str) -> pa.Table:
    """The audio index: one row per (track, stream) member of the shards (``duet shards`` or
    ``duet features import``); columns in ``schemas.AUDIO_INDEX``."""
    return readers.read_published(layout.at(root, layout.INDEX), schemas.AUDIO_INDEX,
                                  "duet shards")  # fmt: skip


def open_failures(root: str) -> pa.Table:
    """Tracks the shards job could not use, with the stage and the reason."""
    return readers.read_published(layout.at(root, layout.FAILURES), schemas.FAILURES,
                                  "duet shards")  # fmt: skip


def open_playlists(root: str) -> pa.Table:
    """``playlist_id``, ``track_ids`` (in playlist order), and the playlist's metadata."""
    return readers.read_published(layout.at(root, layout.PLAYLISTS), schemas.PLAYLISTS,
                                  "duet playlists")  # fmt: skip


def open_track_meta(root: str) -> pa.Table:
    """Per-track metadata gathered from the playlists (artist, album, genres)."""
    return readers.read_published(layout.at(root, layout.TRACK_META), schemas.TRACK_META,
                                  "duet playlists")  # fmt: skip


def open_topk(root: str, kind: str = "playlist") -> pa.Table:
    """The top-K co-occurring neighbours of each track (``kind="artist"``: of each artist's
    tracks grouped by artist), ``duet cooccurrence``."""
    if kind not in layout.COOC:
        raise ValueError(f"kind must be one of {', '.join(layout.COOC)}, not {kind!r}")
    folder = layout.at(root, layout.COOC[kind])
    return readers.read_published(storage.join(folder, layout.TOPK), schemas.TOPK,
                                  "duet cooccurrence")  # fmt: skip


def open_vectors(root: str, model: str) -> pa.Table:
    """The vectors of one embedding model under ``emb/<model>/`` (``w2v``, ``cf-warp``,
    ``cf-bpr``, ``cf-als``, ``genre_w2v``): one fixed-size float32 vector per id."""
    uri = layout.at(root, layout.embedding(model))
    return readers.read_embeddings(uri, f"duet embeddings (model {model})")


def open_splits(root: str) -> pa.Table:
    """``track_id``, ``split`` (train / validation / test), ``duet splits``."""
    return readers.read_published(layout.at(root, layout.SPLITS), schemas.SPLITS,
                                  "duet splits")  # fmt: skip


def list_pair_runs(root: str) -> list[str]:
    """The complete pair runs of the root, oldest first."""
    return [run for run, _ in pair_runs.runs(root)]


def open_pairs(root: str, strategy: str, epoch: int | None = None,
               run: str | None = None) -> pa.Table:  # fmt: skip
    """One strategy's pair manifest(s) of a complete run (default: the run ``pairs/LATEST``
    names): one epoch, or every epoch of the run when ``epoch`` is None (the ``epoch`` column
    tells them apart); columns in ``schemas.PAIRS``.

    Raises:
        NotPublished: no such run, or the run has no manifest for that strategy or epoch.
    """
    run, body = pair_runs.read_run(root, run)
    recorded = _epochs(body, strategy)
    if not recorded:
        raise publish.NotPublished(f"pair run {run} of {root} has no {strategy} manifest "
                                   f"(run duet pairs --strategies {strategy})")  # fmt: skip
    if epoch is not None and epoch not in recorded:
        raise publish.NotPublished(f"pair run {run} of {root} has no {strategy} manifest for "
                                   f"epoch {epoch} (it has epochs {recorded[0]}-{recorded[-1]})")  # fmt: skip
    epochs = [epoch] if epoch is not None else recorded
    parts = [layout.at(root, pair_runs.manifest(run, body, strategy, e)) for e in epochs]
    return schemas.read_parts(parts, schemas.PAIRS)


def _epochs(body: dict, strategy: str) -> list[int]:
    """The epochs a run's marker records for ``strategy`` (its per-epoch statistics)."""
    return sorted(int(e) for e in (body.get("stats") or {}).get(strategy, {}))
