"""The trainer step benchmark: full size by hand or on a GPU, a smoke run in ``make test``."""

import pytest

from tests.benchmarks import bench_steps


@pytest.mark.bench
def test_trainer_steps_keep_the_device_fed():
    results = bench_steps.run()
    print("\n" + bench_steps.report(results))
    assert all(r["data_wait"] <= 0.10 for r in results["recipes"].values())


@pytest.mark.slow
def test_benchmark_harness_times_steps_with_and_without_the_data_layer(tmp_path):
    results = bench_steps.run(("alonso-co", "choi-adjacent"), device="cpu", batch=4, steps=1,
                              warmup=1, workers=1, cache=str(tmp_path), tracks=6)  # fmt: skip
    for r in results["recipes"].values():
        assert r["step_s"] > 0 and r["compute_step_s"] > 0 and 0 <= r["data_wait"] < 1
    assert "data wait" in bench_steps.report(results)
