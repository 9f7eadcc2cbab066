"""Training runs through the real data layer — locally and from a real S3 endpoint on loopback
— with exact resume, DDP over two ranks, and embeddings from a checkpoint."""

import json
import math
import os

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch

from duet import readers
from duet.cli import main
from duet.training import checkpoint, data
from duet.training.loop import TrainConfig, train
from duet.training.store import Store
from tests.support.s3 import BUCKET

FAST = {"warmup_steps": 2, "backbone": "vggish"}


@pytest.mark.slow
@pytest.mark.parametrize("recipe", ["alonso-co", "alonso-tco", "alonso-artist", "alonso-w2v",
                                    "alonso-simclr", "clmr"])  # fmt: skip
def test_every_recipe_trains_two_epochs_from_s3(recipe, dataset, s3, tmp_path):
    prefix = f"train-{recipe}"
    remote = s3.upload(dataset, prefix)
    out = str(tmp_path / "out")
    summary = train(TrainConfig(recipe=recipe, data=remote, out=out, epochs=2, batch_size=2,
                                workers=0, endpoint_url=s3.endpoint, progress=False),
                    {**FAST, "backbone": "samplecnn" if recipe == "clmr" else "vggish"})  # fmt: skip
    assert summary["state"]["epoch"] == 2 and math.isfinite(summary["loss"])
    with open(os.path.join(out, "metrics.jsonl")) as f:
        records = [line for line in f if line.strip()]
    assert len(records) == summary["state"]["global_step"] > 0


def test_resume_continues_exactly_like_an_uninterrupted_run(dataset, s3, tmp_path):
    remote = s3.upload(dataset, "train-resume")
    common = {"recipe": "alonso-co", "data": remote, "epochs": 2, "batch_size": 2, "workers": 0,
              "endpoint_url": s3.endpoint, "progress": False}  # fmt: skip
    train(TrainConfig(out=f"s3://{BUCKET}/ckpt-whole", **common), FAST)
    first = train(TrainConfig(out=str(tmp_path / "split"), max_steps=3, **common), FAST)
    assert first["stopped"] == "max_steps" and first["state"]["global_step"] == 3
    train(TrainConfig(out=str(tmp_path / "split"), resume=True, **common), FAST)

    def remote_file(name: str) -> bytes:
        return s3.client.get_object(Bucket=BUCKET, Key=f"ckpt-whole/{name}")["Body"].read()

    def steps(text: bytes) -> list[tuple]:
        """What each step saw and did; timings left out."""
        keys = ("epoch", "step", "global_step", "loss", "lr", "batch", "skipped")
        return [tuple(json.loads(line)[k] for k in keys) for line in text.decode().splitlines()]

    straight = checkpoint.loads(remote_file("checkpoint.pt"), "straight")
    resumed = checkpoint.loads((tmp_path / "split" / "checkpoint.pt").read_bytes(), "resumed")
    assert resumed["state"] == straight["state"] and straight["state"]["epoch"] == 2
    assert resumed["model"].keys() == straight["model"].keys()
    assert all(torch.equal(resumed["model"][k], straight["model"][k]) for k in resumed["model"])
    whole = steps(remote_file("metrics.jsonl"))
    assert len(whole) > 3 and steps((tmp_path / "split" / "metrics.jsonl").read_bytes()) == whole


def test_embed_writes_one_vector_per_track(dataset, tmp_path):
    out = str(tmp_path / "m")
    train(TrainConfig(recipe="alonso-co", data=dataset, out=out, epochs=1, batch_size=2, workers=0,
                      progress=False), FAST)  # fmt: skip
    target = str(tmp_path / "embeddings.parquet")
    assert main(["embed", "--checkpoint", os.path.join(out, "checkpoint.pt"), "--data", dataset,
                 "--output", target]) == 0  # fmt: skip
    table = readers.read_embeddings(target, "duet embed", users_own=True)
    assert table.num_rows == len(data.Root(Store(dataset)).members["mel-alonso"])
    assert np.isfinite(np.asarray(table.column("vector").combine_chunks().values)).all()
    assert pq.read_schema(target).field("vector").type.list_size == 512


def test_embed_refuses_an_existing_output_unless_told_to_overwrite(dataset, tmp_path, capsys):
    out = str(tmp_path / "m")
    train(TrainConfig(recipe="alonso-co", data=dataset, out=out, epochs=1, batch_size=2, workers=0,
                      progress=False, max_steps=1), FAST)  # fmt: skip
    target = tmp_path / "embeddings.parquet"
    target.write_bytes(b"the user's earlier embeddings")
    argv = ["embed", "--checkpoint", os.path.join(out, "checkpoint.pt"), "--data", dataset,
            "--output", str(target)]  # fmt: skip
    assert main(argv) == 1 and "--overwrite" in capsys.readouterr().err
    assert target.read_bytes() == b"the user's earlier embeddings"
    assert main([*argv, "--overwrite"]) == 0 and pq.read_schema(target).names[0] == "track_id"


@pytest.mark.slow
def test_torchrun_ddp_splits_an_epoch_across_two_ranks(dataset, tmp_path):
    import subprocess
    import sys

    out = str(tmp_path / "ddp")
    result = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port",
         "29547", "-m", "duet.cli", "train", "--recipe", "alonso-co", "--data", dataset, "--out",
         out, "--epochs", "1", "--batch-size", "2", "--workers", "0", "--quiet", "--set",
         "warmup_steps=2"], capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    root = data.Root(Store(dataset))
    rows = root.manifest(root.latest_run(), "playlist_co", 0).num_rows
    with open(os.path.join(out, "metrics.jsonl")) as f:
        steps = [line for line in f if line.strip()]
    assert len(steps) == data.plan(rows, 2, 0, 2) > 0


@pytest.mark.parametrize("recipe", ["choi-adjacent", "choi-random", "choi-self", "choi-cpc"])
def test_choi_recipes_train_two_epochs_through_the_data_layer(recipe, choi_dataset, tmp_path):
    overrides = {} if recipe == "choi-cpc" else {"multi_level": True}  # CPC has one level
    summary = train(TrainConfig(recipe=recipe, data=choi_dataset, out=str(tmp_path / "o"), epochs=2,
                                batch_size=2, workers=0, progress=False), overrides)  # fmt: skip
    assert summary["state"]["epoch"] == 2 and math.isfinite(summary["loss"])


@pytest.mark.parametrize("recipe", ["ferraro", "ferraro-genre", "ferraro-cf"])
def test_ferraro_recipes_train_two_epochs_through_the_data_layer(recipe, ferraro_dataset, tmp_path):
    summary = train(TrainConfig(recipe=recipe, data=ferraro_dataset, out=str(tmp_path / "o"),
                                epochs=2, batch_size=2, workers=0, progress=False))  # fmt: skip
    assert summary["state"]["epoch"] == 2 and math.isfinite(summary["loss"])


def test_pemr_trains_two_epochs_through_the_data_layer_and_embeds(dataset, tmp_path):
    out = str(tmp_path / "o")
    summary = train(TrainConfig(recipe="pemr", data=dataset, out=out, epochs=2, batch_size=2,
                                workers=0, progress=False))  # fmt: skip
    assert summary["state"]["epoch"] == 2 and math.isfinite(summary["loss"])
    target = str(tmp_path / "pemr.parquet")
    assert main(["embed", "--checkpoint", os.path.join(out, "checkpoint.pt"), "--data", dataset,
                 "--output", target]) == 0  # fmt: skip
    assert pq.read_schema(target).field("vector").type.list_size == 512
