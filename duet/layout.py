"""Every path of a dataset root, named once, and the one shape of every job's ``_SUCCESS``.

A dataset root (a local folder, ``gs://…`` or ``s3://…``) holds the files below under their
*logical* names; each is stored with a tag before its extension (``part-00003-<tag>.parquet``,
see :mod:`duet.publish`) and the ``_SUCCESS`` marker of its folder maps the one to the other::

    _SUCCESS                                       the shards job's summary: the root is published
    _LOCK                                          the shards job's lock or lease (duet.lease)
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
    pairs/<run>/<strategy>/epoch-NNNN/part-00000.parquet   one epoch's pairs (+ _SUCCESS)
    pairs/<run>/_SUCCESS                           the run's summary
    pairs/LATEST                                   the newest complete run's id
    pairs/_LOCK                                    the pairs job's lock or lease
    nightly.json                                   keys of the nightly stages that last ran

Each published folder (the root, each ``*.parquet`` table folder, ``cooc/``, ``emb/<model>/``,
``pairs/<run>/``) has its own ``_SUCCESS`` and ``_LOCK``. Paths here are relative to the root,
with ``/`` separators; :func:`at` joins one to a root for :mod:`duet.storage`, and the
trainer's store reads them as they are. Names a user chooses that become a path component (run
ids, profile and stream names) are :func:`slug` s: ids never become paths.

Every published folder's ``_SUCCESS`` is a :func:`summary`: ``job``, ``code_version``,
``format_version``, ``config``, ``inputs`` (``{name: {"uri", "fingerprint"}}``), ``counts``,
``wall_time_s`` where the job knows it (the single-process table jobs; the Beam jobs leave it
out so that identical runs write identical markers), then the job's own fields.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Generic, NotRequired, TypedDict, TypeVar, cast

from duet import __version__, lease, publish, storage
from duet.errors import DuetError

SUCCESS = publish.SUCCESS
LOCK = lease.LOCK
NIGHTLY_LOCK = "_LOCK.nightly"
"""The nightly chain's own lock (each of its stages also takes the lock of what it writes)."""


class InvalidName(DuetError):
    """A user-supplied name that would become a path component is not a plain name."""


_SLUG = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")


def slug(value: object, what: str) -> str:
    """``value`` if it is a plain name (letters, digits, ``.``, ``_``, ``-``; starting with a
    letter or digit; at most 100 characters), else InvalidName: such names become path
    components (``pairs/<run>/``, ``shards/mel-<profile>/``), so ``..``, ``/`` and hidden or
    marker-like names (``.x``, ``_SUCCESS``) are refused."""
    if isinstance(value, str) and _SLUG.fullmatch(value):
        return value
    raise InvalidName(f"{what} {value!r} is not a plain name (letters, digits, '.', '_', '-'; "
                      "starting with a letter or digit; at most 100 characters)")  # fmt: skip


def relative(path: object, what: str) -> str:
    """A path below a dataset root given by the user (a recipe's table): each ``/``-separated
    component a :func:`slug`, so it cannot leave the root."""
    if not isinstance(path, str) or not path:
        raise InvalidName(f"{what} {path!r} is not a path below the dataset root")
    for component in path.split("/"):
        slug(component, f"{what} {path!r}: component")
    return path


# ---------------------------------------------------------------- audio shards (duet shards)

SHARDS = "shards"
INDEX = "index"
FAILURES = "failures"
REPORTS = "reports"
STATS = "stats"
SHARD_FOLDERS = (SHARDS, INDEX, FAILURES, REPORTS, STATS)
"""Every folder the root's ``_SUCCESS`` governs (files there that it does not list are stale)."""
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
    return f"{PAIRS}/{slug(run, 'run id')}"


def epoch_folder(epoch: int) -> str:
    """``epoch-NNNN``: not ``epoch=NNNN``, which Arrow, pandas and DuckDB read as a hive
    partition whose type clashes with the files' own ``epoch`` column."""
    return f"epoch-{epoch:04d}"


def pair_part(strategy: str, epoch: int) -> str:
    """One epoch's manifest within its run folder (the name a run's ``_SUCCESS`` lists)."""
    return f"{strategy}/{epoch_folder(epoch)}/{PAIRS_PART}"


def pair_epoch(run: str, strategy: str, epoch: int) -> str:
    """The folder of one (strategy, epoch) of a run: ``pairs/<run>/<strategy>/epoch-NNNN``."""
    return f"{pair_run(run)}/{strategy}/{epoch_folder(epoch)}"


def pair_manifest(run: str, strategy: str, epoch: int) -> str:
    return f"{pair_run(run)}/{pair_part(strategy, epoch)}"


def legacy_pair_manifest(run: str, strategy: str, epoch: int) -> str:
    """Where runs of pairs format 1 (before ``files`` in markers) kept an epoch's manifest."""
    return f"{pair_run(run)}/{strategy}/epoch={epoch:04d}/{PAIRS_PART}"


NIGHTLY = "nightly.json"


def marker(folder: str = "") -> str:
    """The ``_SUCCESS`` marker of a folder (of the root itself by default)."""
    return f"{folder}/{SUCCESS}" if folder else SUCCESS


def made_by(folder: str) -> str:
    """The command that publishes a folder of a dataset root (for "not published" messages)."""
    top = folder.split("/", 1)[0]
    if top in (PLAYLISTS, TRACK_META):
        return "duet playlists"
    if top == COOC["artist"]:
        return "duet cooccurrence --group-by artist"
    if top == COOC["playlist"]:
        return "duet cooccurrence"
    if top == SPLITS:
        return "duet splits"
    if top == PAIRS:
        return "duet pairs"
    if top == EMB:
        model = folder.split("/")[1] if "/" in folder else "<model>"
        if model == GENRE_W2V:
            return "duet embeddings genre-w2v"
        if model.startswith("cf-"):
            return f"duet embeddings cf --model {model[3:]}"
        return f"duet embeddings {model}"
    return "duet shards"


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
    summary (``ShardsSummary``, ``PairsSummary``, ...) adds its own fields. ``files`` (added by
    :func:`duet.publish.commit`) lists the published generation."""

    job: str
    code_version: str
    format_version: int
    config: dict[str, Any]
    inputs: dict[str, Input]
    counts: Counts
    wall_time_s: NotRequired[float]
    files: NotRequired[dict[str, dict[str, Any]]]


S = TypeVar("S", bound=Mapping[str, object])


def read_summary(folder: str, shape: type[S], made_by: str = "the command that makes it") -> S:
    """The ``_SUCCESS`` summary of a published ``folder``, read as the job's ``shape``
    (NotPublished, naming ``made_by``, when the folder has no readable marker)."""
    return cast(S, publish.open_folder(folder, made_by).body)


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
