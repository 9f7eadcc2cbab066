"""The trainer's byte store: the bounded byte cache, and the shard cache that fetches a remote
shard once and then reads it locally."""

import os

import numpy as np

from duet.training import data
from duet.training.store import ByteCache, Store
from tests.support.s3 import BUCKET


def test_byte_cache_is_bounded_and_least_recently_used():
    cache = ByteCache(10)
    cache.put(("a",), b"12345")
    cache.put(("b",), b"12345")
    assert cache.get(("a",)) == b"12345"
    cache.put(("c",), b"12345")
    assert cache.get(("b",)) is None and cache.get(("a",)) is not None


def test_shard_cache_is_bounded_and_drops_the_oldest_fetch(tmp_path):
    from duet.training.store import ShardCache

    cache = ShardCache(str(tmp_path / "c"), max_bytes=250)

    def download(uri, target):
        with open(target, "wb") as f:
            f.write(uri.encode()[:1] * 100)

    for i, uri in enumerate(("a://1", "b://2", "c://3")):
        cache.fetch(uri, download)
        cache._pool.shutdown(wait=True)
        cache._pool = type(cache._pool)(max_workers=1)
        os.utime(cache.local(uri), (1000 + i, 1000 + i))
    assert cache.fetched == 3 and cache.pread("a://1", 0, 4) is None
    assert cache.pread("b://2", 10, 4) == b"bbbb" and cache.pread("c://3", 0, 2) == b"cc"
    assert sorted(os.listdir(tmp_path / "c")) == sorted(
        [os.path.basename(cache.local("b://2")), os.path.basename(cache.local("c://3"))]
    )


def test_shard_cache_fetches_a_shard_once_then_reads_it_locally(dataset, s3, tmp_path):
    import time

    remote = s3.upload(dataset, "shard-cache")
    store = Store(remote, endpoint_url=s3.endpoint, cache_bytes=0,
                  shard_cache=str(tmp_path / "shards"))  # fmt: skip
    root = data.Root(store)
    track, member = next(iter(root.members["mel-alonso"].items()))
    first = root.read_window("mel-alonso", track, 0, 8)
    deadline = time.monotonic() + 30
    while store.shards.fetched == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert store.shards.fetched == 1
    s3.client.delete_object(Bucket=BUCKET, Key=f"shard-cache/{member.shard}")
    assert np.array_equal(root.read_window("mel-alonso", track, 0, 8), first)  # local now
    root.read_window("mel-alonso", track, 0, member.length, verify=True)  # whole member, sha256
