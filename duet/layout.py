"""Every path of a dataset root, named once, and the one shape of every job's ``_SUCCESS``.

A dataset root (a local folder, ``gs://…`` or ``s3://…``) holds::

    _SUCCESS                                       the shards job's summary: the root is published
    shards/<stream>/shard-NNNNN.tar                WebDataset shards, one set per stream
    index/part-NNNNN.parquet                       the audio index (one row per track and stream)
    failures/part-NNNNN.parquet                    tracks that failed, per shard
    failures/manifest.parquet                      manifest rows that failed
    reports/part-NNNNN.json                        per-shard reports (what a re-run may keep)
    stats/mel-<profile>.json                       per-band mean and std of a mel profile
    playlists.parquet/part-NNNNN.parquet           normalised playlists        (+ _SUCCESS)
    track_meta.parquet/part-NNNNN.parquet          artists and genres per track (+ _SUCCESS)
    playlists_dropped.parquet                      what normalisation dropped, by reason
    playlists_failures.parquet                     unreadable files and records
    cooc/topk.parquet/part-NNNNN.parquet           top-K neighbours             (cooc/_SUCCESS)
    cooc/counts.parquet/part-NNNNN.parquet         every pair (with --counts)
    cooc_artist/…                                  the same over artists (+ groups.parquet/)
    emb/<model>/vectors.parquet                    w2v, cf-warp, cf-bpr, cf-als (+ _SUCCESS)
    emb/genre_w2v/genres.parquet                   genre Word2Vec vectors
    emb/genre_w2v/track_genres.parquet             genre ids per track
    splits.parquet/part-00000.parquet              train/val/test per track     (+ _SUCCESS)
    pairs/<run>/<strategy>/epoch=NNNN/part-00000.parquet   one epoch's pairs (+ _SUCCESS)
    pairs/<run>/_SUCCESS                           the run's summary
    pairs/LATEST                                   the newest complete run's id
    nightly.json                                   keys of the nightly stages that last ran

Paths here are relative to the root, with ``/`` separators; :func:`at` joins one to a root
for :mod:`duet.storage`, and the trainer's store reads them as they are.

Every published folder's ``_SUCCESS`` is a :func:`summary`: ``job``, ``code_version``,
``format_version``, ``config``, ``inputs`` (``{name: {"uri", "fingerprint"}}``), ``counts``,
``wall_time_s`` where the job knows it (the single-process table jobs; the Beam jobs leave it
out so that identical runs write identical markers), then the job's own fields.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Generic, NotRequired, TypedDict, TypeVar, cast

from duet import __version__, publish, storage

SUCCESS = publish.SUCCESS

# ---------------------------------------------------------------- audio shards (duet shards)

SHARDS = "shards"
INDEX = "index"
FAILURES = "failures"
REPORTS = "reports"
STATS = "stats"
SHARD_FOLDERS = (SHARDS, INDEX, FAILURES, REPORTS, STATS)
"""Every folder the shards job owns (files there that a run did not write are stale)."""
MANIFEST_FAILURES = f"{FAILURES}/manifest.parquet"


def shard(stream: str, number: int) -> str:
    """One tar shard of a stream, as stored in the index's ``shard`` column."""
    return f"{SHARDS}/{stream}/shard-{number:05d}.tar"


def part_name(number: int, ext: str = "parquet") -> str:
    """The file name of part ``number``: ``part-NNNNN.<ext>``."""
    return f"part-{number:05d}.{ext}"


def part(folder: str, number: int, ext: str = "parquet") -> str:
    """Part ``number`` of a table (or report) folder: ``<folder>/part-NNNNN.<ext>``."""
    return f"{folder}/{part_name(number, ext)}"


def stats(stream: str) -> str:
    """The band statistics of a mel stream (``mel-<profile>``)."""
    return f"{STATS}/{stream}.json"


def mel_stats(profile: str) -> str:
    """The band statistics of a mel profile."""
    return stats(f"mel-{profile}")


# ---------------------------------------------------------------- tables

PLAYLISTS = "playlists.parquet"
TRACK_META = "track_meta.parquet"
PLAYLISTS_DROPPED = "playlists_dropped.parquet"
PLAYLISTS_FAILURES = "playlists_failures.parquet"
COOC = {"playlist": "cooc", "artist": "cooc_artist"}
"""The co-occurrence folder of each grouping."""
TOPK = "topk.parquet"
COUNTS = "counts.parquet"
GROUPS = "groups.parquet"
EMB = "emb"
VECTORS = "vectors.parquet"
GENRE_W2V = "genre_w2v"
GENRES = "genres.parquet"
TRACK_GENRES = "track_genres.parquet"
SPLITS = "splits.parquet"
SPLITS_PART = part(SPLITS, 0)


def embedding(model: str, table: str = VECTORS) -> str:
    """A table of ``emb/<model>/`` (``w2v``, ``cf-warp``, ``genre_w2v``, …)."""
    return f"{EMB}/{model}/{table}"


def embedding_folder(model: str) -> str:
    return f"{EMB}/{model}"


def cf_model(model: str) -> str:
    """The folder name of a CF model's factors: ``cf-warp``, ``cf-bpr``, ``cf-als``."""
    return f"cf-{model}"


# ---------------------------------------------------------------- pair manifests

PAIRS = "pairs"
LATEST = f"{PAIRS}/LATEST"
PAIRS_PART = part_name(0)


def pair_run(run: str) -> str:
    return f"{PAIRS}/{run}"


def pair_epoch(run: str, strategy: str, epoch: int) -> str:
    """The folder of one (strategy, epoch) of a run: ``pairs/<run>/<strategy>/epoch=NNNN``."""
    return f"{PAIRS}/{run}/{strategy}/epoch={epoch:04d}"


def pair_manifest(run: str, strategy: str, epoch: int) -> str:
    return f"{pair_epoch(run, strategy, epoch)}/{PAIRS_PART}"


NIGHTLY = "nightly.json"


def marker(folder: str = "") -> str:
    """The ``_SUCCESS`` marker of a folder (of the root itself by default)."""
    return f"{folder}/{SUCCESS}" if folder else SUCCESS


def at(root: str, relative: str) -> str:
    """``relative`` under ``root``, as a URI for :mod:`duet.storage`."""
    return storage.join(root, *relative.split("/"))


# ---------------------------------------------------------------- _SUCCESS summaries


class Input(TypedDict):
    """One input of a job: where it was read from and what it held (see
    :func:`duet.publish.input_fingerprint`)."""

    uri: str | list[str]
    fingerprint: str


Counts = TypeVar("Counts", bound=Mapping[str, object])


class Summary(TypedDict, Generic[Counts]):
    """The fields every ``_SUCCESS`` summary has, with the job's own ``counts``; each job's
    summary (``ShardsSummary``, ``PairsSummary``, ...) adds its own fields."""

    job: str
    code_version: str
    format_version: int
    config: dict[str, Any]
    inputs: dict[str, Input]
    counts: Counts
    wall_time_s: NotRequired[float]


S = TypeVar("S", bound=Mapping[str, object])


def read_summary(folder: str, shape: type[S]) -> S:
    """The ``_SUCCESS`` summary of a published ``folder``, read as the job's ``shape``
    (NotPublished when the folder has no marker)."""
    return cast(S, publish.require_success(folder))


def input_of(uri: str) -> Input:
    """An input read from ``uri``, fingerprinted by :func:`duet.publish.input_fingerprint`."""
    return {"uri": uri, "fingerprint": publish.input_fingerprint(uri)}


def summary(job: str, *, format_version: int, config: dict[str, Any], inputs: dict[str, Input],
            counts: dict[str, Any], wall_time_s: float | None = None,
            **fields: Any) -> dict[str, Any]:  # fmt: skip
    """The ``_SUCCESS`` body of a job: the shared fields of :class:`Summary`, then ``fields``."""
    body: dict[str, Any] = {
        "job": job,
        "code_version": __version__,
        "format_version": format_version,
        "config": config,
        "inputs": dict(sorted(inputs.items())),
        "counts": counts,
    }
    if wall_time_s is not None:
        body["wall_time_s"] = round(wall_time_s, 3)
    clash = set(fields) & set(body)
    if clash:
        raise ValueError(f"summary fields {sorted(clash)} are shared fields, pass them by name")
    return {**body, **fields}
