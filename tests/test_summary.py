"""``duet embed --summary``: each paper's per-track summary, the recipe's by default, recorded
in the output's metadata."""

import os
import subprocess
import sys

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch

from duet import readers
from duet.errors import DuetError
from duet.training import summary
from duet.training.loop import TrainConfig, load_recipe, train


def test_mean_std_of_a_hand_example():
    rows = torch.tensor([[1.0, 2.0], [3.0, 6.0]])
    assert summary.mean_std(rows).tolist() == [2.0, 4.0, 1.0, 2.0]


@pytest.mark.parametrize(("recipe", "expected"), [
    ("clmr", "mean"), ("alonso-co", "mean"), ("ferraro", "mean"), ("pemr", "mean"),
    ("choi-adjacent", "mean_std"), ("choi-self", "mean_std"), ("choi-cpc", "cpc"),
])  # fmt: skip
def test_each_recipe_defaults_to_its_papers_summary(recipe, expected):
    """Choi et al. (ICME 2022), downstream evaluation: mean and std of the segment embeddings,
    MelCPC's GRU outputs over the whole sequence; the other papers average their windows."""
    assert summary.default_summary(load_recipe(recipe)) == expected


def test_cpc_summary_needs_a_melcpc_checkpoint():
    with pytest.raises(DuetError, match="needs a MelCPC checkpoint"):
        summary.window_length(load_recipe("choi-adjacent"), 188, "cpc")


def embed_cli(checkpoint: str, data: str, target: str, *extra: str) -> pq.ParquetFile:
    done = subprocess.run([sys.executable, "-m", "duet.cli", "embed", "--checkpoint", checkpoint,
                           "--data", data, "--output", target, "--device", "cpu", *extra],
                          capture_output=True, text=True, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr
    return pq.ParquetFile(target)


def recorded(file: pq.ParquetFile) -> tuple[str, int]:
    meta = file.schema_arrow.metadata
    return meta[b"duet.summary"].decode(), file.schema_arrow.field("vector").type.list_size


def test_melcpc_embeds_gru_outputs_mean_and_std_by_default(choi_dataset, tmp_path):
    out = str(tmp_path / "cpc")
    train(TrainConfig(recipe="choi-cpc", data=choi_dataset, out=out, epochs=1, batch_size=2,
                      workers=0, progress=False, max_steps=1))  # fmt: skip
    ckpt = os.path.join(out, "checkpoint.pt")
    default = embed_cli(ckpt, choi_dataset, str(tmp_path / "cpc.parquet"))
    assert recorded(default) == ("cpc", 512)  # mean and std of the 256-d GRU outputs
    assert default.schema_arrow.metadata[b"duet.recipe"] == b"choi-cpc"
    mean = embed_cli(ckpt, choi_dataset, str(tmp_path / "mean.parquet"), "--summary", "mean")
    assert recorded(mean) == ("mean", 256)
    vectors = readers.read_embeddings(str(tmp_path / "cpc.parquet"), "duet embed", users_own=True)
    vectors = vectors.column("vector")
    matrix = np.asarray(vectors.combine_chunks().values).reshape(len(vectors), -1)
    assert np.isfinite(matrix).all() and (matrix[:, 256:] >= 0).all()  # the std half


def test_choi_embeds_mean_and_std_by_default_and_mean_on_request(choi_dataset, tmp_path):
    out = str(tmp_path / "adj")
    train(TrainConfig(recipe="choi-adjacent", data=choi_dataset, out=out, epochs=1, batch_size=2,
                      workers=0, progress=False, max_steps=1))  # fmt: skip
    ckpt = os.path.join(out, "checkpoint.pt")
    assert recorded(embed_cli(ckpt, choi_dataset, str(tmp_path / "a.parquet"))) == ("mean_std", 256)
    got = embed_cli(ckpt, choi_dataset, str(tmp_path / "b.parquet"), "--summary", "mean")
    assert recorded(got) == ("mean", 128)
    done = subprocess.run([sys.executable, "-m", "duet.cli", "embed", "--checkpoint", ckpt,
                           "--data", choi_dataset, "--output", str(tmp_path / "c.parquet"),
                           "--summary", "cpc"], capture_output=True, text=True, check=False)  # fmt: skip
    assert done.returncode == 1
    assert done.stderr.strip().startswith("duet embed: --summary cpc needs a MelCPC checkpoint")
