"""Compiled helpers shared by the playlists, co-occurrence and pairs stages: 64-bit keys of
string ids and the few operations on CSR matrices (playlists × tracks) they all need.

A CSR matrix here is ``indptr`` (int64[rows + 1]) and ``indices`` (int32 column numbers); row
``r`` holds ``indices[indptr[r]:indptr[r + 1]]``. Keys are :func:`duet.hashing.track_key`:
``mix64(FNV-1a-64(utf-8 id))``, computed in compiled code over an Arrow string array's buffers.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
from numba import njit

from duet.hashing import FNV_OFFSET, FNV_PRIME


@njit(inline="always")
def mix64(x):
    """splitmix64's finaliser (same as :func:`duet.hashing.mix64_py`)."""
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


@njit(cache=True, nogil=True)
def hash_strings(offsets: np.ndarray, data: np.ndarray) -> np.ndarray:
    """:func:`duet.hashing.track_key` of every string of an Arrow string array's buffers."""
    n = len(offsets) - 1
    out = np.empty(n, np.uint64)
    for i in range(n):
        h = np.uint64(FNV_OFFSET)
        for j in range(offsets[i], offsets[i + 1]):
            h = (h ^ np.uint64(data[j])) * np.uint64(FNV_PRIME)
        out[i] = mix64(h)
    return out


@njit(cache=True, nogil=True)
def dedupe_rows(indptr: np.ndarray, indices: np.ndarray, n_cols: int):
    """Drop repeated columns inside each row (first occurrence kept, order preserved).

    Returns (indptr, indices, repeats removed)."""
    last = np.full(n_cols, -1, np.int64)
    out_ptr = np.empty_like(indptr)
    out = np.empty_like(indices)
    out_ptr[0] = 0
    w = 0
    for r in range(len(indptr) - 1):
        for j in range(indptr[r], indptr[r + 1]):
            c = indices[j]
            if last[c] != r:
                last[c] = r
                out[w] = c
                w += 1
        out_ptr[r + 1] = w
    return out_ptr, out[:w], len(indices) - w


@njit(cache=True, nogil=True)
def transpose(indptr: np.ndarray, indices: np.ndarray, n_cols: int):
    """CSR → CSC by counting sort: for each column, the rows that contain it, ascending."""
    counts = np.zeros(n_cols + 1, np.int64)
    for j in range(len(indices)):
        counts[indices[j] + 1] += 1
    t_ptr = np.cumsum(counts)
    fill = t_ptr[:-1].copy()
    rows = np.empty(len(indices), np.int32)
    for r in range(len(indptr) - 1):
        for j in range(indptr[r], indptr[r + 1]):
            c = indices[j]
            rows[fill[c]] = r
            fill[c] += 1
    return t_ptr, rows


def string_keys(ids: pa.Array) -> np.ndarray:
    """:func:`duet.hashing.track_key` of every (non-null) string, in compiled code."""
    ids = ids.cast(pa.string())
    if len(ids) == 0:
        return np.empty(0, np.uint64)
    _, offsets, data = ids.buffers()
    offsets = np.frombuffer(offsets, np.int32)[ids.offset : ids.offset + len(ids) + 1]
    return hash_strings(offsets, np.frombuffer(data, np.uint8) if data else np.zeros(1, np.uint8))


@njit(cache=True, nogil=True)
def take_rows(indptr: np.ndarray, indices: np.ndarray, rows: np.ndarray):
    """The CSR made of ``rows`` (in that order)."""
    out_ptr = np.zeros(len(rows) + 1, np.int64)
    for i in range(len(rows)):
        r = rows[i]
        out_ptr[i + 1] = out_ptr[i] + indptr[r + 1] - indptr[r]
    out = np.empty(out_ptr[-1], indices.dtype)
    for i in range(len(rows)):
        r = rows[i]
        out[out_ptr[i] : out_ptr[i + 1]] = indices[indptr[r] : indptr[r + 1]]
    return out_ptr, out
