"""The per-track view the audio and feature sections share: a sample of the audio index, the
``.json`` sidecars of a few of its tracks, and ranged reads of mel frames.

Each member in a shard is followed by its ``<key>.json`` sidecar (see
``duet.pipelines.audio.tar``): its tar header starts at the member's end rounded up to a 512-byte
block, so a sidecar costs one small ranged read and no shard scan.
"""

from __future__ import annotations

import json
import tarfile
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from duet import layout, schemas, storage
from duet.index import Member, StorageSource
from duet.report.common import Context
from duet.report.sample import Sample, column_names, pick, read_sample

BASE_COLUMNS = ["track_id", "stream", "shard", "offset", "size", "payload_offset", "format",
                "dtype", "samples", "frames", "n_mels", "duration", "sha256", "split"]  # fmt: skip
"""Enough for :meth:`duet.index.Member.of` (where each member lies) and the durations."""
INDEX_ROWS = 250_000
"""Index rows read at most (tracks × streams): ~50 000 tracks of a five-stream root."""
SOURCE_COLUMNS = ["decoder", "source_duration", "declared_duration", "length_check",
                  "decode_note", "clipped", "gain"]  # fmt: skip
"""Per-track source columns of newer indexes (how the source was decoded, clipping, gain)."""
SIDECARS = 200
"""Sidecars read for source formats (one small ranged read each)."""
SIDECAR_READ = 2048


def index_sample(ctx: Context) -> Sample:
    """The audio index's base columns (and source columns where the index has them), sampled
    to the context's row budget; read once and shared between sections."""
    if "index" not in ctx.shared:
        uri = ctx.at(layout.INDEX)
        present = set(column_names(uri))
        declared = set(schemas.AUDIO_INDEX.names)
        columns = BASE_COLUMNS + [c for c in SOURCE_COLUMNS if c in present and c in declared]
        ctx.shared["index"] = read_sample(uri, schemas.AUDIO_INDEX, columns,
                                          min(ctx.max_rows, INDEX_ROWS), ctx.seed)  # fmt: skip
    return ctx.shared["index"]


def stream_rows(sample: Sample, stream: str) -> pa.Table:
    table = sample.table
    return table.filter(pc.equal(table.column("stream"), stream))


def example_tracks(ctx: Context, rows: pa.Table) -> list[str]:
    """The few tracks whose audio the report shows, drawn from the index sample (seeded)."""
    if "example_tracks" not in ctx.shared:
        ids = sorted(set(rows.column("track_id").to_pylist()))
        ctx.shared["example_tracks"] = pick(ids, ctx.examples, ctx.seed, "example-tracks")
    return ctx.shared["example_tracks"]


def source(ctx: Context) -> StorageSource:
    """The root's bytes, read as :mod:`duet.index` reads them (descriptors kept open)."""
    return ctx.shared.setdefault("source", StorageSource(ctx.root))


def _sidecar(source: StorageSource, row: dict) -> dict | None:
    """The sidecar that follows the member of index row ``row``, or None if it is not there.
    The read stays inside the tar: after a sidecar's data come at least the two zero blocks
    that end the archive."""
    member = Member.of(row)
    start = member.offset + -(-member.size // tarfile.BLOCKSIZE) * tarfile.BLOCKSIZE
    head = source.read_range(member.shard, start, SIDECAR_READ)
    try:
        info = tarfile.TarInfo.frombuf(head[: tarfile.BLOCKSIZE], "utf-8", "strict")
    except tarfile.TarError:
        return None
    if not info.name.endswith(".json"):
        return None
    body = head[tarfile.BLOCKSIZE : tarfile.BLOCKSIZE + info.size]
    if len(body) < info.size:
        body += source.read_range(member.shard, start + len(head), info.size - len(body))
    try:
        return json.loads(body)
    except ValueError:
        return None


def sidecars(ctx: Context, rows: pa.Table) -> list[dict]:
    """The sidecars of up to SIDECARS tracks of ``rows`` (one stream's index rows), seeded."""
    if "sidecars" not in ctx.shared:
        chosen = pick(list(range(rows.num_rows)), SIDECARS, ctx.seed, "sidecars")
        picked = rows.take(pa.array(chosen, pa.int64())).to_pylist() if chosen else []
        workers = 16 if storage.is_remote(ctx.root) else 1
        with ThreadPoolExecutor(workers) as pool:
            found = list(pool.map(lambda r: _sidecar(source(ctx), r), picked))
        ctx.shared["sidecars"] = [s for s in found if s is not None]
    return ctx.shared["sidecars"]


def read_frames(ctx: Context, row: dict, start: int, count: int) -> np.ndarray:
    """Frames ``[start, start + count)`` of the member of index row ``row``, as stored (float16
    ``[frames, n_mels]`` for mel), by one ranged read through :class:`duet.index.Member`."""
    member = Member.of(row)
    offset, size = member.span(start, count)
    return member.rows(source(ctx).read_range(member.shard, offset, size), count)
