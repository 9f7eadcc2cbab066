"""Straightforward Python versions of the papers' pairing algorithms: loops over shuffled
lists and a ``set`` of available tracks, exactly as Alonso-Jiménez et al. describe them.

They replay the job's random draws (the visiting order and the Fisher-Yates draws documented in
``duet.pipelines.pairs.kernels``), so their output must equal the job's pair for pair; with
``random`` draws instead they are the naive baseline of the benchmark.
"""

from __future__ import annotations

from duet.hashing import mix64_py


def uniform(seed: int, x: int) -> float:
    return (mix64_py(seed ^ x) >> 11) / 2**53


def _shuffled(tracks: list[str], seed: int, base: int) -> list[str]:
    """Fisher-Yates with the job's draws (``duet.pipelines.pairs.kernels``)."""
    tracks = list(tracks)
    for i in range(len(tracks) - 1, 0, -1):
        j = min(int(uniform(seed, base + i) * (i + 1)), i)
        tracks[i], tracks[j] = tracks[j], tracks[i]
    return tracks


def playlist_co(playlists: list[list[str]], order: list[int], available: set[str], seed: int):
    """Visit playlists in order; shuffle each one's available tracks; pair them off; remove
    the paired tracks from the available set."""
    avail = set(available)
    starts = [0]
    for p in playlists:
        starts.append(starts[-1] + len(p))
    pairs = []
    for p in order:
        tracks = []
        for t in playlists[p]:
            if t in avail and t not in tracks:
                tracks.append(t)
        tracks = _shuffled(tracks, seed, starts[p])
        for i in range(0, len(tracks) - 1, 2):
            pairs.append((tracks[i], tracks[i + 1]))
            avail.discard(tracks[i])
            avail.discard(tracks[i + 1])
    return pairs


def playlist_tco(topk: dict[str, list[str]], order: list[str], available: set[str], seed: int,
                 index_of: dict[str, int]):  # fmt: skip
    """Visit tracks in order; pick uniformly one of the track's top-10 still available;
    remove both. A track whose top-10 are all used stays unpaired."""
    avail = set(available)
    pairs = []
    for s in order:
        if s not in avail:
            continue
        candidates = [t for t in topk.get(s, [])[:10] if t in avail and t != s]
        if not candidates:
            continue
        t = candidates[min(int(uniform(seed, index_of[s]) * len(candidates)), len(candidates) - 1)]
        avail.discard(s)
        avail.discard(t)
        pairs.append((s, t))
    return pairs


def group_co(groups: list[list[str]], order: list[int], available: set[str], seed: int):
    """CO over groups without the one-pair limit: each group's available tracks are shuffled
    and paired off on their own."""
    starts = [0]
    for g in groups:
        starts.append(starts[-1] + len(g))
    pairs = []
    for g in order:
        tracks = _shuffled([t for t in groups[g] if t in available], seed, starts[g])
        pairs.extend((tracks[i], tracks[i + 1]) for i in range(0, len(tracks) - 1, 2))
    return pairs
