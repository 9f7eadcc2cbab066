"""The naive co-occurrence a researcher writes: a Counter over every in-playlist pair, then a
sort per track. Reference for the property tests and the baseline of the benchmark."""

from __future__ import annotations

from collections import Counter, defaultdict

from duet.hashing import mix64_py, track_key


def pair_counts(playlists: list[list[str]]) -> Counter:
    """(a, b) → number of playlists containing both, for a < b; repeats inside one count once."""
    counts: Counter = Counter()
    for tracks in playlists:
        unique = sorted(set(tracks))
        for i, a in enumerate(unique):
            for b in unique[i + 1 :]:
                counts[(a, b)] += 1
    return counts


def top_k(playlists: list[list[str]], k: int, seed: int = 0, min_count: int = 1) -> list[tuple]:
    """Rows (track_id, rank, neighbor_id, count) sorted by (track_id, rank)."""
    neighbours: dict[str, list[tuple[str, int]]] = defaultdict(list)
    for (a, b), c in pair_counts(playlists).items():
        if c >= min_count:
            neighbours[a].append((b, c))
            neighbours[b].append((a, c))
    rows = []
    keys = {t: track_key(t) for t in neighbours}  # duet.hashing.tie_key, with keys computed once
    mixed_seed = mix64_py(seed & 0xFFFFFFFFFFFFFFFF)
    for track in sorted(neighbours):
        mine = mixed_seed ^ keys[track]
        ranked = sorted(neighbours[track], key=lambda nc: (-nc[1], mix64_py(mine ^ keys[nc[0]])))
        rows.extend((track, r, n, c) for r, (n, c) in enumerate(ranked[:k]))
    return rows
