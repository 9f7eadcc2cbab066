"""Compiled kernels of the co-occurrence job: row-wise top-K and pair counts of C = BᵀB.

Playlists are a sparse binary matrix B (playlists × tracks, CSR: ``indptr``/``indices``).
Co-occurrence is C = BᵀB without its diagonal. Row ``a`` of C is accumulated in a dense
per-thread counter by walking a's playlists (the transpose, CSC) and every track in them;
only the touched entries are visited afterwards, so a row costs Σ_{p∋a} |p| and the whole
product Σ_p |p|². Memory is the CSR, its transpose and one counter row per thread —
independent of how many pairs exist.

Tie rule (documented in the README): among neighbours with equal counts the one with the
smaller ``mix64(tie_seed ^ key(anchor) ^ key(neighbour))`` ranks first, where ``key`` is
:func:`duet.hashing.track_key` of the id and ``tie_seed = mix64(seed)``. It depends only on
(seed, ids), never on input order, block count, runner or worker count.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from duet.hashing import mix64_py
from duet.pipelines.csr import mix64


@njit(inline="always")
def _ranks_before(c1, t1, c2, t2):
    """(count, tie key) order: higher count first, then smaller tie key."""
    return c1 > c2 or (c1 == c2 and t1 < t2)


@njit(cache=True, nogil=True, parallel=True)
def topk(anchors, indptr, indices, t_ptr, t_rows, keys, tie_seed, k, min_count, n_cols, n_chunks):
    """Top-``k`` co-occurring columns of each anchor column.

    Returns (neighbours int32[n, k], counts int32[n, k]); unused slots hold -1 / 0. Anchors
    are dealt round-robin to ``n_chunks`` parallel chunks (a few per thread), each with its
    own dense counter row.
    """
    n = len(anchors)
    nb_out = np.full((n, k), -1, np.int32)
    cnt_out = np.zeros((n, k), np.int32)
    n_chunks = min(n, n_chunks)
    for chunk in prange(n_chunks):
        row = np.zeros(n_cols, np.int32)
        seen = np.empty(n_cols, np.int32)
        best_c = np.empty(k, np.int32)
        best_t = np.empty(k, np.uint64)
        best_n = np.empty(k, np.int32)
        for i in range(chunk, n, n_chunks):  # strided: hot and cold anchors spread evenly
            a = anchors[i]
            m = 0
            for j in range(t_ptr[a], t_ptr[a + 1]):
                p = t_rows[j]
                for q in range(indptr[p], indptr[p + 1]):
                    u = indices[q]
                    if row[u] == 0:
                        seen[m] = u
                        m += 1
                    row[u] += 1
            ka = tie_seed ^ keys[a]
            filled = 0
            for s in range(m):
                u = seen[s]
                c = row[u]
                row[u] = 0
                if u == a or c < min_count:
                    continue
                if filled == k and c < best_c[k - 1]:
                    continue
                t = mix64(ka ^ keys[u])
                if filled == k and not _ranks_before(c, t, best_c[k - 1], best_t[k - 1]):
                    continue
                pos = filled if filled < k else k - 1
                while pos > 0 and _ranks_before(c, t, best_c[pos - 1], best_t[pos - 1]):
                    best_c[pos] = best_c[pos - 1]
                    best_t[pos] = best_t[pos - 1]
                    best_n[pos] = best_n[pos - 1]
                    pos -= 1
                best_c[pos] = c
                best_t[pos] = t
                best_n[pos] = u
                if filled < k:
                    filled += 1
            for r in range(filled):
                nb_out[i, r] = best_n[r]
                cnt_out[i, r] = best_c[r]
    return nb_out, cnt_out


@njit(cache=True, nogil=True)
def row_work(anchors, indptr, t_ptr, t_rows):
    """Upper bound of distinct neighbours per anchor: Σ_{p∋a} |p| (also its cost)."""
    out = np.zeros(len(anchors), np.int64)
    for i in range(len(anchors)):
        a = anchors[i]
        s = 0
        for j in range(t_ptr[a], t_ptr[a + 1]):
            p = t_rows[j]
            s += indptr[p + 1] - indptr[p]
        out[i] = s
    return out


@njit(cache=True, nogil=True, parallel=True)
def pair_counts(
    anchors, offsets, indptr, indices, t_ptr, t_rows, order, min_count, n_cols, n_chunks
):
    """Every pair (a, u) with ``order[a] < order[u]`` and count ≥ ``min_count``.

    ``offsets`` (from :func:`row_work`) bounds each anchor's output slice; returns
    (anchor, neighbour, count, used) where ``used[i]`` is how many slots anchor ``i`` filled.
    """
    n = len(anchors)
    out_n = np.empty(offsets[-1], np.int32)
    out_c = np.empty(offsets[-1], np.int32)
    used = np.zeros(n, np.int64)
    n_chunks = min(n, n_chunks)
    for chunk in prange(n_chunks):
        row = np.zeros(n_cols, np.int32)
        seen = np.empty(n_cols, np.int32)
        for i in range(chunk, n, n_chunks):
            a = anchors[i]
            m = 0
            for j in range(t_ptr[a], t_ptr[a + 1]):
                p = t_rows[j]
                for q in range(indptr[p], indptr[p + 1]):
                    u = indices[q]
                    if row[u] == 0:
                        seen[m] = u
                        m += 1
                    row[u] += 1
            w = offsets[i]
            for s in range(m):
                u = seen[s]
                c = row[u]
                row[u] = 0
                if order[u] > order[a] and c >= min_count:
                    out_n[w] = u
                    out_c[w] = c
                    w += 1
            used[i] = w - offsets[i]
    return out_n, out_c, used


def tie_seed(seed: int) -> np.uint64:
    return np.uint64(mix64_py(seed & 0xFFFFFFFFFFFFFFFF))


@njit(cache=True, nogil=True)
def row_blocks(indptr: np.ndarray, indices: np.ndarray, column_block: np.ndarray, blocks: int):
    """bool[rows, blocks]: whether each row holds a column of each block."""
    out = np.zeros((len(indptr) - 1, blocks), np.bool_)
    for r in range(len(indptr) - 1):
        for j in range(indptr[r], indptr[r + 1]):
            out[r, column_block[indices[j]]] = True
    return out
