"""Per-band mean and standard deviation, mergeable across tracks and shards.

Each part holds (count, mean, M2) in float64 and parts merge with Chan et al.'s parallel
update, which stays accurate over billions of frames where sum/sum-of-squares would not.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class BandStats:
    count: int
    mean: np.ndarray
    m2: np.ndarray

    @classmethod
    def empty(cls, bands: int) -> BandStats:
        return cls(0, np.zeros(bands), np.zeros(bands))

    @classmethod
    def of(cls, frames: np.ndarray) -> BandStats:
        """Statistics of a ``[frames, bands]`` array."""
        values = np.asarray(frames, dtype=np.float64)
        mean = values.mean(axis=0) if len(values) else np.zeros(values.shape[1])
        m2 = ((values - mean) ** 2).sum(axis=0)
        return cls(len(values), mean, m2)

    def merge(self, other: BandStats) -> BandStats:
        if other.count == 0:
            return self
        if self.count == 0:
            return other
        total = self.count + other.count
        delta = other.mean - self.mean
        mean = self.mean + delta * (other.count / total)
        m2 = self.m2 + other.m2 + delta**2 * (self.count * other.count / total)
        return BandStats(total, mean, m2)

    @property
    def std(self) -> np.ndarray:
        if self.count == 0:
            return np.zeros_like(self.mean)
        return np.sqrt(self.m2 / self.count)

    def to_json(self) -> dict:
        return {"count": self.count, "mean": self.mean.tolist(), "m2": self.m2.tolist()}

    @classmethod
    def from_json(cls, data: dict) -> BandStats:
        return cls(
            int(data["count"]), np.asarray(data["mean"], float), np.asarray(data["m2"], float)
        )


def merge_in_order(parts: list[BandStats]) -> BandStats:
    """Merge parts in the given order; callers sort first, so the result is bit-identical
    whatever order the runner delivered them in."""
    total = parts[0]
    for part in parts[1:]:
        total = total.merge(part)
    return total
