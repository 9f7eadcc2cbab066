"""``duet cooccurrence``: playlist (or artist) co-occurrence counts and top-K neighbours.

Co-occurrence of two tracks is the number of groups (playlists, or artists with
``--group-by artist``) that contain both. Shape of the job::

    playlists table ──row-group splits──> Encode: CSR over a chunk vocabulary, 64-bit id keys,
      (or track_meta ──Partition(artist)──> Group artists)      │ repeats and over-long lists removed
                                                                └─> (block, sub-chunk) per block
    GroupByKey(block) ──> BlockTopK: merge chunks, C = BᵀB row by row for the block's anchor
                          tracks (compiled, all cores), write topk/counts part files
    reports ──CombineGlobally──> finalize: the parts published as one generation (duet.publish)

Anchor tracks are split into ``--blocks`` by a stable hash of their id; a block receives
every playlist that holds one of its anchors (whole, since its other tracks are the
neighbours). Work per block is Σ over its anchors of Σ_{p∋a}|p|, spread evenly by the hash,
so a hot track is one anchor among many, never a key of its own; no step holds all pairs,
and with several blocks no step holds all playlists. On one machine ``--blocks 1`` (the
default) is fastest: one pass, every core in the compiled kernel.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Required, TypedDict

import apache_beam as beam
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from apache_beam.metrics import Metrics

from duet import layout, progress, publish, schemas
from duet.pipelines import csr
from duet.pipelines.cooccurrence import kernels
from duet.pipelines.cooccurrence.inputs import input_splits, read_split

FORMAT_VERSION = 2
"""2: parts stored under tagged names listed in the folder's ``_SUCCESS`` (duet.publish)."""
GROUPINGS = ("playlist", "artist")


class CoocCounts(TypedDict, total=False):
    groups_read: int
    groups_used: int
    groups_too_long: int
    groups_too_short: int
    entries_used: int
    repeated_entries: int
    invalid_entries: int
    anchor_tracks: Required[int]
    topk_rows: Required[int]
    pairs: int  # with counts


class CoocSummary(layout.Summary[CoocCounts]):
    """The ``_SUCCESS`` of ``cooc/`` (or ``cooc_artist/``)."""

    tie_rule: str
    tables: list[str]


@dataclass(frozen=True)
class CoocJob:
    source: str  # playlists table, or track_meta with group_by="artist"
    output: str
    top_k: int = 10
    min_count: int = 1
    counts: bool = False
    seed: int = 0
    blocks: int = 1
    group_by: str = "playlist"
    max_group_tracks: int = 10_000
    rows_per_chunk: int = 50_000
    threads: int | None = None
    commit: publish.Commit = publish.Commit()

    @property
    def folder(self) -> str:
        return layout.at(self.output, layout.COOC[self.group_by])

    def config(self) -> dict:
        return {"top_k": self.top_k, "min_count": self.min_count, "counts": self.counts,
                "seed": self.seed, "blocks": self.blocks, "group_by": self.group_by,
                "max_group_tracks": self.max_group_tracks}  # fmt: skip


@dataclass
class Chunk:
    """Some playlists as CSR rows over a chunk-local vocabulary of track ids."""

    indptr: np.ndarray  # int64[n_playlists + 1]
    indices: np.ndarray  # int32[n_entries], into the vocabulary
    keys: np.ndarray  # uint64[n_vocab], duet.hashing.track_key of each id
    ids: pa.Array  # string[n_vocab]
    stats: Counter = field(default_factory=Counter)

    @property
    def n_rows(self) -> int:
        return len(self.indptr) - 1


# ---------------------------------------------------------------- pure functions


def encode(lists: pa.Array, max_tracks: int) -> Chunk:
    """CSR of a ``list<string>`` column: nulls/empty ids and repeats removed, over-long and
    under-two-track lists skipped (counted in ``stats``)."""
    stats: Counter = Counter()
    lists = lists.cast(pa.list_(pa.string()))
    if isinstance(lists, pa.ChunkedArray):
        lists = pa.concat_arrays(lists.chunks) if lists.num_chunks else pa.array([], lists.type)
    lists = lists.filter(pc.is_valid(lists))
    stats["groups_read"] = len(lists)
    lengths = pc.list_value_length(lists).to_numpy(zero_copy_only=False)
    too_long = lengths > max_tracks
    stats["groups_too_long"] = int(too_long.sum())
    lists = lists.filter(pa.array(~too_long))
    values = pc.list_flatten(lists)
    parents = pc.list_parent_indices(lists).to_numpy(zero_copy_only=False)
    valid = pc.and_(pc.is_valid(values), pc.greater(pc.utf8_length(values), 0)).fill_null(False)
    stats["invalid_entries"] = int(len(values) - pc.sum(valid).as_py() if len(values) else 0)
    values, parents = values.filter(valid), parents[valid.to_numpy(zero_copy_only=False)]
    encoded = pc.dictionary_encode(values)
    indices = encoded.indices.to_numpy(zero_copy_only=False).astype(np.int32)
    ids = encoded.dictionary
    indptr = np.zeros(len(lists) + 1, np.int64)
    np.cumsum(np.bincount(parents, minlength=len(lists)), out=indptr[1:])
    indptr, indices, repeats = csr.dedupe_rows(indptr, indices, len(ids))
    stats["repeated_entries"] = int(repeats)
    sizes = np.diff(indptr)
    short = sizes < 2
    stats["groups_too_short"] = int(short.sum())
    if short.any():
        indptr, indices = csr.take_rows(indptr, indices, np.flatnonzero(~short))
    stats["groups_used"] = len(indptr) - 1
    stats["entries_used"] = len(indices)
    return Chunk(indptr, indices, csr.string_keys(ids), ids, stats)


def split_blocks(chunk: Chunk, blocks: int):
    """Yield (block, sub-chunk): each playlist goes to every block one of its tracks is in."""
    if blocks == 1:
        yield 0, chunk
        return
    vocab_block = (chunk.keys % np.uint64(blocks)).astype(np.int32)
    member = kernels.row_blocks(chunk.indptr, chunk.indices, vocab_block, blocks)
    for b in range(blocks):
        rows = np.flatnonzero(member[:, b])
        if not len(rows):
            continue
        indptr, indices = csr.take_rows(chunk.indptr, chunk.indices, rows)
        used, local = np.unique(indices, return_inverse=True)
        yield b, Chunk(indptr, local.astype(np.int32), chunk.keys[used],
                       chunk.ids.take(pa.array(used)))  # fmt: skip


class HashCollision(RuntimeError):
    """Two different ids share a 64-bit key (odds ~1e-7 at 2 M tracks); never silent."""


def merge(chunks: list[Chunk]):
    """One CSR over the merged vocabulary (sorted by key): (indptr, indices, keys, ids)."""
    keys = np.unique(np.concatenate([c.keys for c in chunks]))
    where = [np.searchsorted(keys, c.keys).astype(np.int32) for c in chunks]
    flat = np.concatenate(where)
    all_ids = pa.concat_arrays([c.ids.cast(pa.string()) for c in chunks])
    first = np.empty(len(keys), np.int64)
    first[flat[::-1]] = np.arange(len(flat))[::-1]
    ids = all_ids.take(pa.array(first))
    clash = pc.not_equal(ids.take(pa.array(flat)), all_ids).to_numpy(zero_copy_only=False)
    if clash.any():
        i = int(np.flatnonzero(clash)[0])
        raise HashCollision(f"ids {all_ids[i].as_py()!r} and {ids[int(flat[i])].as_py()!r} "
                            "share a 64-bit key; please report this")  # fmt: skip
    indptr = np.zeros(sum(c.n_rows for c in chunks) + 1, np.int64)
    np.cumsum(np.concatenate([np.diff(c.indptr) for c in chunks]), out=indptr[1:])
    indices = np.concatenate([m[c.indices] for m, c in zip(where, chunks, strict=True)])
    return indptr, indices, keys, ids


@dataclass
class Block:
    """The merged playlists of one block, relabelled by popularity for cache locality."""

    indptr: np.ndarray
    indices: np.ndarray
    keys: np.ndarray
    ids: pa.Array
    anchors: np.ndarray  # the block's anchor tracks, sorted by id

    @classmethod
    def build(cls, chunks: list[Chunk], block: int, blocks: int) -> Block:
        indptr, indices, keys, ids = merge(chunks)
        degree = np.bincount(indices, minlength=len(keys))
        order = np.argsort(-degree, kind="stable")
        relabel = np.empty(len(keys), np.int32)
        relabel[order] = np.arange(len(keys), dtype=np.int32)
        keys, ids = keys[order], ids.take(pa.array(order))
        mine = np.flatnonzero(keys % np.uint64(blocks) == np.uint64(block)).astype(np.int32)
        by_id = pc.sort_indices(ids.take(pa.array(mine))).to_numpy()
        return cls(indptr, relabel[indices], keys, ids, mine[by_id])

    @cached_property
    def transposed(self):
        return csr.transpose(self.indptr, self.indices, len(self.keys))

    @cached_property
    def id_order(self) -> np.ndarray:
        """Rank of every vocabulary id in string order (for ``track_id < neighbor_id``)."""
        ranks = np.empty(len(self.ids), np.int64)
        ranks[pc.sort_indices(self.ids).to_numpy()] = np.arange(len(self.ids))
        return ranks


def block_topk(block: Block, k: int, min_count: int, seed: int, n_chunks: int) -> pa.Table:
    t_ptr, t_rows = block.transposed
    nb, cnt = kernels.topk(block.anchors, block.indptr, block.indices, t_ptr, t_rows, block.keys,
                           kernels.tie_seed(seed), k, min_count, len(block.keys), n_chunks)  # fmt: skip
    filled = nb >= 0
    anchor_rows = np.repeat(block.anchors, filled.sum(axis=1))
    ranks = np.broadcast_to(np.arange(k, dtype=np.int16), nb.shape)[filled]
    return pa.table(
        {"track_id": block.ids.take(pa.array(anchor_rows)), "rank": pa.array(ranks),
         "neighbor_id": block.ids.take(pa.array(nb[filled])), "count": pa.array(cnt[filled])},
        schema=schemas.TOPK,
    )  # fmt: skip


def count_batches(
    block: Block, min_count: int, n_chunks: int, max_slots: int = 1 << 24
) -> Iterator[pa.Table]:
    """Every pair of the block's anchors with a later id, sorted by (track_id, neighbor_id),
    as consecutive tables of at most ``max_slots`` pairs, computed as they are consumed: with
    :func:`duet.schemas.stream_parquet` memory holds one batch (~1.3 GB at 2²⁴ slots), however
    many pairs there are."""
    t_ptr, t_rows = block.transposed
    order = block.id_order
    work = kernels.row_work(block.anchors, block.indptr, t_ptr, t_rows)
    start = 0
    while start < len(block.anchors):
        stop = start + max(1, int(np.searchsorted(np.cumsum(work[start:]), max_slots)))
        anchors = block.anchors[start:stop]
        offsets = np.zeros(len(anchors) + 1, np.int64)
        np.cumsum(np.minimum(work[start:stop], len(block.keys)), out=offsets[1:])
        nb, cnt, used = kernels.pair_counts(anchors, offsets, block.indptr, block.indices, t_ptr,
                                            t_rows, order, min_count, len(block.keys), n_chunks)  # fmt: skip
        keep = np.arange(offsets[-1]) - np.repeat(offsets[:-1], np.diff(offsets)) < np.repeat(
            used, np.diff(offsets)
        )
        a = np.repeat(anchors, np.diff(offsets))[keep]
        n, c = nb[keep], cnt[keep]
        del nb, cnt, keep
        sort = np.lexsort((order[n], order[a]))
        a, n, c = a[sort], n[sort], c[sort]
        yield pa.table({"track_id": block.ids.take(pa.array(a)),
                        "neighbor_id": block.ids.take(pa.array(n)),
                        "count": pa.array(c)}, schema=schemas.COOCCURRENCE)  # fmt: skip
        start = stop


def artist_tracks(meta: pa.Table) -> pa.Table:
    """(artist, track_id) pairs of a track_meta table."""
    lists = meta.column("artist_ids").combine_chunks()
    pairs = pa.table({
        "artist": pc.list_flatten(lists),
        "track_id": meta.column("track_id").combine_chunks().take(pc.list_parent_indices(lists)),
    })  # fmt: skip
    return pairs.filter(pc.and_(pc.is_valid(pairs.column("artist")),
                                pc.greater(pc.utf8_length(pairs.column("artist")), 0)))  # fmt: skip


def artist_groups(pairs: pa.Table) -> pa.Table:
    """Artist → its distinct tracks in id order, as a playlists table (``source`` "artist")."""
    pairs = pairs.sort_by([("artist", "ascending"), ("track_id", "ascending")])
    artist, track = (
        pairs.column("artist").combine_chunks(),
        pairs.column("track_id").combine_chunks(),
    )
    n = len(artist)
    new_artist = np.ones(n, bool)
    repeat = np.zeros(n, bool)
    if n > 1:
        same_artist = pc.equal(artist[1:], artist[:-1]).to_numpy(zero_copy_only=False)
        same_track = pc.equal(track[1:], track[:-1]).to_numpy(zero_copy_only=False)
        new_artist[1:] = ~same_artist
        repeat[1:] = same_artist & same_track
    keep = ~repeat
    starts = np.flatnonzero(new_artist[keep])
    offsets = np.append(starts, keep.sum()).astype(np.int32)
    return pa.table(
        {"playlist_id": artist.filter(pa.array(new_artist)),
         "track_ids": pa.ListArray.from_arrays(pa.array(offsets), track.filter(pa.array(keep))),
         "source": pa.array(["artist"] * len(starts), pa.string())},
        schema=schemas.PLAYLISTS,
    )  # fmt: skip


# ---------------------------------------------------------------- Beam plumbing


def _n_chunks(threads: int | None) -> int:
    import numba

    if threads:
        ceiling = numba.config.NUMBA_NUM_THREADS  # type: ignore[attr-defined]  # set at import
        numba.set_num_threads(min(threads, ceiling))
    return 16 * numba.get_num_threads()


class Encode(beam.DoFn):
    """A playlists table → (block, Chunk) for every block it touches, plus its stats."""

    def __init__(self, job: CoocJob):
        self.job = job
        self.groups = Metrics.counter("cooccurrence", "groups_used")
        self.skipped = Metrics.counter("cooccurrence", "groups_skipped")

    def process(self, table: pa.Table):
        chunk = encode(table.column("track_ids"), self.job.max_group_tracks)
        self.groups.inc(chunk.stats["groups_used"])
        self.skipped.inc(chunk.stats["groups_too_long"] + chunk.stats["groups_too_short"])
        yield beam.pvalue.TaggedOutput("stats", dict(chunk.stats))
        if chunk.n_rows:
            yield from split_blocks(chunk, self.job.blocks)


class BlockTopK(beam.DoFn):
    """Merge one block's chunks and write its top-K (and counts) part files."""

    def __init__(self, job: CoocJob):
        self.job = job
        self.anchors = Metrics.counter("cooccurrence", "anchor_tracks")

    def setup(self):
        self.n_chunks = _n_chunks(self.job.threads)

    def process(self, element):
        b, chunks = element
        job = self.job
        block = Block.build(list(chunks), b, job.blocks)
        self.anchors.inc(len(block.anchors))
        progress.tick()
        top = block_topk(block, job.top_k, job.min_count, job.seed, self.n_chunks)
        files = _write_part(job, layout.TOPK, b, top, schemas.TOPK)
        report = {"block": b, "anchors": len(block.anchors), "topk_rows": top.num_rows,
                  "tracks_in_block": len(block.keys), "groups_in_block": len(block.indptr) - 1}  # fmt: skip
        if job.counts:
            batches = count_batches(block, job.min_count, self.n_chunks)
            counts, report["pairs"] = publish.write_streamed(
                job.folder, layout.part(layout.COUNTS, b),
                lambda path: schemas.stream_parquet(path, schemas.COOCCURRENCE, batches),
            )  # fmt: skip
            files |= counts
        yield {**report, "files": files}


def _partition_artists(table: pa.Table, partitions: int):
    pairs = artist_tracks(table)
    if not pairs.num_rows:
        return
    part = (
        csr.string_keys(pairs.column("artist").combine_chunks()) % np.uint64(partitions)
    ).astype(np.int64)
    for p in np.unique(part):
        yield int(p), pairs.filter(pa.array(part == p))


def _write_part(job: CoocJob, table: str, number: int, rows: pa.Table,
                schema: pa.Schema) -> dict[str, dict]:  # fmt: skip
    """One part of one of the folder's tables, under its tagged name; its ``files`` entry."""
    data = schemas.to_parquet_bytes(rows, schema)
    return publish.write(job.folder, layout.part(table, number), data)


class WriteGroups(beam.DoFn):
    """One partition of artist groups → its groups part (files entry as a side output) and the
    groups themselves, which the co-occurrence steps read as playlists."""

    def __init__(self, job: CoocJob):
        self.job = job

    def process(self, element):
        p, tables = element
        groups = artist_groups(pa.concat_tables(list(tables)))
        yield beam.pvalue.TaggedOutput(
            "files", _write_part(self.job, layout.GROUPS, p, groups, schemas.PLAYLISTS)
        )
        yield groups


def finalize(reports: list[dict], stats: list[dict], job: CoocJob, fingerprint: str,
             group_files: Sequence[dict] = ()) -> dict:  # fmt: skip
    """Write empty parts for blocks without anchors and for artist partitions without groups,
    then publish the folder's new generation (``_SUCCESS`` listing every part)."""
    reports = sorted(reports, key=lambda r: r["block"])
    files: dict[str, dict] = {}
    for entries in [r["files"] for r in reports] + list(group_files):
        files |= entries
    tables = [(layout.TOPK, schemas.TOPK)]
    if job.counts:
        tables.append((layout.COUNTS, schemas.COOCCURRENCE))
    if job.group_by == "artist":
        tables.append((layout.GROUPS, schemas.PLAYLISTS))
    for table, schema in tables:
        for b in range(job.blocks):
            if layout.part(table, b) not in files:
                files |= _write_part(job, table, b, schema.empty_table(), schema)
    expected = {layout.part(t, b) for t, _ in tables for b in range(job.blocks)}
    totals: Counter = Counter()
    for s in stats:
        totals.update(s)
    role = "playlists" if job.group_by == "playlist" else "track_meta"
    body = layout.summary(
        "cooccurrence",
        format_version=FORMAT_VERSION,
        config=job.config(),
        inputs={role: {"uri": job.source, "fingerprint": fingerprint}},
        counts={
            **{k: int(v) for k, v in sorted(totals.items())},
            "anchor_tracks": sum(r["anchors"] for r in reports),
            "topk_rows": sum(r["topk_rows"] for r in reports),
            **({"pairs": sum(r.get("pairs", 0) for r in reports)} if job.counts else {}),
        },
        tie_rule="count desc, then mix64(mix64(seed) ^ key(track) ^ key(neighbor)) asc; "
        "key = mix64(FNV-1a-64(utf-8 id))",
        tables=sorted({name.split("/")[0] for name in expected}),
    )
    return publish.commit(job.folder, body, files, how=job.commit, what=job.folder,
                          measures={"tracks with neighbours": "counts.anchor_tracks"})  # fmt: skip


def build(pipeline: beam.Pipeline, job: CoocJob) -> beam.PCollection:
    """Add the co-occurrence job to ``pipeline``; returns a PCollection of the ``_SUCCESS`` body."""
    splits = (
        pipeline
        | "Splits"
        >> beam.Create(
            input_splits(
                job.source,
                job.rows_per_chunk,
                column="artist_ids" if job.group_by == "artist" else "track_ids",
            )
        )
        | "Spread" >> beam.Reshuffle()
    )
    group_files = pipeline | "NoGroups" >> beam.Create([])
    if job.group_by == "artist":
        written = (
            splits
            | "ReadMeta" >> beam.Map(read_split, ["track_id", "artist_ids"])
            | "ByArtist" >> beam.FlatMap(_partition_artists, job.blocks)
            | "GroupArtists" >> beam.GroupByKey()
            | "WriteGroups" >> beam.ParDo(WriteGroups(job)).with_outputs("files", main="groups")
        )
        tables, group_files = written.groups, written.files
    else:
        tables = splits | "Read" >> beam.Map(read_split, ["track_ids"])
    encoded = tables | "Encode" >> beam.ParDo(Encode(job)).with_outputs("stats", main="chunks")
    reports = encoded.chunks | "ByBlock" >> beam.GroupByKey() | "TopK" >> beam.ParDo(BlockTopK(job))
    fingerprint = publish.input_fingerprint(job.source)
    stats = encoded.stats | "AllStats" >> beam.combiners.ToList()
    return (
        reports
        | "AllReports" >> beam.combiners.ToList()
        | "Finalize"
        >> beam.Map(
            lambda r, s, g: finalize(r, s, job, fingerprint, g),
            beam.pvalue.AsSingleton(stats),
            beam.pvalue.AsList(group_files),
        )  # fmt: skip
    )
