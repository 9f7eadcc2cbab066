"""Playlists with a planted low-rank structure: tracks fall into clusters, each playlist draws
its tracks from one cluster with Zipf-like popularity, so a model that learns the structure
completes held-out playlists far better than popularity does."""

from __future__ import annotations

import numpy as np


def planted_playlists(clusters: int = 20, per_cluster: int = 20, playlists: int = 800,
                      length: int = 8, seed: int = 0) -> list[list[str]]:  # fmt: skip
    rng = np.random.default_rng(seed)
    weights = 1.0 / np.arange(1, per_cluster + 1) ** 0.8
    weights /= weights.sum()
    out = []
    for p in range(playlists):
        c = p % clusters
        picks = rng.choice(per_cluster, size=length, replace=False, p=weights)
        out.append([f"c{c:02d}-t{i:02d}" for i in picks])
    return out


def recall_at_10(vectors: dict[str, np.ndarray], queries: list[list[str]],
                 held_out: list[list[str]], bias: bool) -> float:  # fmt: skip
    """Item-based playlist completion with published vectors: score = mean(query factors) ·
    candidate factors (+ candidate bias); observed tracks are excluded."""
    ids = sorted(vectors)
    matrix = np.stack([vectors[i] for i in ids])
    factors, biases = (matrix[:, :-1], matrix[:, -1]) if bias else (matrix, 0.0)
    index = {t: i for i, t in enumerate(ids)}
    hits = total = 0
    for query, hidden in zip(queries, held_out, strict=True):
        q = factors[[index[t] for t in query if t in index]].mean(axis=0)
        scores = factors @ q + biases
        scores[[index[t] for t in query if t in index]] = -np.inf
        top = {ids[i] for i in np.argsort(-scores, kind="stable")[:10]}
        hits += len(top & set(hidden))
        total += len(hidden)
    return hits / total


def popularity_recall_at_10(train: list[list[str]], queries: list[list[str]],
                            held_out: list[list[str]]) -> float:  # fmt: skip
    counts: dict[str, int] = {}
    for playlist in train:
        for t in playlist:
            counts[t] = counts.get(t, 0) + 1
    ranked = sorted(counts, key=lambda t: (-counts[t], t))
    hits = total = 0
    for query, hidden in zip(queries, held_out, strict=True):
        top = [t for t in ranked if t not in set(query)][:10]
        hits += len(set(top) & set(hidden))
        total += len(hidden)
    return hits / total
