"""Every default that comes from a paper is pinned here, one test per paper, each docstring
naming where the paper states it; duet's own choices are listed in docs/papers.md."""

import json
import math
import os
import subprocess
import sys

import pyarrow.parquet as pq
import pytest

from duet.errors import DuetError
from duet.training import data, systems
from duet.training.loop import TrainConfig, load_recipe, lr_at, run_steps, train
from duet.training.store import Store

ALONSO = ("alonso-co", "alonso-tco", "alonso-artist", "alonso-w2v", "alonso-simclr")


def test_clmr_recipe_is_the_papers_simclr_on_raw_waveforms():
    """Spijkervet & Burgoyne (ISMIR 2021), method and experiments: 59 049-sample crops of
    22.05 kHz audio, SampleCNN, a 512 → 128 projector, NT-Xent at temperature 0.5, Adam 3e-4,
    batch 48."""
    r = load_recipe("clmr")
    assert [v.length for v in r["views"]] == [59049, 59049]
    assert r["sample_rate"] == 22050 and r["backbone"] == "samplecnn"
    assert r["projector"] == {"hidden": 512, "out": 128}
    assert (r["temperature"], r["lr"], r["batch_size"]) == (0.5, 3e-4, 48)


@pytest.mark.parametrize("name", ALONSO)
def test_alonso_recipes_train_as_the_paper_states(name):
    """Alonso-Jiménez et al. (ICASSP 2023), experimental setup: 256-frame mel patches, a
    128-unit projector to 128-d, NT-Xent at temperature 0.1, batch 384, Adam with a warm-up
    from 0 to 1e-4 over 5,000 steps then cosine decay, 50 epochs."""
    r = load_recipe(name)
    assert all(v.length == 256 for v in r["views"] if v.stream)
    assert r["projector"] == {"hidden": 128, "out": 128}
    assert (r["temperature"], r["batch_size"], r["epochs"]) == (0.1, 384, 50)
    assert (r["lr"], r["warmup_steps"]) == (1e-4, 5000)


def test_alonso_schedule_warms_up_over_5000_steps_then_decays_to_zero_at_the_runs_end():
    """Alonso-Jiménez et al. (ICASSP 2023), experimental setup: 0 → 1e-4 linearly over the
    first 5,000 steps, then a cosine down to 0 at the last step of the run."""
    recipe = load_recipe("alonso-co")
    total = run_steps(826368 // 384, 50)  # the paper's CO pairs per epoch, batch 384, 50 epochs
    assert total == 2152 * 50
    assert lr_at(0, recipe, total) == pytest.approx(1e-4 / 5000)
    assert lr_at(2499, recipe, total) == pytest.approx(0.5e-4)
    assert lr_at(4999, recipe, total) == pytest.approx(1e-4)
    middle = 5000 + (total - 5000) // 2
    assert lr_at(middle, recipe, total) == pytest.approx(0.5e-4)
    assert lr_at(total, recipe, total) == pytest.approx(0.0, abs=1e-20)
    assert lr_at(total + 100, recipe, total) == pytest.approx(0.0, abs=1e-20)


def test_alonso_run_length_is_the_strategys_pairs_per_epoch_times_the_epochs(dataset, tmp_path):
    """Alonso-Jiménez et al. (ICASSP 2023), experimental setup: the cosine ends with the run,
    and a Playlist CO epoch (at most one pair per track) is shorter than a SimCLR epoch (one
    pair per track), so CO's decay is faster; every logged step follows that curve."""
    root = data.Root(Store(dataset))
    run, batch, epochs = root.latest_run(), 4, 2
    totals = {}
    for name, strategy in (("alonso-co", "playlist_co"), ("alonso-simclr", "self_mel")):
        out = tmp_path / name
        summary = train(TrainConfig(recipe=name, data=dataset, out=str(out), epochs=epochs,
                                    batch_size=batch, workers=0, progress=False),
                        {"warmup_steps": 2})  # fmt: skip
        pairs = root.manifest(run, strategy, 0).num_rows
        totals[name] = run_steps(data.plan(pairs, batch, 0, 1), epochs)
        assert summary["state"]["total_steps"] == totals[name]
        recipe = load_recipe(name, {"warmup_steps": 2})
        with open(out / "metrics.jsonl") as f:
            records = [json.loads(line) for line in f if line.strip()]
        assert records
        for record in records:
            assert record["lr"] == pytest.approx(lr_at(record["global_step"] - 1, recipe,
                                                       totals[name]))  # fmt: skip
    assert totals["alonso-co"] < totals["alonso-simclr"]


def test_ferraro_recipes_expect_200_dimensional_genre_vectors():
    """Ferraro et al. (IEEE SPL 2021), proposed method, genre modality: each genre is a
    200-dimensional Word2Vec vector; the CF modality is 300 WARP factors plus the item bias.
    Contrastive temperature 0.1, batch 128, lr 1e-4."""
    for name in ("ferraro", "ferraro-genre"):
        r = load_recipe(name)
        assert r["genre_vector_size"] == 200
        assert (r["temperature"], r["batch_size"], r["lr"]) == (0.1, 128, 1e-4)
        assert [v.length for v in r["views"] if v.stream] == [256]


def test_a_ferraro_recipe_refuses_genre_vectors_of_another_size():
    recipe = load_recipe("ferraro")
    with pytest.raises(DuetError, match="expects 200-d genre vectors.*has 128-d"):
        systems.build(recipe, {"genre": 128, "cf": 301})
    assert systems.build(load_recipe("ferraro", {"genre_vector_size": 128}),
                         {"genre": 128, "cf": 301})  # fmt: skip


def test_genre_w2v_writes_200_dimensional_vectors_by_default(ferraro_dataset, tmp_path):
    """Ferraro et al. (IEEE SPL 2021), proposed method, genre modality: 200-d genre Word2Vec;
    the command's default, run as a user runs it."""
    meta = os.path.join(ferraro_dataset, "melon", "track_meta.parquet")
    out = str(tmp_path / "out")
    done = subprocess.run([sys.executable, "-m", "duet.cli", "embeddings", "genre-w2v",
                           "--track-meta", meta, "--output", out, "--deterministic", "--epochs",
                           "1"], capture_output=True, text=True, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr
    files = [f for f in os.listdir(os.path.join(out, "emb", "genre_w2v")) if f.startswith("genres")]
    table = pq.read_table(os.path.join(out, "emb", "genre_w2v", files[0]))
    assert table.schema.field("vector").type.list_size == 200
    assert not math.isnan(table.column("vector")[0].values[0].as_py())


def test_choi_recipes_segment_and_embed_as_the_paper_states():
    """Choi et al. (ICME 2022), method: 3 s segments of 188 frames (12 s, 752 frames, for
    MelCPC), 128-d embeddings, a 256-d GRU context for MelCPC."""
    for name in ("choi-adjacent", "choi-random"):
        r = load_recipe(name)
        assert [v.length for v in r["views"]] == [188, 188] and r["dim"] == 128
    cpc = load_recipe("choi-cpc")
    assert ([v.length for v in cpc["views"]], cpc["segment"]) == ([752], 188)
    assert (cpc["dim"], cpc["context"]) == (128, 256)


def test_pemr_recipe_masks_and_transforms_as_the_paper_states():
    """Yao et al. (WWW 2022), method: log-mel with 256-point FFT, hop 128, 128 bands; a frame
    Transformer of 3 layers and 3 heads; the lowest 10 % of frames masked for the positive;
    FCN-4 → 512 and a projector to 256."""
    r = load_recipe("pemr")
    assert (r["mel"]["n_fft"], r["mel"]["hop_length"], r["mel"]["n_mels"]) == (256, 128, 128)
    assert (r["transformer"]["layers"], r["transformer"]["heads"]) == (3, 3)
    assert r["mask_ratio"] == 0.1 and r["projector"]["out"] == 256
