"""Read and write by URI: local paths natively, ``gs://`` and ``s3://`` through Beam's FileSystems.

Every job goes through these few functions, so the same code runs on a laptop and on Dataflow.

A file written here appears under its final name whole or not at all: locally it is written
to a hidden temporary name beside it (``.<name>.tmp-<pid>-<random>``), synced, then renamed
over the final name in one step; on object stores one upload creates the object, which
becomes visible only when the upload completes. A writer killed mid-file, or a disk that
fills, therefore leaves a temporary file (removed by the next publish of that folder), never
a truncated file under a name a reader knows.
"""

from __future__ import annotations

import os
import posixpath
import secrets

TEMP_MARK = ".tmp-"
"""What every local temporary file name holds (``.<name>.tmp-<pid>-<random>``)."""


S3_MAX_ATTEMPTS = 10
"""Attempts per S3 request (botocore's default is 5): an endpoint that throttles (503
SlowDown) or drops connections a quarter of the time fails a request 5 times in a row once in
~1,000 requests, 10 times once in ~1,000,000. botocore backs off between attempts."""


def s3_retries() -> None:
    """Give every S3 client of this process and its workers :data:`S3_MAX_ATTEMPTS` attempts,
    through botocore's ``AWS_MAX_ATTEMPTS``: Beam's S3 filesystem makes its boto3 client with
    no ``Config``, so the environment is its only knob. A value the user set is kept."""
    os.environ.setdefault("AWS_MAX_ATTEMPTS", str(S3_MAX_ATTEMPTS))


def _filesystems():
    """Beam's FileSystems, imported on first remote use so that local commands start fast."""
    from apache_beam.io.filesystems import FileSystems

    s3_retries()

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


class AtomicFile:
    """A local file written under a temporary name and renamed over ``path`` on :meth:`close`
    (after ``fsync``); :meth:`discard` (or leaving a ``with`` block by an exception) removes
    the temporary file and leaves ``path`` as it was."""

    def __init__(self, path: str):
        self.path = os.path.abspath(path)
        folder, name = os.path.split(self.path)
        os.makedirs(folder, exist_ok=True)
        self.temp = os.path.join(folder, f".{name}{TEMP_MARK}{os.getpid()}-{secrets.token_hex(4)}")
        self._file = open(self.temp, "wb")  # noqa: SIM115 - closed by close() or discard()
        self.closed = False

    def write(self, data) -> int:
        return self._file.write(data)

    def tell(self) -> int:
        return self._file.tell()

    def close(self) -> None:
        """Flush, sync and rename into place; on any error the temporary file is removed and
        the error raised (the final name keeps its previous content)."""
        if self.closed:
            return
        try:
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()
            os.replace(self.temp, self.path)
        except BaseException:
            self.discard()
            raise
        self.closed = True

    def discard(self) -> None:
        if self.closed:
            return
        self.closed = True
        self._file.close()
        if os.path.exists(self.temp):
            os.remove(self.temp)

    def __enter__(self) -> AtomicFile:
        return self

    def __exit__(self, kind, value, traceback) -> None:
        if kind is None:
            self.close()
        else:
            self.discard()


def create(uri: str):
    """A binary, write-only stream whose content appears under ``uri`` whole on close (see the
    module's docstring); parent folders are created for local paths."""
    if not is_remote(uri):
        return AtomicFile(local_path(uri))
    return _filesystems().create(
        uri, mime_type="application/octet-stream", compression_type=_uncompressed()
    )


def write_bytes(uri: str, data: bytes) -> None:
    """``data`` as the whole content of ``uri``, replaced in one step (see :func:`create`)."""
    with create(uri) as f:
        f.write(data)


def sync_folder(uri: str) -> None:
    """Make the renames in a local folder durable (a no-op on object stores)."""
    if is_remote(uri):
        return
    fd = os.open(local_path(uri), os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


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


def list_sizes(folder: str) -> dict[str, int]:
    """Every file below ``folder`` (recursive) with its size in bytes; empty when absent."""
    if not is_remote(folder):
        found = {}
        for dirpath, _, names in os.walk(local_path(folder)):
            for name in names:
                path = os.path.join(dirpath, name)
                try:
                    found[path] = os.stat(path).st_size
                except FileNotFoundError:  # a temporary file renamed meanwhile
                    continue
        return found
    result = _filesystems().match([folder.rstrip("/") + "/**"])[0]
    return {m.path: m.size_in_bytes for m in result.metadata_list}


def prune_empty_folders(folder: str) -> None:
    """Remove the empty folders below a local ``folder`` (object stores have none)."""
    if is_remote(folder):
        return
    root = local_path(folder)
    for dirpath, _, _ in sorted(os.walk(root), key=lambda t: -len(t[0])):
        if dirpath != root:
            try:
                os.rmdir(dirpath)
            except OSError:  # not empty
                continue


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
