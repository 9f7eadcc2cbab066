"""Band statistics merge exactly like statistics over the concatenated frames."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from duet.pipelines.shardset.stats import BandStats, merge_in_order


@settings(max_examples=50, deadline=None)
@given(st.lists(st.integers(0, 40), min_size=1, max_size=6), st.integers(0, 2**32 - 1))
def test_merged_parts_equal_direct_statistics(sizes, seed):
    rng = np.random.default_rng(seed)
    parts = [rng.normal(30, 10, size=(n, 4)).astype(np.float16) for n in sizes]
    merged = merge_in_order([BandStats.of(p) for p in parts])
    everything = np.concatenate(parts).astype(np.float64)
    assert merged.count == len(everything)
    if len(everything):
        np.testing.assert_allclose(merged.mean, everything.mean(axis=0), rtol=1e-10, atol=1e-9)
        np.testing.assert_allclose(merged.std, everything.std(axis=0), rtol=1e-9, atol=1e-9)


def test_json_round_trip_is_exact():
    stats = BandStats.of(np.random.default_rng(0).normal(size=(100, 3)))
    again = BandStats.from_json(stats.to_json())
    assert again.count == stats.count
    np.testing.assert_array_equal(again.mean, stats.mean)
    np.testing.assert_array_equal(again.m2, stats.m2)
