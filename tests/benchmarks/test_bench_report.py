"""The report benchmark: MPD scale under ``make bench``, a smoke run in ``make test``."""

import pytest

from tests.benchmarks import bench_report


@pytest.mark.bench
def test_report_benchmark_meets_its_target():
    results = bench_report.run()
    print("\n" + bench_report.report(results))
    assert results["report_s"] <= 60
    assert results["sections"]["playlists"] == results["sections"]["pairs"] == "ok"


def test_benchmark_harness_runs_every_comparison(tmp_path):
    results = bench_report.run(playlists=400, epochs=2, cache=str(tmp_path))
    assert results["sections"]["playlists"] == results["sections"]["pairs"] == "ok"
    assert results["sections"]["cooccurrence"] == "partial"  # no artist grouping in this root
    assert results["naive_s"] > 0 and "[target <= 60 s]" in bench_report.report(results)
