"""One writer at a time per published folder: an ``fcntl`` lock file locally, a lease object
with an expiry on object stores.

Both live at ``<folder>/_LOCK`` and hold who writes: owner id (one per command run), host,
pid, command and, for leases, the expiry. A second writer is refused with a message naming
the holder (:class:`Busy`); :func:`check` tells the job, right before it publishes, whether
the lock still names it.

Guarantees, honestly:

- **Local folders** (``flock``): exclusive while the holding process lives; the kernel
  releases it when the process dies, however it dies, so there is nothing stale to take
  over. Holds on one machine and on NFSv4 (Linux maps ``flock`` to POSIX locks there), not on
  filesystems without locking (some FUSE mounts). ``_LOCK`` files are never deleted (deleting
  a lock file while it is held would let a second writer lock a new inode).
- **S3 and GCS** (leases): the lease object is created only if absent (S3 ``If-None-Match:
  *``, GCS ``ifGenerationMatch=0``), refreshed every ``ttl / 3`` only if unchanged since our
  last write (S3 ``If-Match: <ETag>``, GCS ``ifGenerationMatch=<generation>``), and an
  expired lease is taken over the same way, so of two writers racing for it exactly one wins.
  What remains: a holder stalled longer than ``ttl`` (a paused VM, a partition) loses the
  lease to a second writer and may still upload data files before its next :func:`check`;
  data files never collide (their names carry content tags) and the marker is written only
  after :func:`check`, but that check and the marker upload are two requests, so a stall of
  more than ``ttl`` exactly between them can still publish over the new holder. Expiry
  compares the holder's clock (in the lease) with the taker's: keep clocks within seconds of
  each other (NTP), far below the 5-minute ``ttl``.
- **Other object stores** (or S3/GCS clients without conditional writes): best effort; the
  lease is written, read back after a pause, and the writer proceeds only if it still names
  it. Two writers starting within that pause can both proceed.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

from duet import storage
from duet.errors import DuetError

LOCK = "_LOCK"
TTL_S = 300.0
"""Seconds a lease stays valid without a refresh (refreshed every third of it)."""
SETTLE_S = 1.0
"""Best-effort leases: the pause before reading the lease back."""

log = logging.getLogger(__name__)


class Busy(DuetError):
    """Another writer holds the folder's lock or unexpired lease."""


class Lost(DuetError):
    """The lock or lease no longer names this writer: its output must not be published."""


def new_owner() -> str:
    """A fresh owner id (one per command run)."""
    return uuid.uuid4().hex


@dataclass(frozen=True)
class Holder:
    """Who holds a lock or lease."""

    owner: str
    host: str
    pid: int
    command: str
    since: float
    expires: float | None = None

    def to_bytes(self) -> bytes:
        return json.dumps(self.__dict__, sort_keys=True).encode()

    @classmethod
    def parse(cls, data: bytes | None) -> Holder | None:
        try:
            body = json.loads(data or b"")
            return cls(**{k: body[k] for k in ("owner", "host", "pid", "command", "since")},
                       expires=body.get("expires"))  # fmt: skip
        except (ValueError, KeyError, TypeError):
            return None

    def describe(self) -> str:
        started = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(self.since))
        text = f"`{self.command}` (pid {self.pid} on {self.host}, since {started}"
        if self.expires is not None:
            text += f", lease valid {max(self.expires - time.time(), 0):.0f} s more"
        return text + ")"


def lock_uri(folder: str, name: str = LOCK) -> str:
    return storage.join(folder, name)


def _holder(owner: str, command: str, ttl: float | None) -> Holder:
    now = time.time()
    return Holder(owner, socket.gethostname(), os.getpid(), command, now,
                  None if ttl is None else now + ttl)  # fmt: skip


# ---------------------------------------------------------------- local: flock


class LocalLock:
    """An exclusive ``flock`` on ``<folder>/_LOCK`` (created if needed, never deleted)."""

    def __init__(self, folder: str, owner: str, command: str, name: str = LOCK):
        self.path = storage.local_path(lock_uri(folder, name))
        self.folder, self.owner, self.command = folder, owner, command
        self.fd: int | None = None

    def acquire(self) -> None:
        os.makedirs(os.path.dirname(os.path.abspath(self.path)), exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = Holder.parse(os.pread(fd, 1 << 16, 0))
            os.close(fd)
            who = holder.describe() if holder else "another process"
            raise Busy(f"{self.folder} is being written by {who}; wait for it to finish "
                       "(one writer at a time)") from None  # fmt: skip
        os.ftruncate(fd, 0)
        os.pwrite(fd, _holder(self.owner, self.command, None).to_bytes(), 0)
        os.fsync(fd)
        self.fd = fd

    def release(self) -> None:
        if self.fd is None:
            return
        os.ftruncate(self.fd, 0)
        fcntl.flock(self.fd, fcntl.LOCK_UN)
        os.close(self.fd)
        self.fd = None


# ---------------------------------------------------------------- object stores: leases


class _Conditional(Protocol):
    """Read with a version; create-if-absent, replace-if-unchanged and delete-if-unchanged of
    one object (``create``/``replace`` return the new version, None when the condition
    failed)."""

    def get(self, uri: str) -> tuple[bytes, str] | None: ...

    def create(self, uri: str, data: bytes) -> str | None: ...

    def replace(self, uri: str, data: bytes, version: str) -> str | None: ...

    def delete(self, uri: str, version: str) -> None: ...


class _S3:
    """S3 through boto3 with the options Beam's filesystem uses (``--s3_endpoint_url``, …)."""

    def __init__(self) -> None:
        import boto3
        from apache_beam.io.filesystems import FileSystems
        from apache_beam.options.pipeline_options import PipelineOptions, S3Options
        from botocore.config import Config

        o = (FileSystems._pipeline_options or PipelineOptions([])).view_as(S3Options)
        self.client = boto3.session.Session().client(
            "s3", region_name=o.s3_region_name, endpoint_url=o.s3_endpoint_url,
            aws_access_key_id=o.s3_access_key_id, aws_secret_access_key=o.s3_secret_access_key,
            aws_session_token=o.s3_session_token, use_ssl=not o.s3_disable_ssl, verify=o.s3_verify,
            config=Config(retries={"max_attempts": storage.S3_MAX_ATTEMPTS}),
        )  # fmt: skip

    @staticmethod
    def _split(uri: str) -> tuple[str, str]:
        bucket, _, key = uri[len("s3://") :].partition("/")
        return bucket, key

    @staticmethod
    def _failed(exc: Exception) -> bool:
        code = getattr(exc, "response", {}).get("Error", {}).get("Code", "")
        return code in ("PreconditionFailed", "ConditionalRequestConflict", "412", "409")

    def get(self, uri):
        bucket, key = self._split(uri)
        try:
            got = self.client.get_object(Bucket=bucket, Key=key)
        except self.client.exceptions.NoSuchKey:
            return None
        return got["Body"].read(), got["ETag"]

    def _put(self, uri, data, **condition):
        bucket, key = self._split(uri)
        try:
            return self.client.put_object(Bucket=bucket, Key=key, Body=data, **condition)["ETag"]
        except Exception as exc:
            if self._failed(exc):
                return None
            raise

    def create(self, uri, data):
        return self._put(uri, data, IfNoneMatch="*")

    def replace(self, uri, data, version):
        return self._put(uri, data, IfMatch=version)

    def delete(self, uri, version):
        bucket, key = self._split(uri)
        with contextlib.suppress(Exception):  # taken over meanwhile: not ours to delete
            self.client.delete_object(Bucket=bucket, Key=key, IfMatch=version)


class _GCS:
    """GCS through google-cloud-storage (what Beam's gcsio uses): generation preconditions."""

    def __init__(self) -> None:
        from google.cloud import storage as gcs

        self.client = gcs.Client()

    def _blob(self, uri):
        bucket, _, name = uri[len("gs://") :].partition("/")
        return self.client.bucket(bucket).blob(name)

    def get(self, uri):
        from google.api_core.exceptions import NotFound

        blob = self._blob(uri)
        try:
            data = blob.download_as_bytes()
        except NotFound:
            return None
        return data, str(blob.generation)

    def _upload(self, uri, data, generation: int):
        from google.api_core.exceptions import PreconditionFailed

        blob = self._blob(uri)
        try:
            blob.upload_from_string(data, if_generation_match=generation)
        except PreconditionFailed:
            return None
        return str(blob.generation)

    def create(self, uri, data):
        return self._upload(uri, data, 0)

    def replace(self, uri, data, version):
        return self._upload(uri, data, int(version))

    def delete(self, uri, version):
        with contextlib.suppress(Exception):
            self._blob(uri).delete(if_generation_match=int(version))


class _Unconditional:
    """Plain reads and writes through duet.storage, each read back after a pause: best effort
    (see the module's docstring). The version of an object is a digest of its content."""

    def get(self, uri):
        try:
            data = storage.read_bytes(uri)
        except Exception:  # noqa: BLE001 - absent (each filesystem says it its own way)
            return None
        return data, hashlib.sha256(data).hexdigest()

    def _write(self, uri, data):
        storage.write_bytes(uri, data)
        time.sleep(SETTLE_S)
        got = self.get(uri)
        return got[1] if got and got[0] == data else None

    def create(self, uri, data):
        return self._write(uri, data) if self.get(uri) is None else None

    def replace(self, uri, data, version):
        got = self.get(uri)
        return self._write(uri, data) if got and got[1] == version else None

    def delete(self, uri, version):
        got = self.get(uri)
        if got and got[1] == version:
            storage.delete([uri])


def _client(uri: str) -> tuple[_Conditional, bool]:
    """The store's conditional client and whether its writes are really conditional."""
    try:
        if uri.startswith("s3://"):
            return _S3(), True
        if uri.startswith("gs://"):
            return _GCS(), True
    except ImportError:
        pass
    return _Unconditional(), False


class Lease:
    """A lease object at ``<folder>/_LOCK``, refreshed by a thread while the job runs."""

    def __init__(self, folder: str, owner: str, command: str, *, ttl: float = TTL_S,
                 name: str = LOCK):  # fmt: skip
        self.uri = lock_uri(folder, name)
        self.folder, self.owner, self.command, self.ttl = folder, owner, command, ttl
        self.store, self.conditional = _client(self.uri)
        self.version: str | None = None
        self.lost = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _body(self) -> bytes:
        return _holder(self.owner, self.command, self.ttl).to_bytes()

    def acquire(self) -> None:
        current = self.store.get(self.uri)
        holder = Holder.parse(current[0]) if current else None
        if current is None:
            self.version = self.store.create(self.uri, self._body())
        elif holder is not None and (holder.expires or 0) > time.time():
            raise Busy(f"{self.folder} is being written by {holder.describe()}; wait for it to "
                       "finish or for its lease to expire (one writer at a time)")  # fmt: skip
        else:  # expired (or unreadable): take it over, if nobody else did meanwhile
            self.version = self.store.replace(self.uri, self._body(), current[1])
        if self.version is None:
            holder = Holder.parse((self.store.get(self.uri) or (b"", ""))[0])
            who = holder.describe() if holder else "another writer"
            raise Busy(f"{self.folder} was just taken by {who} (one writer at a time)")
        if current is not None:
            log.warning("%s: took over the expired lease of %s", self.folder,
                        holder.describe() if holder else "an unknown writer")  # fmt: skip
        self._thread = threading.Thread(target=self._refresh, name="duet-lease", daemon=True)
        self._thread.start()

    def _refresh(self) -> None:
        while not self._stop.wait(self.ttl / 3):
            if self.version is None:  # never taken: nothing to refresh
                return
            try:
                version = self.store.replace(self.uri, self._body(), self.version)
            except Exception as exc:  # noqa: BLE001 - a failed refresh is retried next time
                log.warning("%s: lease refresh failed (%s); retrying", self.folder, exc)
                continue
            if version is None:
                self.lost = True
                log.error("%s: the lease was taken over by another writer; this run will "
                          "not publish", self.folder)  # fmt: skip
                return
            self.version = version

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        if not self.lost and self.version is not None:
            self.store.delete(self.uri, self.version)


# ---------------------------------------------------------------- the interface jobs use


@contextlib.contextmanager
def hold(folders: list[str], owner: str, command: str, *, ttl: float = TTL_S,
         name: str = LOCK) -> Iterator[None]:  # fmt: skip
    """Hold the lock (local) or lease (object store) of every folder while the block runs;
    Busy (naming the holder) when another writer has one."""
    with contextlib.ExitStack() as stack:
        for folder in sorted(set(folders)):
            lock: LocalLock | Lease
            if storage.is_remote(folder):
                lock = Lease(folder, owner, command, ttl=ttl, name=name)
            else:
                lock = LocalLock(folder, owner, command, name=name)
            lock.acquire()
            _HELD.append(lock)
            stack.callback(_release, lock)
        yield


_HELD: list[LocalLock | Lease] = []
"""The locks and leases this process holds now (see :func:`release_held`)."""


def _release(lock: LocalLock | Lease) -> None:
    if lock in _HELD:  # else already released by release_held
        _HELD.remove(lock)
        lock.release()


def release_held() -> None:
    """Release every lock and lease this process holds. A command interrupted by a signal
    ends at once, without leaving the blocks that hold them; a lease left behind would refuse
    the re-run until it expires."""
    while _HELD:
        lock = _HELD.pop()
        with contextlib.suppress(Exception):  # the store may be unreachable: the lease expires
            lock.release()


def holder(folder: str, name: str = LOCK) -> Holder | None:
    """Who the lock or lease of ``folder`` names (None: nobody, or unreadable)."""
    try:
        return Holder.parse(storage.read_bytes(lock_uri(folder, name)))
    except Exception:  # noqa: BLE001 - absent or unreadable
        return None


def check(folder: str, owner: str, name: str = LOCK) -> None:
    """Lost unless the lock or lease of ``folder`` still names ``owner`` (and, for a lease,
    has not expired)."""
    found = holder(folder, name)
    if (found is not None and found.owner == owner
            and (found.expires is None or found.expires > time.time())):  # fmt: skip
        return
    who = found.describe() if found is not None and found.owner != owner else "nobody"
    raise Lost(f"{folder}: the lock no longer names this run (it names {who}); nothing was "
               "published, the previous output stands")  # fmt: skip
