"""Byte access to a published dataset root for the trainer: local paths, ``s3://``, ``gs://``
through fsspec, with many ranged reads in flight, retries with back-off, and a small
size-bounded cache.

S3-compatible endpoints: ``endpoint_url`` (or the standard ``AWS_ENDPOINT_URL`` variable);
credentials come from the usual AWS variables or profiles.

With ``shard_cache`` (a local folder), a remote object touched by a ranged read is also
downloaded whole in the background, once per machine (a lock file arbitrates between
DataLoader worker processes); until it lands, reads stay ranged and remote, afterwards they
are local ``pread`` calls. The folder is bounded: the least recently fetched objects go first.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor

from duet.index import LocalFiles
from duet.storage import S3_MAX_ATTEMPTS

log = logging.getLogger(__name__)

TRANSIENT = (OSError, TimeoutError, ConnectionError)


class ByteCache:
    """Least-recently-used bytes, bounded by total size (0 disables it)."""

    def __init__(self, max_bytes: int):
        self.max_bytes = max_bytes
        self._items: OrderedDict[tuple, bytes] = OrderedDict()
        self._size = 0
        self._lock = threading.Lock()
        self.hits = self.misses = 0

    def get(self, key: tuple) -> bytes | None:
        with self._lock:
            value = self._items.get(key)
            if value is None:
                self.misses += 1
                return None
            self._items.move_to_end(key)
            self.hits += 1
            return value

    def put(self, key: tuple, value: bytes) -> None:
        if len(value) > self.max_bytes:
            return
        with self._lock:
            if key in self._items:
                return
            self._items[key] = value
            self._size += len(value)
            while self._size > self.max_bytes:
                _, old = self._items.popitem(last=False)
                self._size -= len(old)


class ShardCache:
    """Whole remote objects on local disk, fetched in the background, bounded in bytes."""

    STALE_LOCK_S = 600

    def __init__(self, folder: str, max_bytes: int, downloads: int = 4):
        self.folder, self.max_bytes = folder, max_bytes
        os.makedirs(folder, exist_ok=True)
        self._pool = ThreadPoolExecutor(max_workers=downloads, thread_name_prefix="duet-fetch")
        self._pending: set[str] = set()
        self._files = LocalFiles()
        self._lock = threading.Lock()
        self.fetched = 0

    def local(self, uri: str) -> str:
        return os.path.join(self.folder, hashlib.sha1(uri.encode()).hexdigest())

    def pread(self, uri: str, offset: int, size: int) -> bytes | None:
        """The bytes from the local copy, or None (and a background fetch) when absent."""
        try:
            return self._files.pread(self.local(uri), offset, size)
        except FileNotFoundError:
            return None

    def fetch(self, uri: str, download) -> None:
        """Start ``download(uri, target)`` unless this machine already has or is getting it."""
        with self._lock:
            if uri in self._pending:
                return
            self._pending.add(uri)
        self._pool.submit(self._fetch, uri, download)

    def _fetch(self, uri: str, download) -> None:
        path = self.local(uri)
        lock = path + ".lock"
        try:
            if os.path.exists(path) or not self._claim(lock):
                return
            tmp = f"{path}.{os.getpid()}.{threading.get_ident()}.tmp"
            try:
                download(uri, tmp)
                self._make_room(os.path.getsize(tmp))
                os.replace(tmp, path)
                self.fetched += 1
            finally:
                for leftover in (tmp, lock):
                    if os.path.exists(leftover):
                        os.unlink(leftover)
        except Exception as exc:  # the cache is an optimisation: ranged reads carry on
            log.warning("shard cache: fetching %s failed: %s", uri, exc)
        finally:  # a later miss (evicted, another process's fetch failed) may fetch again
            with self._lock:
                self._pending.discard(uri)

    def _claim(self, lock: str) -> bool:
        try:
            os.close(os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
            return True
        except FileExistsError:
            if time.time() - os.path.getmtime(lock) > self.STALE_LOCK_S:
                os.unlink(lock)  # its owner died mid-download
                return self._claim(lock)
            return False

    def _make_room(self, incoming: int) -> None:
        entries = []
        for name in os.listdir(self.folder):
            if name.endswith((".tmp", ".lock")):
                continue
            stat = os.stat(os.path.join(self.folder, name))
            entries.append((stat.st_mtime, stat.st_size, name))
        total = sum(size for _, size, _ in entries) + incoming
        for _, size, name in sorted(entries):
            if total <= self.max_bytes:
                break
            os.unlink(os.path.join(self.folder, name))  # open descriptors stay readable
            total -= size


class Store:
    """A dataset root opened by URI: the trainer's :class:`duet.index.ByteSource` (paths
    relative to the root)."""

    def __init__(self, root: str, *, endpoint_url: str | None = None, threads: int = 32,
                 retries: int = 4, backoff: float = 0.05, cache_bytes: int = 256 << 20,
                 shard_cache: str | None = None, shard_cache_bytes: int = 100 << 30):  # fmt: skip
        self.root = root.rstrip("/") if "://" in root else os.path.abspath(root)
        self.protocol = root.split("://", 1)[0] if "://" in root else "file"
        self.endpoint = endpoint_url or os.environ.get("AWS_ENDPOINT_URL")
        self._fs = None
        self._fs_pid = 0
        self.retries, self.backoff = retries, backoff
        self.cache = ByteCache(cache_bytes)
        self.threads = threads
        self._pool: ThreadPoolExecutor | None = None
        self._pid = 0
        self.retried = 0
        self.shard_cache_folder, self.shard_cache_bytes = shard_cache, shard_cache_bytes
        self._shards: ShardCache | None = None
        self._local = LocalFiles()
        self._shards_pid = 0

    @property
    def fs(self):
        """This process's filesystem client (s3fs/gcsfs clients are not fork-safe, so a forked
        DataLoader worker opens its own)."""
        if self._fs is None or self._fs_pid != os.getpid():
            import fsspec

            options = {}
            if self.protocol == "s3":  # as many connections as reads in flight (default 10)
                options["config_kwargs"] = {
                    "max_pool_connections": self.threads,
                    "retries": {"max_attempts": S3_MAX_ATTEMPTS},
                }
                if self.endpoint:
                    options["client_kwargs"] = {"endpoint_url": self.endpoint}
            self._fs = fsspec.filesystem(self.protocol, skip_instance_cache=True, **options)
            self._fs_pid = os.getpid()
        return self._fs

    @property
    def pool(self) -> ThreadPoolExecutor:
        """The reader threads of this process (a forked DataLoader worker gets its own)."""
        if self._pool is None or self._pid != os.getpid():
            self._pool = ThreadPoolExecutor(
                max_workers=self.threads, thread_name_prefix="duet-read"
            )
            self._pid = os.getpid()
        return self._pool

    @property
    def shards(self) -> ShardCache | None:
        """This process's shard cache (its download threads do not survive a fork)."""
        if not self.shard_cache_folder or self.protocol == "file":
            return None
        if self._shards is None or self._shards_pid != os.getpid():
            self._shards = ShardCache(self.shard_cache_folder, self.shard_cache_bytes)
            self._shards_pid = os.getpid()
        return self._shards

    def path(self, relative: str) -> str:
        return f"{self.root}/{relative.lstrip('/')}"

    def _retry(self, what: str, fn):
        for attempt in range(self.retries + 1):
            try:
                return fn()
            except FileNotFoundError:
                raise
            except TRANSIENT as exc:
                if attempt == self.retries:
                    raise
                self.retried += 1
                delay = self.backoff * 2**attempt
                log.warning("%s failed (%s); retry %d in %.2f s", what, exc, attempt + 1, delay)
                time.sleep(delay)
        raise AssertionError("unreachable")

    def glob(self, pattern: str) -> list[str]:
        """Paths relative to the root matching ``pattern``, sorted."""
        found = self._retry(pattern, lambda: self.fs.glob(self.path(pattern)))
        prefix = self.root.split("://", 1)[-1].rstrip("/") + "/"
        return sorted(p.split("://", 1)[-1][len(prefix) :] for p in found)

    def exists(self, relative: str) -> bool:
        return self._retry(relative, lambda: self.fs.exists(self.path(relative)))

    def read(self, relative: str) -> bytes:
        return self._retry(relative, lambda: self.fs.cat_file(self.path(relative)))

    def read_range(self, relative: str, offset: int, size: int) -> bytes:
        """One ranged read (cached)."""
        key = (relative, offset, size)
        cached = self.cache.get(key)
        if cached is not None:
            return cached
        path = self.path(relative)
        shards = self.shards
        if shards is not None:
            local = shards.pread(path, offset, size)
            if local is not None and len(local) == size:
                return local
            shards.fetch(
                path, lambda uri, target: self._retry(uri, lambda: self.fs.get_file(uri, target))
            )

        def read() -> bytes:
            if self.protocol == "file":
                return self._local.pread(path, offset, size)
            return self.fs.cat_file(path, start=offset, end=offset + size)

        data = self._retry(f"{relative}@{offset}", read)
        if len(data) != size:
            raise OSError(f"short read of {relative}: {len(data)} of {size} bytes at {offset}")
        self.cache.put(key, data)
        return data

    def read_ranges(self, requests: Iterable[tuple[str, int, int]]):
        """Futures of many ranged reads, all in flight at once."""
        return [self.pool.submit(self.read_range, *r) for r in requests]

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)

    def __getstate__(self):  # DataLoader workers re-open the store in their own process
        return {"root": self.root, "endpoint": self.endpoint,
                "threads": self.threads, "retries": self.retries, "backoff": self.backoff,
                "cache_bytes": self.cache.max_bytes, "shard_cache": self.shard_cache_folder,
                "shard_cache_bytes": self.shard_cache_bytes}  # fmt: skip

    def __setstate__(self, state):
        self.__init__(state["root"], endpoint_url=state["endpoint"], threads=state["threads"],
                      retries=state["retries"], backoff=state["backoff"],
                      cache_bytes=state["cache_bytes"], shard_cache=state["shard_cache"],
                      shard_cache_bytes=state["shard_cache_bytes"])  # fmt: skip
