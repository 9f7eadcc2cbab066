"""Straightforward Python versions of the papers' pairing algorithms: loops over shuffled
lists and a ``set`` of available tracks, exactly as Alonso-Jiménez et al. describe them.

They replay the job's random draws (the visiting order and the hash keys documented in
``duet.pipelines.pair_kernels``), so their output must equal the job's pair for pair; with
``random`` draws instead they are the naive baseline of the benchmark.
"""

from __future__ import annotations

from duet.hashing import mix64_py


def _shuffled(entries: list[tuple[int, str]], seed: int) -> list[str]:
    return [t for _, t in sorted(entries, key=lambda e: mix64_py(seed ^ e[0]))]


def playlist_co(playlists: list[list[str]], order: list[int], available: set[str], seed: int):
    """Visit playlists in order; shuffle each one's available tracks; pair them off; remove
    the paired tracks from the available set."""
    avail = set(available)
    starts = [0]
    for p in playlists:
        starts.append(starts[-1] + len(p))
    pairs = []
    for p in order:
        entries, seen = [], set()
        for i, t in enumerate(playlists[p]):
            if t in avail and t not in seen:
                seen.add(t)
                entries.append((starts[p] + i, t))
        tracks = _shuffled(entries, seed)
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
        u = (mix64_py(seed ^ index_of[s]) >> 11) / 2**53
        t = candidates[min(int(u * len(candidates)), len(candidates) - 1)]
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
        entries = [(starts[g] + i, t) for i, t in enumerate(groups[g]) if t in available]
        tracks = _shuffled(entries, seed)
        pairs.extend((tracks[i], tracks[i + 1]) for i in range(0, len(tracks) - 1, 2))
    return pairs
