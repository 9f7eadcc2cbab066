"""Ferraro et al. on Melon's own layout, with no audio file anywhere: a miniature Melon
(playlists, genres, arena_mel arrays with one song missing, one 40-band and one truncated
array) → playlists → splits → genre Word2Vec and WARP factors (non-test songs) → the imported
mel stream → multimodal pairs → the ferraro recipe and both ablations → embeddings → playlist
continuation on the test songs — every step through the ``duet`` command line."""

import json
import math
import os

import numpy as np
import pytest

from duet import publish, readers, schemas
from duet.cli import main
from duet.index import AudioIndex
from tests.support.melon import write_melon

pytestmark = pytest.mark.slow  # still part of make test / CI

AUDIO = (".mp3", ".wav", ".flac", ".ogg", ".m4a", ".opus", ".aac")
RECIPES = ("ferraro", "ferraro-genre", "ferraro-cf")


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """The whole chain; returns (miniature, dataset root, runs folder, evaluation report)."""
    base = tmp_path_factory.mktemp("melon-e2e")
    mini = write_melon(str(base / "melon"))
    data, runs = str(base / "data"), str(base / "runs")
    meta = os.path.join(data, "track_meta.parquet")
    steps = [
        ["playlists", "--input", mini.root, "--format", "melon", "--output", data,
         "--tracks", mini.arena_mel, "--melon-genres", "both"],
        ["splits", "--track-meta", meta, "--output", data],
        ["embeddings", "genre-w2v", "--track-meta", meta, "--output", data, "--deterministic"],
        ["embeddings", "cf", "--model", "warp", "--playlists", os.path.join(data, "playlists.parquet"),
         "--output", data, "--split", "train,val", "--factors", "16", "--epochs", "3"],
        ["features", "import", "--input", mini.arena_mel, "--output", data],
        ["pairs", "--data", data, "--strategies", "multimodal", "--epochs", "0:2", "--split", "train"],
    ]  # fmt: skip
    for recipe in RECIPES:
        steps.append(["train", "--recipe", recipe, "--data", data, "--out", f"{runs}/{recipe}",
                      "--epochs", "2", "--batch-size", "16", "--workers", "0", "--quiet",
                      "--set", "mel_profile=melon"])  # fmt: skip
    embeddings, report = str(base / "embeddings.parquet"), str(base / "report.json")
    steps += [
        ["embed", "--checkpoint", f"{runs}/ferraro/checkpoint.pt", "--data", data, "--output", embeddings],
        ["evaluate", "--embeddings", embeddings, "--playlists", os.path.join(data, "playlists.parquet"),
         "--splits", os.path.join(data, "splits.parquet"), "--output", report],
    ]  # fmt: skip
    for argv in steps:
        assert main(argv) == 0, argv
    with open(report) as f:
        return mini, data, runs, base, json.load(f)


def test_no_audio_file_exists_anywhere(run):
    _, data, _, base, _ = run
    found = [
        name for _, _, names in os.walk(base) for name in names if name.lower().endswith(AUDIO)
    ]
    assert found == [] and AudioIndex.open(data).streams == ["mel-melon"]


def test_the_song_without_an_array_is_reported_by_the_playlists_job(run):
    mini, data, _, _, _ = run
    body = publish.require_success(os.path.join(data, "playlists.parquet"))
    assert body["dropped"]["no_audio/tracks"] == 1
    meta = schemas.read_table(os.path.join(data, "track_meta.parquet"), schemas.TRACK_META)
    assert mini.missing not in meta.column("track_id").to_pylist()


def test_bad_arrays_are_failures_and_the_stream_equals_the_sources(run):
    mini, data, _, _, _ = run
    index = AudioIndex.open(data)
    reasons = {f["track_id"]: f["error"] for f in index.failures().to_pylist()}
    assert set(reasons) == {mini.forty_bands, mini.truncated}
    assert "40 bands" in reasons[mini.forty_bands] and "truncated" in reasons[mini.truncated]
    assert sorted(index.track_ids) == sorted(mini.arrays)
    for song, source in mini.arrays.items():
        np.testing.assert_array_equal(index.load(song, "mel-melon"), source.T.astype(np.float16))


def test_statistics_and_cf_factors_leave_the_test_songs_out(run):
    _, data, _, _, _ = run
    splits = schemas.read_table(os.path.join(data, "splits.parquet"), schemas.SPLITS)
    test = {t for t, s in zip(*(splits.column(c).to_pylist() for c in ("track_id", "split")),
                              strict=True) if s == "test"}  # fmt: skip
    assert test
    stats = AudioIndex.open(data).stats("melon")
    assert stats.split == "train"
    cf = readers.read_embeddings(
        os.path.join(data, "emb", "cf-warp", "vectors.parquet"), "duet embeddings cf"
    )
    assert test.isdisjoint(cf.column("track_id").to_pylist())


def test_the_recipe_and_both_ablations_train_on_the_imported_stream(run):
    _, _, runs, _, _ = run
    for recipe in RECIPES:
        with open(os.path.join(runs, recipe, "metrics.jsonl")) as f:
            lines = [json.loads(line) for line in f]
        assert lines and all(math.isfinite(r["loss"]) for r in lines), recipe
        assert {r["epoch"] for r in lines} == {0, 1}


def test_embeddings_cover_every_imported_song_and_continuation_ranks_test_songs(run):
    mini, _, _, base, report = run
    table = readers.read_embeddings(str(base / "embeddings.parquet"), "duet embed", users_own=True)
    assert sorted(table.column("track_id").to_pylist()) == sorted(mini.arrays)
    continuation = report["continuation"]
    assert continuation["targets"] == "test split" and continuation["queries"] > 0
    assert 0.0 <= continuation["mpr"] <= 1.0


def test_a_recipe_reading_a_stream_the_root_lacks_names_the_choice(run, tmp_path, capsys):
    _, data, _, _, _ = run
    argv = ["train", "--recipe", "ferraro", "--data", data, "--out", str(tmp_path / "o"),
            "--epochs", "1", "--workers", "0", "--quiet"]  # fmt: skip
    assert main(argv) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"duet train: recipe ferraro reads stream mel-ferraro, which {data} does not "
                   "have (it has mel-melon); choose one with --set mel_profile=melon"]  # fmt: skip
