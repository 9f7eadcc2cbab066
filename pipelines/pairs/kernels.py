"""Compiled greedy pairing of one epoch: Alonso-Jiménez et al.'s Playlist CO and TCO, and CO
over groups without the one-pair limit (Artist CO), plus the verifier's shared-group check.

Tracks are integers ``0..n-1``; playlists (or groups) are CSR (``indptr``/``indices``).
Randomness comes in two forms, both pure functions of the epoch seed so a straightforward
Python reference can replay them exactly (``tests/support/pairs_reference.py``):

- visiting orders (playlists, tracks) are permutations drawn by the caller with numpy's PCG64;
- inside a playlist (or group) whose entries start at ``base``, the m gathered tracks are
  shuffled by Fisher-Yates: for i = m-1 … 1, swap i with ``j = ⌊u·(i+1)⌋`` where
  ``u = uniform(seed, base + i)``; TCO's choice among c candidates is ``⌊c·uniform(seed, t)⌋``;
  ``uniform(seed, x) = (mix64(seed ^ x) >> 11) / 2**53``.

No allocation happens per playlist, so an epoch costs a few ns per playlist entry.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from duet.pipelines.csr import mix64

FREE, TAKEN, PENDING = 0, 1, 2


@njit(inline="always")
def uniform(seed, x):
    """A double in [0, 1) from (seed, x): the top 53 bits of mix64(seed ^ x)."""
    return (mix64(seed ^ np.uint64(x)) >> np.uint64(11)) * (1.0 / 9007199254740992.0)


@njit(inline="always")
def shuffle(buf, m, seed, base):
    """Fisher-Yates over ``buf[:m]`` with the draws ``uniform(seed, base + i)``."""
    for i in range(m - 1, 0, -1):
        j = min(int(uniform(seed, base + i) * (i + 1)), i)
        buf[i], buf[j] = buf[j], buf[i]


@njit(cache=True, nogil=True)
def pair_off(indptr, indices, order, available, seed, one_pair):
    """Visit playlists (or groups) in ``order``; shuffle each one's available tracks and pair
    them off (⌊n/2⌋ pairs). With ``one_pair`` (Playlist CO) paired tracks are removed for the
    rest of the epoch and an odd track out stays available; without it (Artist CO) every group
    starts from all available tracks. A repeat inside one playlist counts once.
    Returns (anchors, positives)."""
    state = np.where(available, FREE, TAKEN).astype(np.uint8)
    longest, capacity = 0, 0
    for p in range(len(indptr) - 1):
        longest = max(longest, indptr[p + 1] - indptr[p])
        capacity += (indptr[p + 1] - indptr[p]) // 2
    if one_pair:
        capacity = min(capacity, len(available) // 2)
    anchors = np.empty(capacity, np.int32)
    positives = np.empty(capacity, np.int32)
    buf = np.empty(longest, np.int32)
    useed = np.uint64(seed)
    n_pairs = 0
    for p in order:
        m = 0
        for e in range(indptr[p], indptr[p + 1]):
            t = indices[e]
            if state[t] == FREE:
                state[t] = PENDING
                buf[m] = t
                m += 1
        shuffle(buf, m, useed, indptr[p])
        for i in range(0, m - 1, 2):
            anchors[n_pairs] = buf[i]
            positives[n_pairs] = buf[i + 1]
            n_pairs += 1
        kept = m - m % 2 if one_pair else 0
        for i in range(m):
            state[buf[i]] = TAKEN if i < kept else FREE
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
        t = candidates[min(int(uniform(useed, s) * c), c - 1)]
        state[s] = TAKEN
        state[t] = TAKEN
        anchors[n_pairs] = s
        positives[n_pairs] = t
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
