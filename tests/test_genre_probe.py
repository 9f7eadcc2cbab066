"""Acceptance of the trainer and ``duet evaluate`` together: on the sample catalogue, an encoder
trained on playlist co-occurrence pairs (alonso-co) separates genres better than the same
encoder untrained. The full 80/20 probe saturates here (the synthetic genres differ in timbre,
so random conv features already split them), so the margin is read on a 1-shot probe."""

import json
import os

import pytest

from duet.cli import main

TRACKS = 160
EPOCHS = 10
MARGIN = 0.05


@pytest.mark.slow
def test_playlist_pairs_beat_an_untrained_encoder_on_genre_probing(tmp_path):
    catalog, root = str(tmp_path / "catalog"), str(tmp_path / "data")
    tracks = os.path.join(catalog, "tracks.parquet")
    for argv in (
        ["sample-catalog", "--output", catalog, "--tracks", str(TRACKS), "--seed", "0"],
        ["shards", "--tracks", tracks, "--output", root, "--streams", "mel-alonso"],
        ["playlists", "--input", os.path.join(catalog, "mpd"), "--format", "mpd", "--output", root,
         "--tracks", root],
        ["cooccurrence", "--playlists", os.path.join(root, "playlists.parquet"), "--output", root],
        ["pairs", "--data", root, "--strategies", "playlist_co", "--epochs", f"0:{EPOCHS}"],
    ):  # fmt: skip
        assert main(argv) == 0, argv

    def one_shot_accuracy(name: str, *train_args: str) -> float:
        out = str(tmp_path / name)
        assert main(["train", "--recipe", "alonso-co", "--data", root, "--out", out, "--batch-size",
                     "16", "--workers", "0", "--quiet", *train_args]) == 0  # fmt: skip
        emb = os.path.join(out, "embeddings.parquet")
        assert main(["embed", "--checkpoint", os.path.join(out, "checkpoint.pt"), "--data", root,
                     "--output", emb]) == 0  # fmt: skip
        report = os.path.join(out, "report.json")
        assert main(["evaluate", "--embeddings", emb, "--labels", tracks, "--shots", "1",
                     "--output", report]) == 0  # fmt: skip
        with open(report) as f:
            return json.load(f)["few_shot"]["accuracy"]

    # untrained: the same initial weights, batch-norm statistics taken from the data (lr 0)
    untrained = one_shot_accuracy(
        "untrained", "--epochs", "1", "--max-steps", "12", "--set", "lr=0"
    )
    trained = one_shot_accuracy("trained", "--epochs", str(EPOCHS), "--set", "lr=1e-3",
                                "warmup_steps=5")  # fmt: skip
    print(f"1-shot genre accuracy: untrained {untrained:.3f}, alonso-co {trained:.3f}")
    assert trained >= untrained + MARGIN
