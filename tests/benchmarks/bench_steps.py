"""Trainer step time and data-wait %, per recipe, side by side in one process run with the same
system stepping on a batch already on the device (no data layer) [target: data wait <= 10 %].

For each recipe, ``train()`` runs ``steps`` steps through the real data layer (DataLoader
workers, ranged reads, standardisation, device-side augmentation) and ``metrics.jsonl`` gives
each step's time and the part spent waiting for the next batch; the baseline repeats the step
on one resident batch. Both skip ``warmup`` steps (worker start, cuDNN autotune). Ratio = step
time through the data layer / compute-only step time (1.0: the data layer costs nothing).

The dataset is the sample catalogue through the real shards job with long synthetic pair
manifests (pairs drawn with replacement), so one epoch holds every timed step.

Run: ``python -m tests.benchmarks.bench_steps [--device cuda] [--batch 64] [--steps 30]``.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time

import numpy as np
import pyarrow as pa
import pytest
import torch

from duet import layout, publish, schemas
from duet.hashing import derive_seed
from duet.pipelines.audio.mel import presets
from duet.pipelines.audio.track import AudioConfig
from duet.sample_catalog import generate
from duet.training import data, loop, systems
from duet.training.store import Store
from tests.support.helpers import run_shards
from tests.support.tables import publish_files

# recipe → its pair strategy and, for crop strategies, (stream, crop length, gap to the positive)
RECIPES = {
    "alonso-co": ("playlist_co", None),
    "clmr": ("self", ("wav-22050", 59_049, None)),
    "pemr": ("self", ("wav-22050", 59_049, None)),
    "choi-adjacent": ("adjacent", ("mel-choi", 188, 31)),
}
RUN = "bench"


def build(cache: str, tracks: int = 24, rows: int = 20_000) -> str:
    """Shards of the sample catalogue and one long epoch per strategy in pair run ``bench``."""
    root = os.path.join(cache, "data")
    if publish.read_success(os.path.join(root, "pairs", RUN)) is not None:
        return root
    generate(os.path.join(cache, "catalog"), tracks=tracks, seed=0, broken=False)
    config = AudioConfig(wav_rates=(22050,), profiles=(presets()["alonso"], presets()["choi"]))
    run_shards(os.path.join(cache, "catalog", "tracks.parquet"), root, config=config)
    members = data.Root(Store(root)).members
    manifests: dict[str, bytes] = {}
    for strategy, crop in dict(RECIPES.values()).items():
        rng = np.random.default_rng(derive_seed(0, strategy))
        ids = sorted(members[crop[0]] if crop else members["mel-alonso"])
        anchors = rng.choice(ids, rows)
        columns = {"epoch": pa.array(np.zeros(rows, np.int32)), "strategy": pa.repeat(strategy, rows),
                   "anchor_id": anchors, "positive_id": rng.choice(ids, rows)}  # fmt: skip
        if crop:
            stream, length, gap = crop
            need = 2 * length + gap if gap is not None else length
            room = np.array([members[stream][a].length - need for a in anchors])
            first = (rng.random(rows) * (room + 1)).astype(np.int64)
            second = first + length + gap if gap is not None else (
                rng.random(rows) * (room + 1)).astype(np.int64)  # fmt: skip
            columns.update(positive_id=pa.nulls(rows, pa.string()), stream=pa.repeat(stream, rows),
                           anchor_offset=pa.array(first), positive_offset=pa.array(second),
                           length=pa.repeat(pa.scalar(length, pa.int32()), rows))  # fmt: skip
        manifests[layout.pair_part(strategy, 0)] = schemas.to_parquet_bytes(pa.table(columns),
                                                                            schemas.PAIRS)  # fmt: skip
    strategies = sorted(dict(RECIPES.values()))
    body = {"run": RUN, "strategies": strategies,
            "stats": {s: {"0000": {"rows": rows}} for s in strategies}}  # fmt: skip
    publish_files(os.path.join(root, "pairs", RUN), body, manifests)
    with open(os.path.join(root, "pairs", "LATEST"), "w") as f:
        f.write(RUN)
    return root


def through_data_layer(root: str, recipe: str, device: str, batch: int, steps: int,
                       warmup: int, workers: int, out: str) -> dict:  # fmt: skip
    loop.train(loop.TrainConfig(recipe=recipe, data=root, out=out, epochs=1, batch_size=batch,
                                workers=workers, max_steps=warmup + steps, device=device,
                                progress=False, checkpoint_every=10**9))  # fmt: skip
    with open(os.path.join(out, "metrics.jsonl")) as f:
        records = [json.loads(line) for line in f if line.strip()][warmup:]
    step = sum(r["step_s"] for r in records) / len(records)
    wait = sum(r["wait_s"] for r in records) / sum(r["step_s"] for r in records)
    return {"step_s": step, "data_wait": wait, "samples_per_s": batch / step}


def compute_only(root: str, recipe_name: str, device: str, batch: int, steps: int,
                 warmup: int) -> float:  # fmt: skip
    """Seconds per step of the same system on one batch resident on the device."""
    recipe = loop.load_recipe(recipe_name)
    dataset = data.Root(Store(root))
    model = systems.build(recipe, loop.view_dims(dataset, recipe))
    if hasattr(model, "set_statistics"):
        stats = dataset.stats(recipe.get("profile", "choi"))
        model.set_statistics(stats.mean, stats.std)
    dev = torch.device(device)
    model = model.to(dev)
    optimizer = torch.optim.Adam(model.parameters(), lr=recipe["lr"])
    one = data.EpochBatches(dataset, RUN, recipe["strategy"], 0, recipe["views"], batch, 0)
    resident = one.make_batch(0)
    views = [resident[v.name].to(dev) for v in recipe["views"]]
    g = torch.Generator(device=dev).manual_seed(0)
    for i in range(warmup + steps):
        if i == warmup:
            start = time.monotonic()
        with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=dev.type == "cuda"):
            loss = model(views, g)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        float(loss.detach())
    return (time.monotonic() - start) / steps


def run(recipes: tuple[str, ...] = tuple(RECIPES), device: str | None = None, batch: int = 16,
        steps: int = 10, warmup: int = 3, workers: int = 2, cache: str | None = None,
        tracks: int = 24) -> dict:  # fmt: skip
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    cache = cache or os.path.join(tempfile.gettempdir(), "duet-bench-steps")
    root = build(cache, tracks=tracks)
    results = {"device": torch.cuda.get_device_name() if device == "cuda" else "cpu",
               "batch": batch, "steps": steps, "recipes": {}}  # fmt: skip
    for recipe in recipes:
        with tempfile.TemporaryDirectory() as out:
            layer = through_data_layer(root, recipe, device, batch, steps, warmup, workers, out)
        alone = compute_only(root, recipe, device, batch, steps, warmup)
        results["recipes"][recipe] = {**layer, "compute_step_s": alone,
                                      "ratio": layer["step_s"] / alone}  # fmt: skip
    return results


def report(r: dict) -> str:
    lines = [f"trainer steps on {r['device']}, batch {r['batch']}, {r['steps']} timed steps",
             f"{'recipe':<15}{'step (data layer)':>19}{'data wait':>11}{'step (resident)':>17}"
             f"{'ratio':>8}{'samples/s':>11}"]  # fmt: skip
    for name, x in r["recipes"].items():
        lines.append(f"{name:<15}{1000 * x['step_s']:>16.1f} ms{100 * x['data_wait']:>10.1f}%"
                     f"{1000 * x['compute_step_s']:>14.1f} ms{x['ratio']:>8.2f}"
                     f"{x['samples_per_s']:>11.1f}")  # fmt: skip
    lines.append("[target: data wait <= 10 % on a GPU; ratio ~1.0 means the data layer is hidden]")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--recipes", nargs="*", default=list(RECIPES), choices=list(RECIPES))
    parser.add_argument("--device", default=None)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--cache", default=None)
    args = parser.parse_args()
    results = run(tuple(args.recipes), args.device, args.batch, args.steps, workers=args.workers,
                  cache=args.cache)  # fmt: skip
    print(report(results))


# ---------------------------------------------------------------- as tests


@pytest.mark.bench
def test_trainer_steps_keep_the_device_fed():
    results = run()
    print("\n" + report(results))
    assert all(r["data_wait"] <= 0.10 for r in results["recipes"].values())


@pytest.mark.slow
def test_benchmark_harness_times_steps_with_and_without_the_data_layer(tmp_path):
    results = run(("alonso-co", "choi-adjacent"), device="cpu", batch=4, steps=1,
                              warmup=1, workers=1, cache=str(tmp_path), tracks=6)  # fmt: skip
    for r in results["recipes"].values():
        assert r["step_s"] > 0 and r["compute_step_s"] > 0 and 0 <= r["data_wait"] < 1
    assert "data wait" in report(results)


if __name__ == "__main__":
    main()
