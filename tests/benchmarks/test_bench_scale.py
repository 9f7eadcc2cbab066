"""The ingestion cost of the scale-out plan: a smoke run in ``make test``."""

from tests.benchmarks import bench_scale


def test_ingestion_cost_harness_runs(tmp_path):
    results = bench_scale.run(playlists=300, cache=str(tmp_path))
    assert results["seconds"] > 0 and results["json_gb"] > 0
    assert "per 1 M playlists" in bench_scale.report(results)
