"""The shards benchmark: full scale under ``make bench``, a small smoke run in ``make test``."""

import pytest

from tests.benchmarks import bench_shards


@pytest.mark.bench
def test_shards_benchmark_meets_its_targets():
    results = bench_shards.run()
    print("\n" + bench_shards.report(results))
    assert results["vs_bare"] >= 0.65
    assert results["threads_x"] >= 1.6
    assert results["rss_mb"] <= 1536
    assert results["check_share"] <= 0.05


def test_benchmark_harness_runs_every_comparison(tmp_path):
    results = bench_shards.run(files_count=2, seconds=3, naive_count=1, long_minutes=0.2, scale_copies=2,
                               cache=str(tmp_path))  # fmt: skip
    report = bench_shards.report(results)
    for key in (
        "naive_s",
        "bare_s",
        "job1_s",
        "job1_ffmpeg_s",
        "scale1_s",
        "scale_threads_s",
        "scale_procs_s",
        "check_s",
    ):
        assert results[key] > 0, key
    assert 100 < results["rss_mb"] < 1536
    assert "ratio vs naive" in report and "2 workers (multi_threading)" in report
