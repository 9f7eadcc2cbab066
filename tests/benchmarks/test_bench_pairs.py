"""The pair-manifest benchmark: full scale under ``make bench``, a smoke run in ``make test``."""

import pytest

from tests.benchmarks import bench_pairs


@pytest.mark.bench
def test_pairs_benchmark_meets_its_targets():
    results = bench_pairs.run()
    print("\n" + bench_pairs.report(results))
    for name in ("co", "tco"):
        assert results[f"{name}_naive_s"] / results[f"{name}_pairing_s"] >= 50
        assert abs(results[f"{name}_pairs"] / results[f"{name}_naive_pairs"] - 1) < 0.02
    assert results["full_s"] <= 180 and results["full_epochs_written"] == 100


def test_benchmark_harness_runs_every_comparison(tmp_path):
    results = bench_pairs.run(subset_tracks=300, full=400, epochs=2, cache=str(tmp_path))
    assert results["co_pairs"] > 0 and results["tco_pairs"] > 0
    assert results["full_epochs_written"] == 4
    assert "[target >= 50x]" in bench_pairs.report(results)
