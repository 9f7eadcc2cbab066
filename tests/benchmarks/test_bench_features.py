"""The features import benchmark: full scale under ``make bench``, a small smoke run in
``make test``."""

import pytest

from tests.benchmarks import bench_features


@pytest.mark.bench
def test_features_benchmark_reports_its_ratio_and_projections():
    results = bench_features.run()
    print("\n" + bench_features.report(results))
    assert results["rss_mb"] <= 4096


def test_benchmark_harness_runs_every_comparison(tmp_path):
    results = bench_features.run(arrays=40, frames=300, work=str(tmp_path))
    report = bench_features.report(results)
    for key in ("naive_s", "job1_s", "job2_s", "rss_mb", "one_machine_s", "dataflow_s"):
        assert results[key] > 0, key
    assert "ratio vs naive, 1 worker" in report and "projected for Melon (649,091 arrays" in report
    assert list(tmp_path.iterdir()) == []
