"""The CF throughput benchmark: full size under ``make bench``, a smoke run in ``make test``."""

import pytest

from tests.benchmarks import bench_embeddings


@pytest.mark.bench
def test_warp_and_bpr_throughput_side_by_side():
    results = bench_embeddings.run()
    print("\n" + bench_embeddings.report(results))
    assert results["warp_s"] > 0 and results["bpr_s"] > 0


def test_benchmark_harness_times_every_model(tmp_path):
    results = bench_embeddings.run(playlists=300, factors=8, cache=str(tmp_path))
    assert results["interactions"] > 1000
    assert "WARP / BPR" in bench_embeddings.report(results)
