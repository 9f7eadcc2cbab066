"""The papers' protocols: each scorer against an example computed by hand, then each protocol
through ``duet evaluate --protocol`` run as a user runs it."""

import inspect
import json
import math
import os
import subprocess
import sys

import numpy as np
import pyarrow as pa
import pytest

from duet import schemas
from duet.errors import DuetError
from duet.training.protocols import classification, ranking, retrieval
from tests.support.tables import write_playlists, write_splits, write_track_meta

LOG2_3 = math.log2(3)


def test_ranking_measures_of_one_hand_ranked_list():
    # relevant items at ranks 1 and 3; 3 relevant items exist (one never retrieved)
    hits = [True, False, True, False, False]
    assert ranking.average_precision(hits, 3, k=5) == pytest.approx((1 / 1 + 2 / 3) / 3)
    dcg, ideal = 1 + 1 / 2, 1 + 1 / LOG2_3 + 1 / 2
    assert ranking.ndcg(hits, 3, k=5) == pytest.approx(dcg / ideal)
    assert ranking.precision_at(hits, 2) == 0.5
    assert ranking.precision_at(hits, 10) == 0.2  # ranks the list never reached are misses
    assert ranking.first_hit_rank([False, False, True]) == 3
    assert math.isnan(ranking.first_hit_rank([False, False]))


def test_map_at_k_divides_by_the_relevant_items_that_fit_in_k():
    assert ranking.average_precision([False, True], 1, k=2) == pytest.approx(0.5)
    assert ranking.average_precision([True, True], 5, k=2) == pytest.approx(1.0)
    assert ranking.ndcg([False, True], 1, k=2) == pytest.approx(1 / LOG2_3)


def test_cover_identification_of_two_sets_by_scalar_product():
    """a1·a2 = 2, but a2·b2 = 2.5 outranks a1 for query a2 (AP 1/2, first hit at rank 2);
    query b2 finds b1 last (AP 1/3, rank 3); c1 has no other version: a candidate, never a
    query. MAP = (1 + 1/2 + 1 + 1/3) / 4, MR1 = (1 + 2 + 1 + 3) / 4."""
    vectors = np.array([[1, 0], [2, 0.5], [0, 1], [1, 1], [-1, -1]], dtype=np.float32)
    got = retrieval.cover_identification(vectors, ["A", "A", "B", "B", "C"])
    assert got["map"] == pytest.approx((1 + 1 / 2 + 1 + 1 / 3) / 4)
    assert got["mr1"] == pytest.approx(1.75)
    assert got["p@10"] == pytest.approx(0.1)
    assert (got["queries"], got["candidates"]) == (4, 4)


def test_cover_identification_without_any_pair_is_an_error():
    with pytest.raises(DuetError, match="no cover set has two tracks"):
        retrieval.cover_identification(np.eye(3), ["a", "b", "c"])


def test_playlist_continuation_counts_each_known_tracks_nearest_test_tracks():
    """k = 2. Playlist 1 (q1, q2 known; t1 held out): q1's two nearest test tracks are t1, t3,
    q2's are t2, t3; t3 is listed twice, t1 beats t2 on summed cosine → [t3, t1]: nDCG@2 =
    (1/log2 3) / 1, AP@2 = (1/2) / 1. Playlist 2 (q2; t2, t3 held out) → [t2, t3]: 1 and 1.
    Playlist 3 has test tracks only (skipped); playlist 4 none (not scored)."""
    vectors = {"t1": [1, 0], "t2": [0, 1], "t3": [1, 1], "q1": [1, 0.1], "q2": [0.2, 1]}
    vectors = {t: np.asarray(v, dtype=np.float32) for t, v in vectors.items()}
    playlists = [["q1", "q2", "t1"], ["q2", "t2", "t3"], ["t2"], ["q1", "q2"]]
    got = retrieval.playlist_continuation(vectors, playlists, {"t1", "t2", "t3"}, k=2)
    assert got["ndcg@2"] == pytest.approx((1 / LOG2_3 + 1) / 2)
    assert got["map@2"] == pytest.approx((0.5 + 1) / 2)
    assert (got["playlists"], got["skipped"], got["candidates"]) == (2, 1, 3)


def test_tag_and_clip_auc_of_a_hand_scored_example():
    """Tag 0: positives 0.9, 0.4 vs negatives 0.2, 0.5 → 3 of 4 pairs ordered, ROC-AUC 0.75;
    ranked pos, neg, pos, neg → AP (1 + 2/3) / 2. Tag 1 the same. Clips 0 and 1 rank their
    one tag first (1.0); clips 2 (both tags) and 3 (none) have one class and are skipped."""
    truth = np.array([[1, 0], [0, 1], [1, 1], [0, 0]])
    scores = np.array([[0.9, 0.1], [0.2, 0.8], [0.4, 0.3], [0.5, 0.6]])
    got = classification.tag_and_clip_auc(truth, scores)
    assert got["tag_roc_auc"] == pytest.approx(0.75)
    assert got["tag_pr_auc"] == pytest.approx((1 + 2 / 3) / 2)
    assert got["clip_roc_auc"] == pytest.approx(1.0) and got["clip_pr_auc"] == pytest.approx(1.0)
    assert (got["tags_scored"], got["clips_scored"]) == (2, 2)


def tagged(n: int, seed: int, dim: int = 8, flip: float = 0.1):
    """Vectors whose first two dimensions decide two tags (a linear problem), plus noise in
    the other dimensions and ``flip`` of the labels flipped (so validation loss has a floor)."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, dim)).astype(np.float32)
    y = np.stack([x[:, 0] > 0, x[:, 1] > 0], axis=1)
    return x, (y ^ (rng.random(y.shape) < flip)).astype(np.float32)


def test_linear_evaluation_defaults_are_clmrs():
    """Spijkervet & Burgoyne (ISMIR 2021), linear evaluation: Adam at 3e-4 with weight decay
    1e-6, early stopping after 5 epochs without validation gain, 3 seeds, no hidden layer."""
    defaults = {k: p.default for k, p in
                inspect.signature(classification.linear_evaluation).parameters.items()}  # fmt: skip
    assert (defaults["lr"], defaults["weight_decay"], defaults["patience"]) == (3e-4, 1e-6, 5)
    assert (defaults["seeds"], defaults["hidden"]) == ((0, 1, 2), 0)


def test_clip_wise_auc_is_nan_when_no_clip_has_both_classes():
    got = classification.tag_and_clip_auc(
        np.array([[1], [0], [1]]), np.array([[0.9], [0.1], [0.8]])
    )
    assert got["tag_roc_auc"] == 1.0 and math.isnan(got["clip_roc_auc"])
    assert got["clips_scored"] == 0


def test_linear_evaluation_learns_a_linear_tagging_and_stops_on_validation():
    got = classification.linear_evaluation(tagged(400, 0), tagged(100, 1), tagged(100, 2),
                                           lr=1e-2, seeds=(0, 1, 2))  # fmt: skip
    assert got["tag_roc_auc"] > 0.85 and got["tag_pr_auc"] > 0.8
    assert got["seeds"] == 3 and got["tag_roc_auc_std"] > 0
    assert all(e < 1000 for e in got["epochs"])  # stopped by the 5-epoch patience


def test_linear_evaluation_of_noise_is_chance():
    x, _ = tagged(400, 0)
    noise = (x, tagged(400, 5)[1])
    got = classification.linear_evaluation(noise, tagged(100, 1), tagged(200, 2), lr=1e-2,
                                           seeds=(0,))  # fmt: skip
    assert 0.35 < got["tag_roc_auc"] < 0.65


def test_linear_evaluation_with_one_hidden_layer_learns_xor_tags():
    def xor(n, seed):
        x, _ = tagged(n, seed)
        odd = (x[:, 0] > 0) ^ (x[:, 1] > 0)
        return x, np.stack([odd, ~odd], axis=1).astype(np.float32)

    flat = classification.linear_evaluation(xor(600, 0), xor(200, 1), xor(200, 2), seeds=(0,),
                                            lr=1e-2)  # fmt: skip
    deep = classification.linear_evaluation(xor(600, 0), xor(200, 1), xor(200, 2), seeds=(0,),
                                            hidden=64, lr=1e-2)  # fmt: skip
    assert deep["tag_roc_auc"] > 0.85 > flat["tag_roc_auc"]


def test_choi_shallow_classifiers_score_separable_genres():
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(3, 6)) * 4
    labels = [i % 3 for i in range(90)]
    x = np.stack([centres[c] + rng.normal(size=6) for c in labels])
    got = classification.shallow_classifiers(x[:60], labels[:60], x[60:], labels[60:], False)
    assert got["svm"]["accuracy"] == 1.0 and got["logistic"]["accuracy"] == 1.0
    assert got["classes"] == 3


# The command, as a user runs it


def run_cli(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "duet.cli", *argv], capture_output=True,
                          text=True, check=False)  # fmt: skip


def write_embeddings(path: str, vectors: dict[str, np.ndarray]) -> str:
    ids = sorted(vectors)
    matrix = np.stack([vectors[t] for t in ids]).astype(np.float32)
    table = pa.table({"track_id": ids, "vector": pa.FixedSizeListArray.from_arrays(
        pa.array(matrix.reshape(-1)), matrix.shape[1])})  # fmt: skip
    schemas.write_table(table, path, schemas.embeddings_schema(matrix.shape[1]))
    return path


@pytest.fixture
def tagged_tables(tmp_path):
    x, y = tagged(300, 0)
    ids = [f"t{i:03d}" for i in range(300)]
    names = ("rock", "calm")
    tags = {t: [names[j] for j in range(2) if y[i, j]] for i, t in enumerate(ids)}
    split = {t: ("train", "train", "train", "val", "test")[i % 5] for i, t in enumerate(ids)}
    return {
        "emb": write_embeddings(str(tmp_path / "emb.parquet"), dict(zip(ids, x, strict=True))),
        "labels": os.path.join(write_track_meta(str(tmp_path), tags), "part-00000.parquet"),
        "splits": write_splits(str(tmp_path), split),
    }


def test_cli_clmr_linear_prints_the_papers_table(tagged_tables, tmp_path):
    out = str(tmp_path / "report.json")
    done = run_cli("evaluate", "--protocol", "clmr-linear", "--embeddings", tagged_tables["emb"],
                   "--labels", tagged_tables["labels"], "--splits", tagged_tables["splits"],
                   "--seeds", "2", "--lr", "1e-2", "--output", out)  # fmt: skip
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["protocol"] == "clmr-linear" and report["seeds"] == 2
    assert (report["train"], report["val"], report["test"]) == (180, 60, 60)
    assert report["tag_roc_auc"] > 0.8
    assert report["table"].splitlines()[0] == (
        "| ROC-AUC (tag) | PR-AUC (tag) | ROC-AUC (clip) | PR-AUC (clip) |"
    )
    with open(out) as f:
        assert json.loads(f.read()) == report


def test_cli_protocol_without_its_input_is_one_line(tagged_tables):
    done = run_cli("evaluate", "--protocol", "clmr-linear", "--embeddings", tagged_tables["emb"],
                   "--labels", tagged_tables["labels"])  # fmt: skip
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        "duet evaluate: --protocol clmr-linear needs --splits"
    ]


def test_cli_choi_reports_svm_and_logistic_accuracy(tmp_path):
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(3, 6)) * 4
    ids = [f"s{i:02d}" for i in range(60)]
    vectors = {t: centres[i % 3] + rng.normal(size=6) for i, t in enumerate(ids)}
    meta = write_track_meta(str(tmp_path), {t: [f"g{i % 3}"] for i, t in enumerate(ids)})
    splits = write_splits(str(tmp_path), {t: "test" if i % 4 == 0 else "train"
                                          for i, t in enumerate(ids)})  # fmt: skip
    done = run_cli("evaluate", "--protocol", "choi", "--embeddings",
                   write_embeddings(str(tmp_path / "e.parquet"), vectors), "--labels",
                   os.path.join(meta, "part-00000.parquet"), "--splits", splits)  # fmt: skip
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["svm"]["accuracy"] == 1.0 and report["measure"] == "accuracy"
    assert report["table"].splitlines()[0] == "| Linear SVM | Logistic regression |"


def test_cli_ferraro_continuation_and_pemr_cover_on_hand_examples(tmp_path):
    vectors = {"t1": [1, 0], "t2": [0, 1], "t3": [1, 1], "q1": [1, 0.1], "q2": [0.2, 1]}
    emb = write_embeddings(str(tmp_path / "e.parquet"),
                           {t: np.asarray(v, np.float32) for t, v in vectors.items()})  # fmt: skip
    playlists = write_playlists(str(tmp_path), [["q1", "q2", "t1"], ["q2", "t2", "t3"]])
    splits = write_splits(str(tmp_path), {"t1": "test", "t2": "test", "t3": "test",
                                          "q1": "train", "q2": "train"})  # fmt: skip
    done = run_cli("evaluate", "--protocol", "ferraro-continuation", "--embeddings", emb,
                   "--playlists", playlists, "--splits", splits)  # fmt: skip
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["playlists"] == 2 and report["candidates"] == 3
    assert report["table"].splitlines()[0] == "| nDCG@100 | MAP@100 |"

    covers = tmp_path / "covers.csv"
    covers.write_text("track_id,clique\nt1,A\nq1,A\nt2,B\nq2,B\nt3,C\n")
    done = run_cli("evaluate", "--protocol", "pemr-cover", "--embeddings", emb, "--labels",
                   str(covers), "--label-column", "clique")  # fmt: skip
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["queries"] == 4 and report["table"].splitlines()[0] == "| MAP | P@10 | MR1 |"


def test_alonso_finetune_defaults_are_the_papers():
    """Alonso-Jiménez et al. (ICASSP 2023), downstream evaluation: cyclical triangular learning
    rate between 1e-5 and 1e-4, L2 1e-5, at most 50 epochs, early stopping after 10 without an
    AP gain, validation on 30 s from the centre, 3 runs."""
    from duet.training.protocols import finetune

    defaults = {k: p.default for k, p in inspect.signature(finetune.finetune).parameters.items()}
    assert defaults["lr_range"] == (1e-5, 1e-4) and defaults["weight_decay"] == 1e-5
    assert (defaults["max_epochs"], defaults["patience"], defaults["runs"]) == (50, 10, 3)
    assert defaults["centre_seconds"] == 30.0


def test_cli_alonso_finetune_tunes_a_checkpoint_on_tags(dataset, catalog, tmp_path):
    from duet.training import data as data_layer
    from duet.training.loop import TrainConfig, train
    from duet.training.store import Store

    out = str(tmp_path / "ckpt")
    train(TrainConfig(recipe="alonso-co", data=dataset, out=out, epochs=1, batch_size=2,
                      workers=0, progress=False, max_steps=1), {"warmup_steps": 2})  # fmt: skip
    tracks = sorted(data_layer.Root(Store(dataset)).members["mel-alonso"])
    splits = write_splits(str(tmp_path), {t: ("train", "train", "val", "test")[i % 4]
                                          for i, t in enumerate(tracks)})  # fmt: skip
    done = run_cli("evaluate", "--protocol", "alonso-finetune", "--checkpoint",
                   os.path.join(out, "checkpoint.pt"), "--data", dataset, "--labels",
                   os.path.join(catalog, "tracks.parquet"), "--splits", splits, "--seeds", "1",
                   "--max-epochs", "2")  # fmt: skip
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["protocol"] == "alonso-finetune" and report["runs"] == 1
    assert report["epochs"][0] <= 2 and 0 <= report["roc_auc"] <= 1
    assert report["train"] + report["val"] + report["test"] == len(tracks)
    assert report["table"].splitlines()[0] == "| ROC-AUC | PR-AUC |"


def test_cli_evaluate_without_embeddings_is_one_line(tmp_path):
    done = run_cli("evaluate", "--labels", str(tmp_path / "x.parquet"))
    assert done.returncode == 1
    assert (
        done.stderr.strip() == "duet evaluate: --embeddings is required (the output of duet embed)"
    )
