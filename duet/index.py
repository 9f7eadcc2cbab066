"""Read published audio shards through their index: one ranged read per member or crop.

    index = AudioIndex.open("out/")            # refuses roots without a readable _SUCCESS
    wav = index.load("duet:track:00003", "wav-22050")          # int16 [samples]
    patch = index.read_frames("duet:track:00003", "mel-alonso", start=100, count=256)

The index is one :class:`Member` per (stream, track): where its bytes lie in which shard and
how to read a window of it. Members are time-major ``.npy`` arrays (``[frames, n_mels]`` mel,
``[samples]`` int16 waveforms), so any crop is one contiguous byte range. Bytes come from a
:class:`ByteSource`: :class:`StorageSource` (local files through kept descriptors, ``gs://``
and ``s3://`` through Beam's FileSystems) here, :class:`duet.training.store.Store` (fsspec with
many reads in flight, retries, a byte cache and a whole-shard cache) in the trainer, whose data
layer (:class:`duet.training.data.Root`) is this same reader with the tables it needs added.
"""

from __future__ import annotations

import io
import json
import os
import threading
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Protocol

import numpy as np
import pyarrow as pa
import soundfile

from duet import layout, publish, schemas, storage
from duet.hashing import first_bad_block, sha256_hex

STD_FLOOR = 1e-5
"""The smallest standard deviation a reader divides by (see :meth:`AudioIndex.stats`)."""


class MemberError(ValueError):
    """A member is not in the index, or a requested window lies outside it."""


class IntegrityError(MemberError):
    """A member's bytes do not match the sha256 recorded in the index."""


class ByteSource(Protocol):
    """Reads below one dataset root, by paths relative to it (``index/part-00000.parquet``)."""

    root: str

    def read(self, relative: str) -> bytes: ...

    def read_range(self, relative: str, offset: int, size: int) -> bytes: ...

    def exists(self, relative: str) -> bool: ...

    def glob(self, pattern: str) -> list[str]: ...


class LocalFiles:
    """Read-only descriptors kept open by path, for ``pread`` without an ``open`` per read
    (safe across threads: ``pread`` has no shared file position)."""

    def __init__(self) -> None:
        self._fds: dict[str, int] = {}
        self._lock = threading.Lock()

    def pread(self, path: str, offset: int, size: int) -> bytes:
        fd = self._fds.get(path)
        if fd is None:
            fd = os.open(path, os.O_RDONLY)
            with self._lock:
                if path in self._fds:
                    os.close(fd)
                fd = self._fds.setdefault(path, fd)
        return os.pread(fd, size, offset)


class StorageSource:
    """A dataset root read through :mod:`duet.storage`: local paths by ``pread`` on kept
    descriptors, object stores by one ranged request per read."""

    def __init__(self, root: str):
        self.root = root
        self._local = None if storage.is_remote(root) else LocalFiles()

    def uri(self, relative: str) -> str:
        return layout.at(self.root, relative)

    def read(self, relative: str) -> bytes:
        return storage.read_bytes(self.uri(relative))

    def read_range(self, relative: str, offset: int, size: int) -> bytes:
        uri = self.uri(relative)
        if self._local is not None:
            data = self._local.pread(storage.local_path(uri), offset, size)
        else:
            data = storage.read_range(uri, offset, size)
        if len(data) != size:
            raise OSError(f"short read of {relative}: {len(data)} of {size} bytes at {offset}")
        return data

    def exists(self, relative: str) -> bool:
        return storage.exists(self.uri(relative))

    def glob(self, pattern: str) -> list[str]:
        prefix = storage.join(self.root, "")
        return sorted(u[len(prefix) :] for u in storage.glob(self.uri(pattern)))


@dataclass(frozen=True, slots=True)
class Member:
    """One array member of one shard: its bytes are ``[offset, offset + size)`` of ``shard``
    (a path relative to the root), the array's ``[offset + payload_offset, offset + size)``,
    ``length`` rows of ``width`` values (frames × n_mels, or samples × 1) of ``dtype``."""

    shard: str
    offset: int
    size: int
    payload_offset: int
    format: str  # npy | flac
    dtype: str
    length: int
    width: int
    sha256: str
    split: str | None = None
    block_size: int | None = None
    block_digests: bytes | None = None

    @property
    def start(self) -> int:
        """Byte offset of the array payload within the shard."""
        return self.offset + self.payload_offset

    def span(self, start: int, count: int) -> tuple[int, int]:
        """(offset, size) of rows ``[start, start + count)`` within the shard."""
        if self.format != "npy":
            raise MemberError(f"stored as {self.format}; crops need --wav-format npy")
        if start < 0 or count < 0 or start + count > self.length:
            raise MemberError(f"window [{start}, {start + count}) outside [0, {self.length})")
        row = self.width * np.dtype(self.dtype).itemsize
        return self.start + start * row, count * row

    def blocks_around(self, offset: int, size: int) -> tuple[int, int]:
        """(offset, size) of the integrity blocks that hold the shard bytes ``[offset, offset +
        size)`` of this member's payload (needs ``block_size``)."""
        block = self.block_size or 0
        first = (offset - self.start) // block
        last = (offset + size - 1 - self.start) // block
        lo = self.start + first * block
        return lo, min(self.start + (last + 1) * block, self.offset + self.size) - lo

    def check_blocks(self, data: bytes, offset: int, where: str) -> None:
        """Raise IntegrityError unless ``data`` (whole blocks from shard ``offset``, as
        :meth:`blocks_around` gives) matches the block digests recorded in the index."""
        block = self.block_size or 0
        bad = first_bad_block(
            data, (offset - self.start) // block, self.block_digests or b"", block
        )
        if bad is not None:
            raise IntegrityError(f"{where}: block {bad} of its bytes in {self.shard} does not "
                                 "match the index (the shard is corrupt)")  # fmt: skip

    def rows(self, data: bytes | memoryview, count: int) -> np.ndarray:
        """``count`` rows from their bytes: ``[count, width]`` (mel) or ``[count]`` (waveform)."""
        array = np.frombuffer(data, dtype=np.dtype(self.dtype).newbyteorder("<"))
        return array.reshape(count, self.width) if self.width > 1 else array

    @classmethod
    def of(cls, row: dict[str, Any]) -> Member:
        """The member of one audio index row (schema ``AUDIO_INDEX``)."""
        mel = row["frames"] is not None
        return cls(row["shard"], row["offset"], row["size"], row["payload_offset"], row["format"],
                   row["dtype"], row["frames"] if mel else row["samples"],
                   row["n_mels"] or 1, row["sha256"], row["split"], row.get("block_size"),
                   row.get("block_digests"))  # fmt: skip


@dataclass(frozen=True)
class BandStatistics:
    """Per-band mean and std of a mel profile over the split the shards job recorded, as the
    readers standardise with them: float32, ``std`` at least :data:`STD_FLOOR`."""

    mean: np.ndarray  # float32 [n_mels]
    std: np.ndarray  # float32 [n_mels], >= STD_FLOOR
    frames: int
    split: str
    profile: dict[str, Any]


SHARDS_BY = "duet shards"


def read_parts(source: ByteSource, published: publish.Published, folder: str,
               schema: pa.Schema) -> pa.Table:  # fmt: skip
    """Every Parquet part of ``folder`` (``index``, ``failures``) that the root's ``_SUCCESS``
    lists, validated against ``schema``."""
    parts = published.parts(folder)
    tables = [schemas.conform(schemas.parquet_from_bytes(source.read(p)), schema, what=p)
              for p in parts]  # fmt: skip
    return pa.concat_tables(tables) if tables else schema.empty_table()


class AudioIndex:
    """A published dataset root's audio: its members by stream and track, read from ``source``
    through the root's ``_SUCCESS`` (NotPublished, one line, when it has none)."""

    def __init__(self, source: ByteSource):
        self.source = source
        self.published = publish.open_source(source, "", SHARDS_BY)
        self.success: dict[str, Any] = self.published.body
        self.members: dict[str, dict[str, Member]] = {}
        for row in read_parts(
            source, self.published, layout.INDEX, schemas.AUDIO_INDEX
        ).to_pylist():
            self.members.setdefault(row["stream"], {})[row["track_id"]] = Member.of(row)
        self._stats: dict[str, BandStatistics] = {}
        self._verified: set[tuple[str, str]] = set()

    @classmethod
    def open(cls, root: str) -> AudioIndex:
        """The index of ``root`` (local path, ``gs://``, ``s3://``) read through duet.storage."""
        return cls(StorageSource(root))

    @property
    def root(self) -> str:
        return self.source.root

    @property
    def streams(self) -> list[str]:
        return sorted(self.members)

    @cached_property
    def track_ids(self) -> list[str]:
        """Every indexed track, sorted (computed once)."""
        return sorted({t for tracks in self.members.values() for t in tracks})

    def __len__(self) -> int:
        return len(self.track_ids)

    def entry(self, track_id: str, stream: str) -> Member:
        """The member of ``track_id`` in ``stream``; MemberError says which of the two is unknown."""
        member = self.members.get(stream, {}).get(track_id)
        if member is not None:
            return member
        if stream not in self.members:
            raise MemberError(f"unknown stream {stream!r}; published: {self.streams}")
        raise MemberError(f"track {track_id!r} has no {stream} member: it is not in the index "
                          "(see failures/)")  # fmt: skip

    def read_member(self, track_id: str, stream: str, *, verify: bool = False) -> bytes:
        """The member's bytes by one ranged read; ``verify`` checks its sha256."""
        m = self.entry(track_id, stream)
        data = self.source.read_range(m.shard, m.offset, m.size)
        if verify and sha256_hex(data) != m.sha256:
            raise IntegrityError(f"sha256 mismatch for {track_id!r} in {m.shard} (the shard "
                                 "is corrupt)")  # fmt: skip
        return data

    def load(self, track_id: str, stream: str, *, verify: bool = False) -> np.ndarray:
        """The whole array: int16 ``[samples]`` for wav streams, float16 ``[frames, n_mels]`` for mel."""
        m = self.entry(track_id, stream)
        data = self.read_member(track_id, stream, verify=verify)
        if m.format == "flac":
            return soundfile.read(io.BytesIO(data), dtype="int16")[0]
        return np.load(io.BytesIO(data), allow_pickle=False)

    def read_frames(self, track_id: str, stream: str, start: int, count: int, *,
                    verify: bool = False) -> np.ndarray:  # fmt: skip
        """Frames (mel) or samples (wav) ``[start, start + count)`` as stored (float16 / int16),
        with one small ranged read.

        ``verify``: the read is widened to the integrity blocks the crop overlaps and each is
        checked against its digest in the index (IntegrityError on a mismatch). Members of an
        index written before block checksums existed are read whole and checked against their
        sha256 on their first verified read in this process, and trusted afterwards."""
        return self._window(self.entry(track_id, stream), track_id, stream, start, count, verify)

    def read_window(self, stream: str, track_id: str, start: int, count: int,
                    verify: bool = False) -> np.ndarray:  # fmt: skip
        """:meth:`read_frames` as float32, waveforms scaled to [-1, 1) (int16 / 32768)."""
        m = self.entry(track_id, stream)
        array = self._window(m, track_id, stream, start, count, verify).astype(np.float32)
        if m.dtype == "int16":
            array /= 32768.0
        return array

    def _window(self, m: Member, track_id: str, stream: str, start: int, count: int,
                verify: bool) -> np.ndarray:  # fmt: skip
        try:
            offset, size = m.span(start, count)
        except MemberError as exc:
            raise MemberError(f"{track_id!r} in {stream}: {exc}") from None
        if not verify or size == 0:
            return m.rows(self.source.read_range(m.shard, offset, size), count)
        where = f"{track_id!r} in {stream}"
        if m.block_digests is not None and m.block_size:
            lo, span = m.blocks_around(offset, size)
            data = self.source.read_range(m.shard, lo, span)
            m.check_blocks(data, lo, where)
            return m.rows(memoryview(data)[offset - lo : offset - lo + size], count)
        if (stream, track_id) in self._verified:  # an index without block checksums:
            return m.rows(self.source.read_range(m.shard, offset, size), count)
        whole = self.read_member(track_id, stream, verify=True)  # the whole member, once
        self._verified.add((stream, track_id))
        return m.rows(memoryview(whole)[offset - m.offset : offset - m.offset + size], count)

    def stats(self, profile: str) -> BandStatistics:
        """Per-band mean and std of a mel profile (``stats/mel-<profile>.json``), float32.

        One rule for every reader: ``std`` is floored at :data:`STD_FLOOR`, so a band that never
        varies in the training split (silence above a source's cutoff) standardises to 0 instead
        of dividing by zero. The file keeps the exact float64 values.
        """
        if profile not in self._stats:
            body = json.loads(self.source.read(self.published.name(layout.mel_stats(profile))))
            std = np.maximum(np.asarray(body["std"], np.float32), np.float32(STD_FLOOR))
            self._stats[profile] = BandStatistics(np.asarray(body["mean"], np.float32), std,
                                                  int(body["frames"]), body["split"], body["profile"])  # fmt: skip
        return self._stats[profile]

    def failures(self) -> pa.Table:
        """Every input track that is not in the index, with its stage and reason."""
        return read_parts(self.source, self.published, layout.FAILURES, schemas.FAILURES)
