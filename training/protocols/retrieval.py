"""The papers' retrieval protocols on track embeddings.

- :func:`cover_identification` — PEMR (Yao et al., WWW 2022, experiments: cover song
  identification on Covers80 / SHS100K): every track with another version in the set queries
  all the others, ranked by scalar product; MAP, Precision@10 and MR1 (mean rank of the
  first correct cover).
- :func:`playlist_continuation` — Ferraro et al. (IEEE SPL 2021, experimental setup:
  playlist continuation): for each playlist holding test tracks, every known (non-test) track
  of the playlist retrieves its 100 most similar test tracks by cosine; the 100 test tracks
  retrieved most often across the playlist are the continuation, scored against the
  playlist's test tracks by nDCG@100 and MAP@100.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Hashable, Sequence

import numpy as np

from duet.errors import DuetError
from duet.training.protocols import ranking


def _normalise(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def cover_identification(vectors: np.ndarray, cliques: Sequence[Hashable], k: int = 10) -> dict:
    """MAP, P@``k`` and MR1 of cover-song retrieval.

    ``vectors`` ``[tracks, dim]`` (float), ``cliques`` the cover-set id of each track. Each
    track whose set has another member is a query; the others (never itself) are ranked by
    scalar product with it, ties kept in input order (a stable sort). Returns ``map``,
    ``p@k``, ``mr1`` (1-based), ``queries`` and ``candidates``. Raises ``DuetError`` when no
    set has two tracks."""
    labels = np.asarray([str(c) for c in cliques], dtype=object)
    if len(labels) != len(vectors):
        raise DuetError(f"{len(vectors)} vectors but {len(labels)} cover-set labels")
    sizes = Counter(labels.tolist())
    queries = [i for i, c in enumerate(labels) if sizes[c] > 1]
    if not queries:
        raise DuetError("no cover set has two tracks with embeddings: nothing to identify")
    scores = np.asarray(vectors, dtype=np.float64) @ np.asarray(vectors, dtype=np.float64).T
    aps, precisions, firsts = [], [], []
    for q in queries:
        others = np.delete(np.arange(len(labels)), q)
        order = others[np.argsort(-scores[q, others], kind="stable")]
        hits = labels[order] == labels[q]
        relevant = sizes[labels[q]] - 1
        aps.append(ranking.average_precision(hits, relevant))
        precisions.append(ranking.precision_at(hits, k))
        firsts.append(ranking.first_hit_rank(hits))
    return {"map": float(np.mean(aps)), f"p@{k}": float(np.mean(precisions)),
            "mr1": float(np.mean(firsts)), "queries": len(queries),
            "candidates": len(labels) - 1}  # fmt: skip


def continuation_ranking(similar: np.ndarray, scores: np.ndarray, k: int) -> list[int]:
    """The continuation of one playlist from its known tracks' neighbour lists: ``similar``
    ``[known, n]`` candidate indices per known track (most similar first) and their cosine
    ``scores``; the ``k`` candidates listed most often, ties broken by the higher summed
    cosine, then the lower index (deterministic)."""
    counts: Counter[int] = Counter()
    summed: dict[int, float] = {}
    for row, row_scores in zip(similar, scores, strict=True):
        for item, score in zip(row.tolist(), row_scores.tolist(), strict=True):
            counts[item] += 1
            summed[item] = summed.get(item, 0.0) + score
    order = sorted(counts, key=lambda i: (-counts[i], -summed[i], i))
    return order[:k]


def playlist_continuation(vectors: dict[str, np.ndarray], playlists: Sequence[Sequence[str]],
                          test: set[str], k: int = 100) -> dict:  # fmt: skip
    """Ferraro et al.'s continuation of playlists with new (test) songs: nDCG@``k`` and
    MAP@``k`` averaged over the playlists that hold at least one test track and at least one
    known track with an embedding. ``vectors`` maps track id → embedding; ``test`` are the
    candidate (cold-start) tracks. Returns ``ndcg@k``, ``map@k``, ``playlists`` (scored),
    ``skipped`` (test tracks but no known track) and ``candidates``."""
    candidates = sorted(t for t in test if t in vectors)
    if not candidates:
        raise DuetError("no test-split track has an embedding: nothing to continue with")
    pool = _normalise(np.stack([vectors[t] for t in candidates]).astype(np.float64))
    position = {t: i for i, t in enumerate(candidates)}
    width = min(k, len(candidates))
    ndcgs, aps, skipped = [], [], 0
    for playlist in playlists:
        tracks = list(dict.fromkeys(playlist))
        held = {position[t] for t in tracks if t in position}
        known = [t for t in tracks if t in vectors and t not in test]
        if not held:
            continue
        if not known:
            skipped += 1
            continue
        queries = _normalise(np.stack([vectors[t] for t in known]).astype(np.float64))
        cosine = queries @ pool.T
        similar = np.argsort(-cosine, axis=1, kind="stable")[:, :width]
        ranked = continuation_ranking(similar, np.take_along_axis(cosine, similar, 1), k)
        hits = [i in held for i in ranked]
        ndcgs.append(ranking.ndcg(hits, len(held), k))
        aps.append(ranking.average_precision(hits, len(held), k))
    if not ndcgs:
        raise DuetError("no playlist holds both a test track and a known track with embeddings")
    return {f"ndcg@{k}": float(np.mean(ndcgs)), f"map@{k}": float(np.mean(aps)),
            "playlists": len(ndcgs), "skipped": skipped, "candidates": len(candidates)}  # fmt: skip
