"""The co-occurrence benchmark: full scale under ``make bench``, a small smoke run in ``make test``."""

import pytest

from tests.benchmarks import bench_cooccurrence


@pytest.mark.bench
def test_cooccurrence_benchmark_meets_its_targets():
    results = bench_cooccurrence.run()
    print("\n" + bench_cooccurrence.report(results))
    assert results["same_output"] and results["scipy_same_counts"]
    assert results["naive_s"] / results["cli_s"] >= 30
    assert results["full_s"] <= 300 and results["full_gb"] <= 12


def test_benchmark_harness_runs_every_comparison(tmp_path):
    results = bench_cooccurrence.run(subset=300, kernels_n=300, full=500, cache=str(tmp_path))
    assert results["same_output"] and results["scipy_same_counts"]
    assert results.get("implicit_same_counts", True)
    assert results["full_s"] > 0 and 0 < results["full_gb"] < 12
    assert "ratio vs naive" in bench_cooccurrence.report(results)
