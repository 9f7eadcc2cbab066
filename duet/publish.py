"""Publication: an output folder changes for its readers in one step, when its ``_SUCCESS``
marker is replaced, and never goes unpublished on the way.

A published folder holds one *generation*: the files its marker lists. The marker (JSON, a
:func:`duet.layout.summary`) maps each file's *logical* name, the one :mod:`duet.layout`
gives (``index/part-00003.parquet``), to its stored name and size under ``files``::

    "files": {"index/part-00003.parquet": {"name": "index/part-00003-9f2c…e1.parquet",
                                           "size": 18211}, ...}

Stored names carry a tag derived from what decides the file's bytes (its content, or the
fingerprint of its inputs and configuration), so a new run writes beside the published
generation, never over it: identical inputs give identical names (a re-run rewrites nothing it
can reuse), different ones give different names. :func:`commit` publishes a generation:

1. every listed file must exist with its listed size (nothing half-written is published);
2. a generation that would shrink the published one by more than half (``measures``) is
   refused, and the files only it wrote are removed, unless ``allow_shrink``;
3. the folder's lock or lease (:mod:`duet.lease`) must still name the writer (``owner``);
4. the marker is replaced in one step (a rename locally, one upload on object stores);
5. then every other file of the folder (the replaced generation, leftovers of killed runs) is
   deleted, so a finished folder holds one generation that any tool can read as one table.

Readers open a folder's marker (:func:`open_folder`, :func:`read_table`) and read exactly the
files it lists. A missing, empty, truncated or unreadable marker means "not published",
everywhere, with a message that names the command that makes the folder. Markers written
before ``files`` existed (``legacy``) are read as before: their folder's files by name.
"""

from __future__ import annotations

import hashlib
import json
import logging
import posixpath
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from duet import lease, storage
from duet.errors import DuetError

SUCCESS = "_SUCCESS"
TAG_LENGTH = 16
"""Hex digits of the tag in a stored name (64 bits)."""

log = logging.getLogger(__name__)
T = TypeVar("T")


class NotPublished(DuetError, FileNotFoundError):
    """A folder has no readable ``_SUCCESS`` marker: a run is in progress, failed, or never ran."""


class PublishError(DuetError):
    """A generation could not be published; the previous one stays as it was."""


class WouldShrink(PublishError):
    """A generation is less than half the size of the published one (pass --allow-shrink)."""


@dataclass(frozen=True)
class Commit:
    """How a job publishes: ``owner`` is the id in the folder's lock or lease (checked before
    the marker is written; None: not checked) and ``allow_shrink`` lifts the shrink guard."""

    owner: str | None = None
    allow_shrink: bool = False


# ---------------------------------------------------------------- names and markers


def tag_of(data: bytes | str) -> str:
    """The tag of some bytes (or of a digest string): the first TAG_LENGTH hex digits of sha256."""
    raw = data.encode() if isinstance(data, str) else data
    return hashlib.sha256(raw).hexdigest()[:TAG_LENGTH]


def tagged(logical: str, tag: str) -> str:
    """The stored name of ``logical`` for ``tag``: the tag goes before the extension
    (``index/part-00003.parquet`` → ``index/part-00003-<tag>.parquet``)."""
    folder, name = posixpath.split(logical)
    stem, dot, ext = name.partition(".")
    return posixpath.join(folder, f"{stem}-{tag}{dot}{ext}")


def marker_uri(folder: str) -> str:
    return storage.join(folder, SUCCESS)


def dumps(body: Mapping[str, Any]) -> bytes:
    """Canonical JSON (sorted keys), so identical runs write identical markers."""
    return json.dumps(body, sort_keys=True, indent=1, ensure_ascii=False).encode("utf-8")


def parse(data: bytes | None) -> dict | None:
    """A marker's body, or None when it is empty, truncated, not JSON or not an object."""
    if not data:
        return None
    try:
        body = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        return None
    return body if isinstance(body, dict) else None


def read_success(folder: str) -> dict | None:
    """The marker of ``folder``, or None when it is missing or unreadable (never an error)."""
    try:
        return parse(storage.read_bytes(marker_uri(folder)))
    except (OSError, ValueError) as exc:
        if not isinstance(exc, FileNotFoundError) and storage.exists(marker_uri(folder)):
            log.warning("%s is unreadable (%s): treated as not published", marker_uri(folder), exc)
        return None
    except Exception as exc:  # noqa: BLE001 - object-store clients raise their own errors
        log.warning("%s is unreadable (%s): treated as not published", marker_uri(folder), exc)
        return None


def not_published(folder: str, made_by: str) -> NotPublished:
    return NotPublished(f"{folder} is not published: no readable {SUCCESS} (run {made_by})")


# ---------------------------------------------------------------- readers


@dataclass
class Published:
    """A published folder's marker and the files it lists, by logical name.

    ``listing`` (legacy markers only) lists the folder's files relative to it."""

    folder: str
    body: dict
    listing: Callable[[], list[str]] | None = None

    @property
    def legacy(self) -> bool:
        """Written before markers listed their files: files are read by their logical names."""
        return not isinstance(self.body.get("files"), dict)

    @property
    def files(self) -> dict[str, dict]:
        return self.body.get("files") or {}

    def name(self, logical: str) -> str:
        """The stored name of a logical file (relative to the folder)."""
        if self.legacy:
            return logical
        entry = self.files.get(logical)
        if entry is None:
            raise NotPublished(f"{posixpath.join(self.folder, logical)} is not part of the "
                               f"published {self.folder} (its {SUCCESS} does not list it)")  # fmt: skip
        return entry["name"]

    def logical(self, prefix: str = "", suffix: str = "") -> list[str]:
        """Logical names equal to ``prefix`` or below it (``prefix/…``) ending with ``suffix``,
        sorted."""
        names = self.files if not self.legacy else (self.listing() if self.listing else [])
        found = [n for n in names if (not prefix or n == prefix or n.startswith(prefix + "/"))
                 and n.endswith(suffix) and not posixpath.basename(n).startswith(("_", "."))]  # fmt: skip
        return sorted(found)

    def parts(self, table: str = "", suffix: str = ".parquet") -> list[str]:
        """Stored names of a table's files (``table`` itself or the files below it)."""
        return [self.name(n) for n in self.logical(table, suffix)]


def open_folder(folder: str, made_by: str) -> Published:
    """The published ``folder`` (URI), or NotPublished naming ``made_by`` (``duet shards``)."""
    body = read_success(folder)
    if body is None:
        raise not_published(folder, made_by)
    prefix = storage.join(folder, "")
    return Published(folder, body, lambda: [u[len(prefix) :].replace("\\", "/")
                                            for u in storage.list_files(folder)])  # fmt: skip


def require_success(folder: str, made_by: str = "the command that makes it") -> dict:
    """The marker of a published folder (URI), or NotPublished."""
    return open_folder(folder, made_by).body


def open_source(source: Any, folder: str, made_by: str) -> Published:
    """The published ``folder`` (relative to ``source``, a :class:`duet.index.ByteSource`)."""
    marker = f"{folder}/{SUCCESS}" if folder else SUCCESS
    try:
        body = parse(source.read(marker))
    except Exception:  # noqa: BLE001 - missing or unreadable: not published
        body = None
    where = f"{source.root.rstrip('/')}/{folder}" if folder else source.root
    if body is None:
        raise not_published(where, made_by)
    prefix = f"{folder}/" if folder else ""
    return Published(folder, body, lambda: [p[len(prefix) :] for p in source.glob(f"{prefix}**")])


def locate(uri: str, made_by: str) -> tuple[Published, str]:
    """The published folder a table belongs to and the table's logical name in it: ``uri``
    itself when it holds a marker (``playlists.parquet/``), else its parent
    (``cooc/topk.parquet`` in ``cooc/``, ``index`` in a dataset root)."""
    uri = uri.rstrip("/")
    if read_success(uri) is not None:
        return open_folder(uri, made_by), ""
    parent = storage.dirname(uri)
    name = uri[len(storage.join(parent, "")) :]
    if parent and read_success(parent) is not None:
        published = open_folder(parent, made_by)
        if published.logical(name):  # the parent's marker governs this table
            return published, name
    raise NotPublished(f"{uri} is not published: no readable {SUCCESS} in it or beside "
                       f"it (run {made_by})")  # fmt: skip


def table_uris(uri: str, made_by: str, suffix: str = ".parquet") -> list[str]:
    """The files of a published table (see :func:`locate`), as URIs; NotPublished when none."""
    published, table = locate(uri, made_by)
    parts = published.parts(table, suffix)
    if not parts:
        raise NotPublished(f"{uri} lists no {suffix} file in {published.folder}/{SUCCESS} "
                           f"(run {made_by})")  # fmt: skip
    return [storage.join(published.folder, *p.split("/")) for p in parts]


def input_uris(uri: str, made_by: str, suffix: str = ".parquet") -> list[str]:
    """The files of a table a command takes as an argument, which may be a published table or
    the user's own file: a published table's listed files (:func:`table_uris`); else ``uri``
    itself when it is a single file in a folder that no duet job publishes (no ``_SUCCESS``
    or lock beside it); else NotPublished, so a file a failed run left in a published folder
    is never read."""
    try:
        return table_uris(uri, made_by, suffix)
    except NotPublished:
        uri = uri.rstrip("/")
        if not storage.exists(uri):
            raise NotPublished(f"{uri} does not exist (run {made_by})") from None
        parent = storage.dirname(uri)
        governed = any(storage.exists(storage.join(parent, n)) for n in (SUCCESS, lease.LOCK))
        if not governed and storage.exists(uri) and not storage.list_files(uri):
            return [uri]
        raise


def input_fingerprint(uri: str) -> str:
    """Digest identifying an input: the ``_SUCCESS`` marker of the published folder it is or
    lies in (its content is what the producing job read and wrote, file by file), else the
    files' names, sizes and mtimes."""
    uri = uri.rstrip("/")
    marker = read_success(uri)
    if marker is not None:
        return hashlib.sha256(dumps(marker)).hexdigest()
    parent = storage.dirname(uri)
    marker = read_success(parent) if parent else None
    if marker is not None:
        name = uri[len(storage.join(parent, "")) :]
        return hashlib.sha256(dumps({"table": name, "marker": marker})).hexdigest()
    files = [u for u in storage.list_files(uri) if not u.endswith(SUCCESS)] or [uri]
    stamp = [[u[len(uri) :], *storage.file_size_and_mtime(u)] for u in files]
    return hashlib.sha256(json.dumps(stamp).encode()).hexdigest()


# ---------------------------------------------------------------- writers


def write(folder: str, logical: str, data: bytes, tag: str | None = None) -> dict[str, dict]:
    """Write one file of a generation under its stored name (``tag``: of ``data`` by default);
    returns its ``files`` entry ``{logical: {"name", "size"}}``."""
    name = tagged(logical, tag or tag_of(data))
    storage.write_bytes(storage.join(folder, *name.split("/")), data)
    return {logical: {"name": name, "size": len(data)}}


def write_streamed(folder: str, logical: str, fill: Callable[[str], T]
                   ) -> tuple[dict[str, dict], T]:  # fmt: skip
    """One file of a generation too big to hold in memory: ``fill(path)`` writes it to a local
    temporary file (in ``folder`` when it is local, else the system's), which is then stored
    under the tag of its content (renamed, or copied up in chunks). Returns its ``files``
    entry and what ``fill`` returned (e.g. rows, from :func:`duet.schemas.stream_parquet`)."""
    import os
    import shutil
    import tempfile

    local = None if storage.is_remote(folder) else storage.local_path(folder)
    if local:
        os.makedirs(local, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".parquet", dir=local)
    os.close(fd)
    try:
        result = fill(tmp)
        digest = hashlib.sha256()
        with open(tmp, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                digest.update(chunk)
        name = tagged(logical, digest.hexdigest()[:TAG_LENGTH])
        size = os.path.getsize(tmp)
        uri = storage.join(folder, *name.split("/"))
        if local:
            os.makedirs(os.path.dirname(storage.local_path(uri)), exist_ok=True)
            os.replace(tmp, storage.local_path(uri))
        else:
            with open(tmp, "rb") as src, storage.create(uri) as dst:
                shutil.copyfileobj(src, dst, 64 << 20)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return entry(logical, name, size), result


def entry(logical: str, name: str, size: int) -> dict[str, dict]:
    """The ``files`` entry of a file written by other means (a streamed tar shard)."""
    return {logical: {"name": name, "size": int(size)}}


def _dig(body: Mapping | None, path: str) -> float | None:
    value: Any = body
    for key in path.split("."):
        value = value.get(key) if isinstance(value, Mapping) else None
    return value if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _present(folder: str, owned: Sequence[str]) -> dict[str, int]:
    """Every file below the owned subfolders of ``folder``: relative name → size."""
    prefix = storage.join(folder, "")
    found: dict[str, int] = {}
    for sub in owned:
        where = storage.join(folder, *sub.split("/")) if sub else folder
        for uri, size in storage.list_sizes(where).items():
            found[uri[len(prefix) :].replace("\\", "/")] = size
    return found


def _stored(body: Mapping | None) -> set[str]:
    """The stored names a marker lists (none for a legacy marker or none at all)."""
    files = (body or {}).get("files")
    return {e["name"] for e in files.values()} if isinstance(files, dict) else set()


@dataclass
class Generation:
    """A generation checked and ready to publish (see :func:`prepare`)."""

    folder: str
    marker: dict
    present: dict[str, int]
    previous: dict | None

    def publish(self) -> dict:
        """Replace the marker in one step, then delete every other file of the owned folders."""
        storage.write_bytes(marker_uri(self.folder), dumps(self.marker))
        storage.sync_folder(self.folder)
        keep = _stored(self.marker) | {SUCCESS}
        stale = [n for n in self.present
                 if n not in keep and posixpath.basename(n) != lease.LOCK]  # fmt: skip
        storage.delete([storage.join(self.folder, *n.split("/")) for n in stale])
        storage.prune_empty_folders(self.folder)
        return self.marker

    def discard(self) -> None:
        """Remove the files only this generation wrote: the published ones stay."""
        published = _stored(self.previous)
        doomed = [n for n in _stored(self.marker) if n not in published]
        storage.delete([storage.join(self.folder, *n.split("/")) for n in doomed])
        storage.prune_empty_folders(self.folder)


def prepare(folder: str, body: Mapping[str, Any], files: Mapping[str, dict], *,
            owned: Sequence[str] = ("",), measures: Mapping[str, str] | None = None,
            how: Commit = Commit(), what: str | None = None,
            lock: str | None = None) -> Generation:  # fmt: skip
    """Check ``files`` (logical name → ``{"name", "size"}``) with ``body`` as ``folder``'s next
    generation (steps 1-3 of the module's docstring) without publishing it; a refused
    generation's own files are removed (PublishError, WouldShrink, duet.lease.Lost).

    ``owned``: the subfolders (relative, ``""`` for the whole folder) the marker governs; files
    there that the generation does not list are deleted once it is published. ``measures``:
    label → dotted path into the body (``{"tracks": "counts.indexed"}``) of the sizes the shrink
    guard compares. ``what`` names the output in messages; ``lock`` is the folder whose lock
    must name ``how.owner`` (default: ``folder``).
    """
    what = what or folder
    previous = read_success(folder)
    generation = Generation(folder, {**body, "files": dict(sorted(files.items()))},
                            _present(folder, owned), previous)  # fmt: skip
    for item in files.values():
        size = generation.present.get(item["name"])
        if size != item["size"]:
            found = "missing" if size is None else f"{size} bytes, expected {item['size']}"
            raise PublishError(f"{what}: {item['name']} is {found} (a storage fault or another "
                               "writer?); nothing was published, the previous output stands")  # fmt: skip
    if previous is not None and not how.allow_shrink:
        for label, path in (measures or {}).items():
            old, new = _dig(previous, path), _dig(body, path)
            if old and new is not None and new * 2 < old:
                generation.discard()
                raise WouldShrink(f"{what}: this run would shrink the published output from "
                                  f"{old:,} to {new:,} {label}; nothing was changed (check the "
                                  "inputs, or pass --allow-shrink to publish it)")  # fmt: skip
    if how.owner is not None:
        try:
            lease.check(lock or folder, how.owner)
        except lease.Lost:
            generation.discard()
            raise
    return generation


def commit(folder: str, body: Mapping[str, Any], files: Mapping[str, dict], **options: Any) -> dict:
    """:func:`prepare` then publish one folder's generation; returns the marker written."""
    return prepare(folder, body, files, **options).publish()


def commit_all(generations: Sequence[tuple[str, Mapping[str, Any], Mapping[str, dict], dict]]
               ) -> list[dict]:  # fmt: skip
    """Publish several folders of one job (``playlists.parquet`` and ``track_meta.parquet``)
    only if every one of them passes :func:`prepare`: (folder, body, files, options) each."""
    ready: list[Generation] = []
    try:
        for folder, body, files, options in generations:
            ready.append(prepare(folder, body, files, **options))
    except (PublishError, lease.Lost):
        for generation in ready:
            generation.discard()
        raise
    return [g.publish() for g in ready]


def retire(folder: str) -> None:
    """Delete a whole published folder (an old pair run): the marker first, so readers stop
    trusting it before its files go."""
    storage.delete([marker_uri(folder)])
    storage.delete_tree(folder)
