"""Where a dataset's feature arrays are and which track each one holds.

Layouts:

* ``melon`` — Melon Playlist Dataset's ``arena_mel/<song_id // 1000>/<song_id>.npy``; the id
  is the song id (as the playlists job writes it: decimal, no leading zeros). A file elsewhere
  or with another name is a failure row (stage ``source``); files that are not ``.npy`` are
  counted as ignored.
* ``npy`` — any folder (every ``*.npy`` below it), glob (``'feats/**/*.npy'``) or track
  manifest (Parquet/CSV/JSONL with ``track_id``, ``audio_uri`` naming the array, optional
  ``split``, exactly as ``duet shards`` reads it). For folders and globs the id is the file
  name without ``.npy`` (``stem``) or the path below the folder or the glob's fixed part
  without ``.npy`` (``path``).

A listing is one request per thousand objects on a bucket (sizes and times come with it) and
about 300 bytes per file in memory: 200 MB for Melon's 649 091 files, on one worker.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from duet import publish, readers, schemas, storage
from duet.errors import DuetError
from duet.pipelines.audio.manifest import is_glob, read_manifest
from duet.pipelines.shardset.writer import failure
from duet.schemas import track_id_problem

LAYOUTS = ("melon", "npy")
ID_RULES = ("stem", "path")
MANIFEST_SUFFIXES = (".parquet", ".csv", ".jsonl", ".json", ".ndjson")
_MELON_NAME = re.compile(r"^(0|[1-9][0-9]*)\.npy$")


class SourceError(DuetError):
    """The arrays or the splits table of an import cannot be used."""


@dataclass(frozen=True)
class ArrayRow:
    """One array to import: its track id, URI, size and mtime (from the listing; None for
    manifest rows, stamped when the shard is written) and split."""

    track_id: str
    uri: str
    size: int | None = None
    mtime: float | None = None
    split: str | None = None


@dataclass
class Listing:
    rows: list[ArrayRow]
    failures: list[dict]
    fingerprint: str
    input_rows: int  # arrays considered (rows + failures)
    ignored: int = 0  # files of a folder that are not .npy


def _prefix(spec: str) -> str:
    base = spec if storage.is_remote(spec) else storage.local_path(spec)
    return base.rstrip("/") + "/"


def _glob_prefix(pattern: str) -> str:
    fixed = []
    for part in pattern.split("/"):
        if is_glob(part):
            break
        fixed.append(part)
    return _prefix("/".join(fixed)) if fixed else ""


def _stamp_digest(stamped: list[tuple[str, int, float]]) -> str:
    text = "\n".join(f"{uri}\t{size}\t{mtime!r}" for uri, size, mtime in stamped)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def list_melon(spec: str) -> Listing:
    """The arrays of a Melon ``arena_mel`` folder."""
    stamped = storage.list_stamped(spec)
    prefix = _prefix(spec)
    rows, failures, ignored = [], [], 0
    for uri, size, mtime in stamped:
        relative = uri[len(prefix) :] if uri.startswith(prefix) else uri
        parts = relative.split("/")
        if not parts[-1].endswith(".npy"):
            ignored += 1
            continue
        if not _MELON_NAME.match(parts[-1]):
            failures.append(failure(None, uri, "source",
                                    f"{relative}: not a Melon song file (<song_id>.npy)"))  # fmt: skip
            continue
        song = parts[-1][: -len(".npy")]
        folder = str(int(song) // 1000)
        if parts[:-1] != [folder]:
            failures.append(failure(song, uri, "source",
                                    f"{relative}: Melon keeps song {song} in {folder}/{song}.npy"))  # fmt: skip
            continue
        rows.append(ArrayRow(song, uri, size, mtime))
    return Listing(rows, failures, _stamp_digest(stamped), len(rows) + len(failures), ignored)


def list_npy(spec: str, id_from: str = "stem") -> Listing:
    """The arrays of a folder, glob or track manifest (see the module docstring)."""
    if id_from not in ID_RULES:
        raise SourceError(f"--id must be one of {ID_RULES}, not {id_from!r}")
    if not is_glob(spec) and spec.lower().endswith(MANIFEST_SUFFIXES):
        manifest = read_manifest(spec)
        rows = [ArrayRow(r.track_id, r.audio_uri, split=r.split) for r in manifest.rows]
        return Listing(rows, manifest.failures, manifest.fingerprint, manifest.input_rows)
    globbed = is_glob(spec)
    stamped = storage.list_stamped(spec)
    prefix = _glob_prefix(spec) if globbed else _prefix(spec)
    rows, failures, ignored = [], [], 0
    for uri, size, mtime in stamped:
        relative = uri[len(prefix) :] if prefix and uri.startswith(prefix) else uri
        name = relative.rsplit("/", 1)[-1]
        if not globbed and not name.endswith(".npy"):
            ignored += 1
            continue
        track_id = (name if id_from == "stem" else relative).removesuffix(".npy")
        problem = track_id_problem(track_id)
        if problem:
            failures.append(failure(track_id, uri, "source", f"{relative}: {problem}"))
            continue
        rows.append(ArrayRow(track_id, uri, size, mtime))
    return Listing(rows, failures, _stamp_digest(stamped), len(rows) + len(failures), ignored)


def list_arrays(spec: str, layout: str, id_from: str = "stem") -> Listing:
    if layout == "melon":
        return list_melon(spec)
    if layout == "npy":
        return list_npy(spec, id_from)
    raise SourceError(f"unknown layout {layout!r}; expected one of {LAYOUTS}")


def array_ids(folder: str) -> list[str]:
    """Ids of the ``.npy`` files below ``folder`` by file name (Melon's song ids), for the
    playlists job to report the tracks that have no array before anything is imported."""
    ids = sorted({uri.rsplit("/", 1)[-1].removesuffix(".npy")
                  for uri in storage.list_files(folder) if uri.endswith(".npy")})  # fmt: skip
    if not ids:
        raise SourceError(
            f"{folder} is neither a published dataset root nor a folder of .npy feature arrays"
        )
    return ids


def read_splits(uri: str) -> dict[str, str]:
    """track id → split from a splits table: a published one, exactly the files its
    ``_SUCCESS`` lists, or a user's own file (:func:`duet.publish.input_uris`)."""
    if not storage.exists(uri) and publish.read_success(storage.dirname(uri)) is None:
        raise SourceError(f"splits table {uri} does not exist (run duet splits)")
    try:
        table = readers.read_input(uri, schemas.SPLITS, "duet splits")
    except publish.NotPublished as exc:
        raise SourceError(f"splits table {exc}") from None
    return dict(zip(table.column("track_id").to_pylist(), table.column("split").to_pylist(),
                    strict=True))  # fmt: skip
