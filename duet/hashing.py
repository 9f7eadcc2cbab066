"""Stable hashes: shard assignment, member keys and seeds never depend on Python's ``hash()``."""

from __future__ import annotations

import hashlib
import re

import numpy as np
import xxhash

_SLUG_UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")


def stable_hash64(text: str) -> int:
    """A 64-bit hash of ``text`` that is identical on every machine, process and Python version."""
    return int.from_bytes(hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest(), "big")


def shard_of(track_id: str, num_shards: int) -> int:
    """Shard number of a track: a stable hash, so adding tracks never moves existing ones."""
    return stable_hash64(track_id) % num_shards


def member_key(track_id: str) -> str:
    """A tar-safe WebDataset key for ``track_id``: a readable slug plus 16 hex digits of sha256.

    The key never contains '.', '/' or anything outside ``[A-Za-z0-9_-]``, so a hostile id
    (``../x``, NUL, 10 kB, unicode) can never become a path; the real id lives in the sidecar.
    """
    slug = _SLUG_UNSAFE.sub("_", track_id).strip("_")[:40] or "track"
    digest = hashlib.sha256(track_id.encode("utf-8")).hexdigest()[:16]
    return f"{slug}-{digest}"


def derive_seed(*parts: object) -> int:
    """A 63-bit seed derived from (seed, epoch, strategy, shard, ...) with a stable hash."""
    text = "\x1f".join(str(p) for p in parts)
    return int.from_bytes(hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest(), "big") >> 1


def sha256_hex(data: bytes | bytearray | memoryview) -> str:
    return hashlib.sha256(data).hexdigest()


FNV_OFFSET = 0xCBF29CE484222325
FNV_PRIME = 0x100000001B3
_MASK64 = 0xFFFFFFFFFFFFFFFF


def mix64_py(x: int) -> int:
    """splitmix64's finaliser: a bijection of 64-bit integers that spreads every input bit."""
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK64
    return x ^ (x >> 31)


def track_key(track_id: str) -> int:
    """64-bit key of an id for the co-occurrence job: FNV-1a of its UTF-8 bytes, then mix64.

    Cheap enough to compute for every playlist entry in compiled code
    (:func:`duet.pipelines.csr.hash_strings` computes the same value).
    """
    h = FNV_OFFSET
    for byte in track_id.encode("utf-8"):
        h = ((h ^ byte) * FNV_PRIME) & _MASK64
    return mix64_py(h)


def tie_key(seed: int, anchor_id: str, neighbor_id: str) -> int:
    """Rank of a neighbour among equal counts (smaller first); see ``cooc_kernels``."""
    return mix64_py(mix64_py(seed & _MASK64) ^ track_key(anchor_id) ^ track_key(neighbor_id))


BLOCK_BYTES = 16 << 10
"""Bytes per integrity block of an array member's payload (see ``schemas.AUDIO_INDEX``):
small enough that a verified crop reads little beyond itself (measured in
``tests/benchmarks/bench_dataloader.py``), large enough that the index holds a few dozen
digests per 30 s track."""


def block_digests(payload: bytes | memoryview, block_size: int = BLOCK_BYTES) -> bytes:
    """XXH3-64 of each ``block_size`` bytes of ``payload`` (the last block may be shorter),
    packed little-endian uint64: what the index records so that a crop is verified by the
    blocks it overlaps. XXH3 (Collet, xxHash; a corrupt block passes with probability 2^-64)
    hashes ~5.5 GB/s per core here, 7x zlib's CRC-32, which keeps verified reads within a few
    % of unverified ones."""
    view = memoryview(payload)
    digests = [xxhash.xxh3_64_intdigest(view[i : i + block_size])
               for i in range(0, len(view), block_size)]  # fmt: skip
    return np.asarray(digests, dtype="<u8").tobytes()


def first_bad_block(data: bytes | memoryview, first: int, digests: bytes,
                    block_size: int) -> int | None:  # fmt: skip
    """The number of the first block of ``data`` (whole blocks ``first``, ``first + 1``, ...
    of a payload) whose XXH3-64 differs from ``digests`` (:func:`block_digests`), or None."""
    view = memoryview(data)
    for i, at in enumerate(range(0, len(view), block_size)):
        k = 8 * (first + i)
        if xxhash.xxh3_64_intdigest(view[at : at + block_size]) != int.from_bytes(
            digests[k : k + 8], "little"
        ):
            return first + i
    return None
