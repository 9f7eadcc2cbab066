"""One epoch of one strategy, a pure function of (tables, seed, epoch, strategy): playlist and
artist pairing (Alonso-Jiménez et al.), embedding lookups, and crop offsets (CLMR, Choi et al.).
Random draws come from ``derive_seed(seed, epoch, strategy)``."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from duet.hashing import derive_seed
from duet.pipelines.pairs import kernels
from duet.pipelines.pairs.common import (
    CROPS,
    LOOKUP,
    ONE_PAIR_PER_TRACK,
    PAIRED,
    STRATEGIES,
    Crop,
    EpochStats,
    PairsInputError,
)
from duet.pipelines.pairs.sources import Sources


def epoch_seed(seed: int, epoch: int, strategy: str) -> int:
    return derive_seed(seed, epoch, strategy)


def _paired_table(strategy: str, epoch: int, ids: pa.Array, anchors, positives) -> pa.Table:
    n = len(anchors)
    return pa.table({
        "epoch": pa.array(np.full(n, epoch, np.int32)), "strategy": pa.repeat(strategy, n),
        "anchor_id": ids.take(pa.array(anchors)), "positive_id": ids.take(pa.array(positives)),
    })  # fmt: skip


def _stats(eligible: int, rows: int, covered: int, *, pairs: int | None = None,
           too_short: int | None = None) -> EpochStats:  # fmt: skip
    stats: EpochStats = {"eligible": eligible, "rows": rows, "tracks_covered": covered,
                         "coverage": round(covered / eligible, 6) if eligible else 0.0,
                         "unpaired": eligible - covered}  # fmt: skip
    if pairs is not None:
        stats["pairs"] = pairs
    if too_short is not None:
        stats["too_short"] = too_short
    return stats


def pair_indices(sources: Sources, strategy: str, seed: int, epoch: int):
    """The pairing itself: (ids, anchors, positives, tracks of the catalogue), pairs as indices
    into ``ids``; coverage is measured over the catalogue (``Sources.catalogue``)."""
    s = epoch_seed(seed, epoch, strategy)
    rng = np.random.Generator(np.random.PCG64(s))
    if strategy == "playlist_tco":
        ids, neighbors = sources.topk
        available = sources.eligible(ids)
        order = rng.permutation(len(ids))  # unavailable tracks are skipped by the kernel
        anchors, positives = kernels.playlist_tco(neighbors, order, available, s)
    else:
        ids, indptr, indices = (
            sources.playlists if strategy == "playlist_co" else sources.artist_groups
        )
        available = sources.eligible(ids)
        order = rng.permutation(len(indptr) - 1)
        one_pair = strategy in ONE_PAIR_PER_TRACK
        anchors, positives = kernels.pair_off(indptr, indices, order, available, s, one_pair)
    return ids, anchors, positives, sources.catalogue_size(ids.filter(pa.array(available)))


def paired_epoch(
    sources: Sources, strategy: str, seed: int, epoch: int
) -> tuple[pa.Table, EpochStats]:
    """Playlist CO, Playlist TCO or Artist CO for one epoch."""
    ids, anchors, positives, eligible = pair_indices(sources, strategy, seed, epoch)
    if strategy in ONE_PAIR_PER_TRACK:
        covered = 2 * len(anchors)
    else:
        seen = np.zeros(len(ids), bool)
        seen[anchors] = seen[positives] = True
        covered = int(seen.sum())
    table = _paired_table(strategy, epoch, ids, anchors, positives)
    return table, _stats(eligible, len(anchors), covered, pairs=len(anchors))


def lookup_epoch(
    sources: Sources, strategy: str, seed: int, epoch: int
) -> tuple[pa.Table, EpochStats]:
    """One row per eligible track with the embedding(s), in a fresh random order. Coverage is
    over the catalogue (``Sources.catalogue``: the tracks with audio, else the playlists'
    tracks, in the split): those without the embedding are unpaired."""
    ids = sources.lookup(strategy)
    ids = ids.filter(pa.array(sources.eligible(ids)))
    rng = np.random.Generator(np.random.PCG64(epoch_seed(seed, epoch, strategy)))
    order = rng.permutation(len(ids))
    n = len(ids)
    table = pa.table({
        "epoch": pa.array(np.full(n, epoch, np.int32)), "strategy": pa.repeat(strategy, n),
        "anchor_id": ids.take(pa.array(order)), "positive_id": pa.nulls(n, pa.string()),
    })  # fmt: skip
    return table, _stats(sources.catalogue_size(ids), n, n)


def crop_offsets(lengths: np.ndarray, crop: Crop, strategy: str, rng: np.random.Generator):
    """(usable mask, anchor offsets, positive offsets or None) for tracks of ``lengths``."""
    need = {"self": crop.length, "self_mel": crop.length, "adjacent": 2 * crop.length + crop.gap,
            "random_segment": 2 * crop.length, "cpc": crop.length}[strategy]  # fmt: skip
    usable = lengths >= need
    room = lengths[usable] - crop.length + 1  # valid start positions of one window
    if strategy in ("self", "self_mel"):
        return usable, rng.integers(0, room), rng.integers(0, room)
    if strategy == "cpc":
        return usable, rng.integers(0, room), None
    if strategy == "adjacent":
        start = rng.integers(0, lengths[usable] - need + 1)
        follow = start + crop.length + crop.gap
        swap = rng.random(len(start)) < 0.5
        return usable, np.where(swap, follow, start), np.where(swap, start, follow)
    # random_segment: the anchor uniform among starts that leave room for a non-overlapping
    # segment ([0, room-1-L] ∪ [L, room-1]), then the positive uniform among those segments.
    length = crop.length
    last_early = room - 1 - length  # ≥ 0 because lengths ≥ 2L
    contiguous = last_early >= length - 1
    n_anchor = np.where(contiguous, room, 2 * (room - length))
    u = rng.integers(0, n_anchor)
    a = np.where(contiguous | (u <= last_early), u, length + (u - last_early - 1))
    before = np.maximum(a - length + 1, 0)  # starts [0, a-L]
    after = np.maximum(room - (a + length), 0)  # starts [a+L, room-1]
    v = rng.integers(0, before + after)
    return usable, a, np.where(v < before, v, a + length + (v - before))


def crop_epoch(
    sources: Sources, strategy: str, seed: int, epoch: int
) -> tuple[pa.Table, EpochStats]:
    """Crop offsets from each track's length in the index; too-short tracks are counted."""
    crop = CROPS[strategy]
    ids, lengths = sources.frames(crop.stream)
    keep = sources.eligible(ids)
    ids, lengths = ids.filter(pa.array(keep)), lengths[keep]
    rng = np.random.Generator(np.random.PCG64(epoch_seed(seed, epoch, strategy)))
    order = rng.permutation(len(ids))
    ids, lengths = ids.take(pa.array(order)), lengths[order]
    usable, first, second = crop_offsets(lengths, crop, strategy, rng)
    ids = ids.filter(pa.array(usable))
    n = len(ids)
    table = pa.table({
        "epoch": pa.array(np.full(n, epoch, np.int32)), "strategy": pa.repeat(strategy, n),
        "anchor_id": ids, "positive_id": pa.nulls(n, pa.string()),
        "stream": pa.repeat(crop.stream, n), "anchor_offset": pa.array(first, pa.int64()),
        "positive_offset": pa.array(second, pa.int64()) if second is not None else pa.nulls(n, pa.int64()),
        "length": pa.array(np.full(n, crop.length, np.int32)),
    })  # fmt: skip
    stats = _stats(len(lengths), n, n, too_short=int((~usable).sum()))
    return table, stats


def make_epoch(
    sources: Sources, strategy: str, seed: int, epoch: int
) -> tuple[pa.Table, EpochStats]:
    if strategy in PAIRED:
        return paired_epoch(sources, strategy, seed, epoch)
    if strategy in LOOKUP:
        return lookup_epoch(sources, strategy, seed, epoch)
    if strategy in CROPS:
        return crop_epoch(sources, strategy, seed, epoch)
    raise PairsInputError(f"unknown strategy {strategy!r}; expected some of {list(STRATEGIES)}")
