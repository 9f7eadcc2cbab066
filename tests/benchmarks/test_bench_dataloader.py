"""The data-layer benchmark: full size under ``make bench``, a smoke run in ``make test``."""

import pytest

from tests.benchmarks import bench_dataloader


@pytest.mark.bench
def test_data_layer_throughput():
    results = bench_dataloader.run()
    print("\n" + bench_dataloader.report(results))
    assert results["local_mel"] >= 3000
    # moto bounds the S3 rate on this machine; the 20 ms latency itself must be hidden
    assert results["s3_mel"] >= 0.7 * results["s3_direct_mel"]
    assert results["s3_cached_mel"] >= 0.7 * results["local_mel"]  # with --shard-cache


@pytest.mark.slow
def test_benchmark_harness_measures_every_reader(tmp_path):
    results = bench_dataloader.run(seconds=0.5, cache=str(tmp_path), rows=3000, tracks=6)
    assert all(
        results[k] > 0 for k in ("local_mel", "local_wave", "naive_mel", "s3_mel", "s3_cached_mel")
    )
    assert "[target >= 3,000]" in bench_dataloader.report(results)
