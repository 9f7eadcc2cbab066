"""Embedding tables: playlist Word2Vec, CF factors (WARP, BPR, ALS) and genre Word2Vec."""

import os
import subprocess
import sys

import numpy as np
import pyarrow as pa
import pytest

from duet import publish, readers, schemas
from duet.cli import main
from duet.pipelines.tables import cf, w2v
from duet.pipelines.tables.common import EmbeddingInputError, read_playlists
from tests.support.helpers import cli_error, listed_names, stored
from tests.support.planted import planted_playlists, popularity_recall_at_10, recall_at_10
from tests.support.tables import write_playlists, write_splits, write_track_meta

PARAMS = {"vector_size": 16, "window": None, "alpha": 0.02, "min_count": 1, "sg": False,
          "negative": 5, "sample": 1e-3, "seed": 0}  # fmt: skip


def vectors(folder: str, name: str = "vectors.parquet") -> dict[str, np.ndarray]:
    table = readers.read_embeddings(os.path.join(folder, name), "duet embeddings")
    matrix = np.asarray(table.column("vector").combine_chunks().values).reshape(table.num_rows, -1)
    return dict(zip(table.column("track_id").to_pylist(), matrix, strict=True))


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    """Training playlists plus held-out playlists of which half the tracks are observed."""
    root = str(tmp_path_factory.mktemp("planted"))
    lists = planted_playlists(playlists=800, length=8, seed=1)
    train, test = lists[:700], lists[700:]
    queries, hidden = [p[:4] for p in test], [p[4:] for p in test]
    return {"root": root, "train": train, "queries": queries, "hidden": hidden,
            "playlists": write_playlists(root, train + queries)}  # fmt: skip


# ---------------------------------------------------------------- playlist Word2Vec


def test_w2v_defaults_are_the_papers_with_whole_playlist_window(tmp_path):
    lists = planted_playlists(playlists=60, length=8) + [[f"long-{i}" for i in range(37)]]
    body = w2v.W2VJob(write_playlists(str(tmp_path), lists), str(tmp_path), epochs=2).run()
    params = body["parameters"]
    assert params["window"] == 37 and params["shrink_windows"] is False
    assert (params["sg"], params["alpha"], params["min_count"]) == (False, 0.02, 1)
    assert w2v.W2VJob("p", "o").epochs == 20
    assert body["counts"]["vectors"] == len({t for p in lists for t in p})
    assert set(body["libraries"]) >= {"gensim", "numpy", "duet"}
    assert body["inputs"]["playlists"]["fingerprint"] and body["wall_time_s"] >= 0


FOURTEEN = [list("abcdefgh"), list("abcij"), list("defkl"), list("mn")]
"""14 tracks: a–f in two playlists, the other 8 in one."""


def test_w2v_counts_the_tracks_min_count_leaves_without_a_vector(tmp_path, capsys):
    playlists = write_playlists(str(tmp_path), FOURTEEN)
    argv = ["embeddings", "w2v", "--playlists", playlists, "--output", str(tmp_path),
            "--min-count", "2", "--epochs", "1", "--deterministic"]  # fmt: skip
    assert main(argv) == 0
    body = publish.require_success(str(tmp_path / "emb" / "w2v"))
    assert body["counts"]["vectors"] == 6 and body["counts"]["tracks_read"] == 14
    assert body["dropped"] == {"below_min_count": 8, "outside_split": 0}
    assert "8 of 14 tracks (below_min_count 8)" in capsys.readouterr().out


def test_w2v_places_tracks_of_the_same_playlists_together(planted, tmp_path):
    job = w2v.W2VJob(planted["playlists"], str(tmp_path), vector_size=32, deterministic=True)
    job.run()
    vecs = vectors(job.folder)
    same = [
        cosine(vecs[f"c03-t{a:02d}"], vecs[f"c03-t{b:02d}"]) for a in range(5) for b in range(a)
    ]
    other = [
        cosine(vecs[f"c03-t{a:02d}"], vecs[f"c07-t{b:02d}"]) for a in range(5) for b in range(5)
    ]
    assert np.mean(same) > np.mean(other) + 0.3


def test_playlists_are_read_with_64_bit_offsets_for_the_mpds_2_4_gb_of_ids(tmp_path):
    folder = write_playlists(str(tmp_path), [["a", "b"], ["b", "c", "d"]])
    lists, counts = read_playlists(folder)  # 32-bit offsets overflow past 2 GiB of ids
    assert lists.type == pa.large_list(pa.large_string()) and counts["entries_read"] == 5
    w2v_lists, _ = read_playlists(folder, keep=pa.array(["b", "c"]))
    assert w2v_lists.to_pylist() == [["b", "c"]]


def test_w2v_trains_from_a_corpus_file_of_token_numbers(tmp_path):
    lists = [[f"track {c} ♫" for c in group] for group in ("abcd", "bcde", "cdef", "xyz") * 20]
    sentences = w2v.Sentences(pa.array(lists, pa.list_(pa.string())))
    corpus = sentences.write_corpus(str(tmp_path / "corpus.txt"))
    with open(corpus) as f:
        lines = f.read().splitlines()
    assert len(lines) == 80 and all(t.isdigit() for line in lines for t in line.split())
    model, window, ids = w2v.train_word2vec(sentences, {**PARAMS, "epochs": 2}, 1)
    assert window == 4 and sorted(ids) == sorted({t for p in lists for t in p})
    assert model.wv.vectors.shape == (len(ids), 16)


def test_w2v_shows_its_epochs_with_an_eta(planted, tmp_path, capsys):
    w2v.W2VJob(planted["playlists"], str(tmp_path), epochs=3, vector_size=8, progress=True).run()
    err = capsys.readouterr().err
    assert "word2vec" in err and "3.00/3 epochs" in err and "<00:00]" in err


def test_playlists_longer_than_gensims_limit_are_split_not_truncated(tmp_path):
    long = [f"t{i}" for i in range(25_000)]
    sentences = w2v.Sentences(pa.array([long, ["a", "b"]], pa.list_(pa.string())))
    pieces = list(sentences)
    assert [len(p) for p in pieces] == [10_000, 10_000, 5_000, 2]
    assert sum(pieces[:3], []) == long
    assert (sentences.count, sentences.split_sentences, sentences.longest) == (4, 1, 10_000)
    body = w2v.W2VJob(write_playlists(str(tmp_path), [long, ["a", "b"]]), str(tmp_path),
                      epochs=1, vector_size=8).run()  # fmt: skip
    assert body["counts"]["long_playlists"] == 1 and body["counts"]["sentences"] == 4
    assert body["parameters"]["window"] == 10_000


def test_deterministic_w2v_is_bit_identical_across_processes_and_hash_seeds(planted, tmp_path):
    digests = []
    for hash_seed in ("1", "2"):
        out = str(tmp_path / hash_seed)
        result = subprocess.run(
            [sys.executable, "-m", "duet.cli", "embeddings", "w2v", "--playlists",
             planted["playlists"], "--output", out, "--deterministic", "--epochs", "3"],
            capture_output=True, text=True, env={**os.environ, "PYTHONHASHSEED": hash_seed},
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        assert "vectors" in result.stdout
        with open(stored(os.path.join(out, "emb", "w2v"), "vectors.parquet"), "rb") as f:
            digests.append(f.read())
    assert digests[0] == digests[1]


def test_w2v_on_the_train_split_sees_only_train_tracks(planted, tmp_path):
    tracks = sorted({t for p in planted["train"] for t in p})
    splits = write_splits(
        str(tmp_path), {t: ("test" if t.endswith("t00") else "train") for t in tracks}
    )
    body = w2v.W2VJob(planted["playlists"], str(tmp_path), epochs=1, splits=splits,
                      split=("train",)).run()  # fmt: skip
    ids = set(vectors(os.path.join(str(tmp_path), "emb", "w2v")))
    assert ids and not any(t.endswith("t00") for t in ids)
    assert body["counts"]["entries_outside_split"] > 0
    assert body["dropped"]["outside_split"] == body["counts"]["tracks_read"] - len(ids) > 0
    assert body["inputs"]["splits"]["uri"] == splits


def test_w2v_on_an_empty_playlists_table_is_a_clear_error(tmp_path, capsys):
    folder = write_playlists(str(tmp_path), [])
    assert "no playlist entries" in cli_error(
        capsys, ["embeddings", "w2v", "--playlists", folder, "--output", str(tmp_path)]
    )
    assert "does not exist" in cli_error(
        capsys,
        ["embeddings", "w2v", "--playlists", str(tmp_path / "nope"), "--output", str(tmp_path)],
    )
    assert not os.path.exists(os.path.join(str(tmp_path), "emb", "w2v", publish.SUCCESS))


def test_unknown_split_name_is_a_clear_error(planted, tmp_path):
    with pytest.raises(EmbeddingInputError, match="unknown split"):
        w2v.W2VJob(planted["playlists"], str(tmp_path), split=("training",),
                   splits=str(tmp_path)).run()  # fmt: skip


# ---------------------------------------------------------------- collaborative filtering


@pytest.mark.parametrize("model", ["warp", "bpr", "als"])
def test_cf_completes_held_out_playlists_far_better_than_popularity(planted, tmp_path, model):
    job = cf.CFJob(planted["playlists"], str(tmp_path), model=model, factors=32,
                   epochs={"warp": 30, "bpr": 200, "als": 15}[model],
                   learning_rate={"warp": 0.05, "bpr": 0.05, "als": None}[model],
                   deterministic=True)  # fmt: skip
    body = job.run()
    vecs = vectors(job.folder)
    model_recall = recall_at_10(vecs, planted["queries"], planted["hidden"],
                                bias=body["vector_layout"].endswith("bias"))  # fmt: skip
    popular = popularity_recall_at_10(planted["train"], planted["queries"], planted["hidden"])
    assert model_recall > 2 * popular + 0.1, (model_recall, popular)


def test_warp_defaults_are_ferraros_and_vectors_hold_factors_and_bias(planted, tmp_path):
    body = cf.CFJob(planted["playlists"], str(tmp_path), epochs=1, threads=2).run()
    p = body["parameters"]
    assert (p["factors"], p["max_sampled"], p["learning_rate"]) == (300, 40, 0.05)
    assert cf.CFJob("p", "o").parameters()["epochs"] == 50
    assert body["vector_layout"] == "factors + item bias" and "lightfm-next" in body["libraries"]
    vecs = vectors(os.path.join(str(tmp_path), "emb", "cf-warp"))
    assert {len(v) for v in vecs.values()} == {301}


def test_bpr_keeps_implicits_bias_column_and_als_has_none(planted, tmp_path):
    for model, width in (("bpr", 17), ("als", 16)):
        cf.CFJob(planted["playlists"], str(tmp_path), model=model, factors=16, epochs=2).run()
        vecs = vectors(os.path.join(str(tmp_path), "emb", f"cf-{model}"))
        assert {len(v) for v in vecs.values()} == {width}


def test_deterministic_warp_is_bit_identical(planted, tmp_path):
    tables = []
    for run in ("a", "b"):
        job = cf.CFJob(planted["playlists"], str(tmp_path / run), factors=16, epochs=3,
                       deterministic=True)  # fmt: skip
        job.run()
        with open(stored(job.folder, "vectors.parquet"), "rb") as f:
            tables.append(f.read())
    assert tables[0] == tables[1]


def test_cf_on_the_train_split_excludes_test_tracks(planted, tmp_path):
    tracks = sorted({t for p in planted["train"] for t in p})
    test = {t for t in tracks if t.endswith(("t01", "t02"))}
    splits = write_splits(str(tmp_path), {t: "test" if t in test else "train" for t in tracks})
    code = main(["embeddings", "cf", "--model", "bpr", "--playlists", planted["playlists"],
                 "--output", str(tmp_path), "--split", "train", "--factors", "8",
                 "--epochs", "2"])  # fmt: skip
    assert code == 0
    ids = set(vectors(os.path.join(str(tmp_path), "emb", "cf-bpr")))
    assert ids and not ids & test
    body = publish.read_success(os.path.join(str(tmp_path), "emb", "cf-bpr"))
    assert body["inputs"]["splits"]["uri"] == splits
    assert body["dropped"] == {"outside_split": body["counts"]["tracks_read"] - len(ids)}
    assert body["dropped"]["outside_split"] >= len(test)


def test_unknown_cf_model_is_rejected(tmp_path):
    with pytest.raises(EmbeddingInputError, match="unknown CF model"):
        cf.CFJob("p", str(tmp_path), model="svd").parameters()


def test_rerun_replaces_the_table_and_leaves_no_stale_files(planted, tmp_path):
    job = cf.CFJob(planted["playlists"], str(tmp_path), model="als", factors=8, epochs=1)
    job.run()
    stale = os.path.join(job.folder, "old-part.parquet")
    open(stale, "wb").close()
    job.run()
    assert listed_names(job.folder) == [publish.SUCCESS, "vectors.parquet"]


# ---------------------------------------------------------------- genre Word2Vec


def test_genre_ids_index_the_genre_table_padded_to_ten(tmp_path):
    many = [f"g{i:02d}" for i in range(12)]
    meta = write_track_meta(str(tmp_path), {
        "a": ["rock", "pop", "rock"], "b": many, "c": [], "d": ["pop", "jazz"],
    })  # fmt: skip
    job = w2v.GenreW2VJob(meta, str(tmp_path), vector_size=8, deterministic=True)
    body = job.run()
    genres = readers.read_published(os.path.join(job.folder, "genres.parquet"),
                                    schemas.genre_vectors_schema(8), "duet embeddings")  # fmt: skip
    name = dict(
        zip(genres.column("index").to_pylist(), genres.column("id").to_pylist(), strict=True)
    )
    rows = {r["track_id"]: r for r in readers.read_published(
        os.path.join(job.folder, "track_genres.parquet"), schemas.TRACK_GENRES,
        "duet embeddings").to_pylist()}  # fmt: skip
    assert [name[i] for i in rows["a"]["genre_ids"][: rows["a"]["n_genres"]]] == ["rock", "pop"]
    assert rows["a"]["genre_ids"][2:] == [schemas.GENRE_PAD] * 8
    assert rows["b"]["n_genres"] == 10 and [name[i] for i in rows["b"]["genre_ids"]] == many[:10]
    assert rows["c"]["n_genres"] == 0 and rows["c"]["genre_ids"] == [schemas.GENRE_PAD] * 10
    counts = body["counts"]
    assert (counts["tracks_over_slots"], counts["tracks_without_genres"]) == (1, 1)
    assert counts["genres"] == 15 and body["parameters"]["window"] == 12


def test_genres_unseen_in_the_training_split_are_left_out_and_counted(tmp_path):
    meta = write_track_meta(str(tmp_path), {"a": ["rock", "pop"], "b": ["pop", "rock"],
                                            "c": ["rock", "polka"]})  # fmt: skip
    splits = write_splits(str(tmp_path), {"a": "train", "b": "train", "c": "test"})
    job = w2v.GenreW2VJob(meta, str(tmp_path), vector_size=8, splits=splits, split=("train",))
    body = job.run()
    assert body["counts"]["genres"] == 2 and body["counts"]["unknown_genres"] == 1
    rows = readers.read_published(
        os.path.join(job.folder, "track_genres.parquet"), schemas.TRACK_GENRES, "duet embeddings"
    )
    assert rows.column("n_genres").to_pylist() == [2, 2, 1]


def test_a_vocabulary_of_one_genre_keeps_its_initial_vector(tmp_path):
    meta = write_track_meta(str(tmp_path), {"a": ["rock"], "b": ["rock"]})
    body = w2v.GenreW2VJob(meta, str(tmp_path), vector_size=4).run()
    assert body["counts"]["genres"] == 1 and body["counts"]["genres_without_context"] == 1


def test_no_genres_at_all_is_a_clear_error(tmp_path, capsys):
    meta = write_track_meta(str(tmp_path), {"a": [], "b": []})
    assert "no track has a genre" in cli_error(
        capsys, ["embeddings", "genre-w2v", "--track-meta", meta, "--output", str(tmp_path)]
    )
