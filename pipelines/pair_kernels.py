"""Compiled greedy pairing of one epoch: Alonso-Jiménez et al.'s Playlist CO and TCO, and CO
over groups without the one-pair limit (Artist CO).

Tracks are integers ``0..n-1``; playlists (or groups) are CSR (``indptr``/``indices``).
Randomness comes in two forms, both pure functions of the epoch seed so a straightforward
Python reference can replay them exactly (``tests/pairs_reference.py``):

- visiting orders (playlists, tracks) are permutations drawn by the caller with numpy's PCG64;
- shuffles inside a playlist sort its entries by ``mix64(seed ^ entry)``, and TCO's uniform
  choice among c candidates is ``c * u`` with ``u = (mix64(seed ^ track) >> 11) / 2**53``.
"""

from __future__ import annotations

import numpy as np
from duet.pipelines.cooc_kernels import mix64
from numba import njit

FREE, TAKEN, PENDING = 0, 1, 2


@njit(cache=True, nogil=True)
def playlist_co(indptr, indices, order, available, seed):
    """Playlist CO: visit playlists in ``order``; shuffle the tracks of each that are still
    available; pair them off (⌊n/2⌋ pairs) and remove the paired tracks. An odd track out
    stays available. Returns (anchors, positives)."""
    state = np.where(available, FREE, TAKEN).astype(np.uint8)
    n_pairs = 0
    anchors = np.empty(len(available) // 2, np.int32)
    positives = np.empty(len(available) // 2, np.int32)
    longest = 0
    for p in range(len(indptr) - 1):
        longest = max(longest, indptr[p + 1] - indptr[p])
    entries = np.empty(longest, np.int64)
    keys = np.empty(longest, np.uint64)
    useed = np.uint64(seed)
    for p in order:
        m = 0
        for e in range(indptr[p], indptr[p + 1]):
            t = indices[e]
            if state[t] == FREE:  # PENDING: a repeat inside this playlist counts once
                state[t] = PENDING
                entries[m] = e
                keys[m] = mix64(useed ^ np.uint64(e))
                m += 1
        if m == 0:
            continue
        shuffled = entries[:m][np.argsort(keys[:m])]
        for i in range(0, m - 1, 2):
            a, b = indices[shuffled[i]], indices[shuffled[i + 1]]
            state[a] = TAKEN
            state[b] = TAKEN
            anchors[n_pairs] = a
            positives[n_pairs] = b
            n_pairs += 1
        if m % 2:
            state[indices[shuffled[m - 1]]] = FREE
    return anchors[:n_pairs], positives[:n_pairs]


@njit(cache=True, nogil=True)
def playlist_tco(neighbors, order, available, seed):
    """Playlist TCO: visit tracks in ``order``; for a still available track pick uniformly one
    of its top-K neighbours (``neighbors[t]``, -1 padded) that is still available; remove both.
    A track with no available neighbour stays unpaired (and available to others)."""
    state = np.where(available, FREE, TAKEN).astype(np.uint8)
    k = neighbors.shape[1]
    candidates = np.empty(k, np.int32)
    anchors = np.empty(len(available) // 2, np.int32)
    positives = np.empty(len(available) // 2, np.int32)
    n_pairs = 0
    useed = np.uint64(seed)
    for s in order:
        if state[s] != FREE:
            continue
        c = 0
        for j in range(k):
            t = neighbors[s, j]
            if t >= 0 and t != s and state[t] == FREE:
                candidates[c] = t
                c += 1
        if c == 0:
            continue
        u = (mix64(useed ^ np.uint64(s)) >> np.uint64(11)) * (1.0 / 9007199254740992.0)
        t = candidates[min(int(u * c), c - 1)]
        state[s] = TAKEN
        state[t] = TAKEN
        anchors[n_pairs] = s
        positives[n_pairs] = t
        n_pairs += 1
    return anchors[:n_pairs], positives[:n_pairs]


@njit(cache=True, nogil=True)
def group_co(indptr, indices, order, available, seed):
    """CO over groups without the one-pair limit: each group's available tracks are shuffled
    and paired off independently; a track in several groups can be in several pairs."""
    total = 0
    for g in range(len(indptr) - 1):
        total += (indptr[g + 1] - indptr[g]) // 2
    anchors = np.empty(total, np.int32)
    positives = np.empty(total, np.int32)
    longest = 0
    for g in range(len(indptr) - 1):
        longest = max(longest, indptr[g + 1] - indptr[g])
    entries = np.empty(longest, np.int64)
    keys = np.empty(longest, np.uint64)
    useed = np.uint64(seed)
    n_pairs = 0
    for g in order:
        m = 0
        for e in range(indptr[g], indptr[g + 1]):
            if available[indices[e]]:
                entries[m] = e
                keys[m] = mix64(useed ^ np.uint64(e))
                m += 1
        shuffled = entries[:m][np.argsort(keys[:m])]
        for i in range(0, m - 1, 2):
            anchors[n_pairs] = indices[shuffled[i]]
            positives[n_pairs] = indices[shuffled[i + 1]]
            n_pairs += 1
    return anchors[:n_pairs], positives[:n_pairs]


@njit(cache=True, nogil=True)
def share_group(t_ptr, t_rows, anchors, positives, n_groups):
    """For each pair, whether the two tracks share a group (playlist, artist). ``t_ptr`` /
    ``t_rows`` list each track's groups (the transpose of the group CSR)."""
    mark = np.full(n_groups, -1, np.int64)
    out = np.zeros(len(anchors), np.bool_)
    for i in range(len(anchors)):
        a, b = anchors[i], positives[i]
        for j in range(t_ptr[a], t_ptr[a + 1]):
            mark[t_rows[j]] = i
        for j in range(t_ptr[b], t_ptr[b + 1]):
            if mark[t_rows[j]] == i:
                out[i] = True
                break
    return out
