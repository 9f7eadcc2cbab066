"""Read and write by URI: local paths natively, ``gs://`` and ``s3://`` through Beam's FileSystems.

Every job goes through these few functions, so the same code runs on a laptop and on Dataflow.
"""

from __future__ import annotations

import os
import posixpath


def _filesystems():
    """Beam's FileSystems, imported on first remote use so that local commands start fast."""
    from apache_beam.io.filesystems import FileSystems

    return FileSystems


def _uncompressed():
    from apache_beam.io.filesystem import CompressionTypes

    return CompressionTypes.UNCOMPRESSED


def is_remote(uri: str) -> bool:
    return "://" in uri and not uri.startswith("file://")


REMOTE_SCHEMES = ("s3", "gs")
"""Object stores read through Beam's FileSystems; with local paths and ``file://``, all there is."""


def scheme_problem(uri: str) -> str | None:
    """Why ``uri`` cannot be read (a scheme that is not a local path, file://, s3:// or gs://,
    e.g. an http(s) URL), or None."""
    if not is_remote(uri):
        return None
    scheme = uri.split("://", 1)[0]
    if scheme.lower() in REMOTE_SCHEMES:
        return None
    kind = "http(s) URLs are" if scheme.lower() in ("http", "https") else f"{scheme}:// is"
    return (
        f"{kind} not read: use a local path, file://, s3:// or gs:// "
        "(download the files or copy them to a bucket first)"
    )


def local_path(uri: str) -> str:
    return uri[len("file://") :] if uri.startswith("file://") else uri


def join(base: str, *parts: str) -> str:
    if is_remote(base):
        return posixpath.join(base, *parts)
    return os.path.join(local_path(base), *parts)


def dirname(uri: str) -> str:
    return posixpath.dirname(uri) if is_remote(uri) else os.path.dirname(local_path(uri))


def exists(uri: str) -> bool:
    """A file, or a folder: on object stores, a prefix with at least one object below it."""
    if not is_remote(uri):
        return os.path.exists(local_path(uri))
    fs = _filesystems()
    if fs.exists(uri):
        return True
    return bool(fs.match([uri.rstrip("/") + "/**"], limits=[1])[0].metadata_list)


def open_read(uri: str):
    """A binary, read-only stream."""
    if not is_remote(uri):
        return open(local_path(uri), "rb")
    return _filesystems().open(uri, compression_type=_uncompressed())


def read_bytes(uri: str) -> bytes:
    with open_read(uri) as f:
        return f.read()


def read_range(uri: str, offset: int, size: int) -> bytes:
    """One ranged read of ``size`` bytes at ``offset``."""
    if not is_remote(uri):
        with open(local_path(uri), "rb") as f:
            return os.pread(f.fileno(), size, offset)
    with open_read(uri) as f:
        f.seek(offset)
        return f.read(size)


def create(uri: str):
    """A binary, write-only stream; parent folders are created for local paths."""
    if not is_remote(uri):
        path = local_path(uri)
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        return open(path, "wb")
    return _filesystems().create(
        uri, mime_type="application/octet-stream", compression_type=_uncompressed()
    )


def write_bytes(uri: str, data: bytes) -> None:
    with create(uri) as f:
        f.write(data)


def delete(uris: list[str]) -> None:
    """Delete the files that exist; missing ones are not an error."""
    remote = [u for u in uris if is_remote(u) and exists(u)]
    for uri in uris:
        if not is_remote(uri) and os.path.isfile(local_path(uri)):
            os.remove(local_path(uri))
    if remote:
        _filesystems().delete(remote)


def list_files(folder: str) -> list[str]:
    """Every file below ``folder`` (recursive), sorted; empty when the folder does not exist."""
    if not is_remote(folder):
        found: list[str] = []
        for dirpath, _, names in os.walk(local_path(folder)):
            found.extend(os.path.join(dirpath, n) for n in names)
        return sorted(found)
    result = _filesystems().match([folder.rstrip("/") + "/**"])[0]
    return sorted(m.path for m in result.metadata_list)


def file_size_and_mtime(uri: str) -> tuple[int, float]:
    """Size in bytes and modification time (seconds) of one file, for input fingerprints."""
    if not is_remote(uri):
        st = os.stat(local_path(uri))
        return st.st_size, st.st_mtime
    meta = _filesystems().match([uri])[0].metadata_list
    if not meta:
        raise FileNotFoundError(uri)
    return meta[0].size_in_bytes, meta[0].last_updated_in_seconds


def list_stamped(spec: str) -> list[tuple[str, int, float]]:
    """(uri, size in bytes, modification time) of every file below a folder, or matching a
    glob (``**`` recurses), sorted by uri. Object stores return size and time with the listing
    itself, so a catalogue of a million objects costs its list requests, not a million more."""
    if is_remote(spec):
        pattern = spec if any(c in spec for c in "*?[") else spec.rstrip("/") + "/**"
        found = _filesystems().match([pattern])[0].metadata_list
        return sorted((m.path, m.size_in_bytes, m.last_updated_in_seconds) for m in found)
    if any(c in spec for c in "*?["):
        stamped = []
        for path in glob(spec):
            st = os.stat(path)
            stamped.append((path, st.st_size, st.st_mtime))
        return stamped
    stamped = []
    for dirpath, _, names in os.walk(local_path(spec)):
        for name in names:
            st = os.stat(os.path.join(dirpath, name))
            stamped.append((os.path.join(dirpath, name), st.st_size, st.st_mtime))
    return sorted(stamped)


def glob(pattern: str) -> list[str]:
    """Files matching ``pattern`` (``**`` recurses), sorted."""
    if is_remote(pattern):
        return sorted(m.path for m in _filesystems().match([pattern])[0].metadata_list)
    import glob as globlib

    matched = globlib.glob(local_path(pattern), recursive=True)
    return sorted(p for p in matched if os.path.isfile(p))


def delete_tree(folder: str) -> None:
    """Delete every file below ``folder`` (and, locally, the folders themselves)."""
    if is_remote(folder):
        delete(list_files(folder))
        return
    import shutil

    shutil.rmtree(local_path(folder), ignore_errors=True)
