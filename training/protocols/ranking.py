"""Ranking measures of the papers' retrieval protocols, as pure functions of one ranked list.

A ranked list is given as its relevance flags in rank order (``hits[i]`` is true when the item
at rank ``i + 1`` is relevant) plus the number of relevant items that exist, so that items
the ranking never reached still count against it.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def _flags(hits: Sequence[bool] | np.ndarray, k: int | None) -> np.ndarray:
    flags = np.asarray(hits, dtype=bool)
    return flags if k is None else flags[:k]


def average_precision(hits: Sequence[bool] | np.ndarray, relevant: int,
                      k: int | None = None) -> float:  # fmt: skip
    """AP (AP@k with ``k``): the mean, over the relevant items, of the precision at the rank
    of each one retrieved within the first ``k``; divided by ``min(k, relevant)`` so that a
    perfect top-k scores 1. 0 when nothing is relevant."""
    flags = _flags(hits, k)
    denominator = relevant if k is None else min(k, relevant)
    if denominator <= 0:
        return 0.0
    ranks = np.flatnonzero(flags) + 1
    precisions = np.arange(1, len(ranks) + 1) / ranks
    return float(precisions.sum() / denominator)


def ndcg(hits: Sequence[bool] | np.ndarray, relevant: int, k: int) -> float:
    """nDCG@k with binary gains: Σ hit_i / log2(i + 1) over ranks i ≤ k, divided by the same
    sum for an ideal ranking of ``min(k, relevant)`` hits. 0 when nothing is relevant."""
    flags = _flags(hits, k)
    ideal = min(k, relevant)
    if ideal <= 0:
        return 0.0
    discounts = 1.0 / np.log2(np.arange(2, k + 2))
    return float((flags * discounts[: len(flags)]).sum() / discounts[:ideal].sum())


def precision_at(hits: Sequence[bool] | np.ndarray, k: int) -> float:
    """Share of relevant items among the first ``k`` ranks (missing ranks count as misses)."""
    return float(_flags(hits, k).sum() / k)


def first_hit_rank(hits: Sequence[bool] | np.ndarray) -> float:
    """1-based rank of the first relevant item (MR1 is its mean over queries); NaN if none."""
    ranks = np.flatnonzero(np.asarray(hits, dtype=bool))
    return float(ranks[0] + 1) if len(ranks) else float("nan")
