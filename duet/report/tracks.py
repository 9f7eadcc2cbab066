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
from duet.report.common import Context
from duet.report.sample import Sample, column_names, pick, read_sample

BASE_COLUMNS = ["track_id", "stream", "shard", "offset", "size", "payload_offset", "dtype",
                "frames", "n_mels", "duration"]  # fmt: skip
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
        columns = BASE_COLUMNS + [c for c in SOURCE_COLUMNS if c in present]
        ctx.shared["index"] = read_sample(uri, schemas.AUDIO_INDEX, columns, ctx.max_rows,
                                          ctx.seed)  # fmt: skip
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


def _sidecar(root: str, row: dict) -> dict | None:
    """The sidecar that follows the member of index row ``row``, or None if it is not there."""
    uri = layout.at(root, row["shard"])
    start = row["offset"] + -(-row["size"] // tarfile.BLOCKSIZE) * tarfile.BLOCKSIZE
    head = storage.read_range(uri, start, SIDECAR_READ)
    if len(head) < tarfile.BLOCKSIZE:
        return None
    try:
        info = tarfile.TarInfo.frombuf(head[: tarfile.BLOCKSIZE], "utf-8", "strict")
    except tarfile.TarError:
        return None
    if not info.name.endswith(".json"):
        return None
    body = head[tarfile.BLOCKSIZE : tarfile.BLOCKSIZE + info.size]
    if len(body) < info.size:
        body += storage.read_range(uri, start + len(head), info.size - len(body))
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
            found = list(pool.map(lambda r: _sidecar(ctx.root, r), picked))
        ctx.shared["sidecars"] = [s for s in found if s is not None]
    return ctx.shared["sidecars"]


def read_frames(root: str, row: dict, start: int, count: int) -> np.ndarray:
    """Frames ``[start, start + count)`` of a mel member (float16 ``[frames, n_mels]``) by one
    ranged read (the same arithmetic as :meth:`duet.index.AudioIndex.read_frames`)."""
    width = row["n_mels"]
    item = np.dtype(row["dtype"]).itemsize
    offset = row["offset"] + row["payload_offset"] + start * width * item
    data = storage.read_range(layout.at(root, row["shard"]), offset, count * width * item)
    return np.frombuffer(data, np.dtype(row["dtype"]).newbyteorder("<")).reshape(count, width)
