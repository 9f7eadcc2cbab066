"""duet evaluate: probes, triplets and playlist continuation on embeddings with known structure."""

import json

import numpy as np
import pyarrow as pa
import pytest

from duet import schemas
from duet.cli import main
from duet.errors import DuetError
from duet.training import evaluate
from tests.support.tables import write_playlists, write_track_meta


def clustered(n_per: int = 30, clusters: int = 4, dim: int = 16, noise: float = 0.3, seed: int = 0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(clusters, dim))
    vectors, labels = {}, {}
    for c in range(clusters):
        for i in range(n_per):
            t = f"c{c}-{i:02d}"
            vectors[t] = (centres[c] + noise * rng.normal(size=dim)).astype(np.float32)
            labels[t] = f"genre{c}"
    return vectors, labels


def test_probe_separates_structured_embeddings_from_noise():
    vectors, labels = clustered()
    ids = sorted(vectors)
    test = ids[::5]
    train = [t for t in ids if t not in test]
    good = evaluate.probe(np.stack([vectors[t] for t in train]), [labels[t] for t in train],
                          np.stack([vectors[t] for t in test]), [labels[t] for t in test], False)  # fmt: skip
    rng = np.random.default_rng(1)
    noise = {t: rng.normal(size=16) for t in ids}
    bad = evaluate.probe(np.stack([noise[t] for t in train]), [labels[t] for t in train],
                         np.stack([noise[t] for t in test]), [labels[t] for t in test], False)  # fmt: skip
    assert good["accuracy"] > 0.9 > bad["accuracy"] + 0.3


def test_multilabel_probe_reports_macro_roc_and_pr_auc():
    vectors, labels = clustered()
    tags = {t: [g, "all"] + (["odd"] if int(t[-2:]) % 2 else []) for t, g in labels.items()}
    ids = sorted(vectors)
    test = ids[::4]
    train = [t for t in ids if t not in test]
    scores = evaluate.probe(np.stack([vectors[t] for t in train]), [tags[t] for t in train],
                            np.stack([vectors[t] for t in test]), [tags[t] for t in test], True)  # fmt: skip
    # "all" (on every track) and "odd" (absent from the test tracks) cannot be scored
    assert scores["labels"] == 4 and 0.5 < scores["roc_auc"] <= 1 and 0 < scores["pr_auc"] <= 1


def test_few_shot_probe_trains_on_k_tracks_per_class_and_averages_draws():
    vectors, labels = clustered(noise=1.2)
    ids = sorted(vectors)
    x, y = np.stack([vectors[t] for t in ids]), [labels[t] for t in ids]
    one = evaluate.few_shot(x, y, shots=1, draws=10)
    five = evaluate.few_shot(x, y, shots=5, draws=10)
    assert one["shots"] == 1 and one["draws"] == 10 and one["classes"] == 4 and one["std"] > 0
    assert 0.25 < one["accuracy"] < five["accuracy"] <= 1.0
    assert evaluate.few_shot(x, y, shots=1, draws=10) == one  # seeded
    with pytest.raises(DuetError, match="2 classes"):
        evaluate.few_shot(x, y, shots=30)


def test_triplet_accuracy_counts_the_anchor_closer_to_its_positive():
    vectors = {"a": np.array([1.0, 0.0]), "p": np.array([0.9, 0.1]), "n": np.array([0.0, 1.0])}
    result = evaluate.triplet_accuracy(
        vectors, [("a", "p", "n"), ("a", "n", "p"), ("a", "p", "zz")]
    )
    assert result == {"triplet_accuracy": 0.5, "triplets": 2}


def test_continuation_ranks_held_out_tracks_of_structured_playlists_high():
    vectors, labels = clustered(n_per=60)
    rng = np.random.default_rng(2)
    playlists = [list(rng.choice([t for t in vectors if labels[t] == f"genre{c}"], 8, replace=False))
                 for c in range(4) for _ in range(5)]  # fmt: skip
    good = evaluate.continuation(vectors, playlists)
    noise = {t: rng.normal(size=16) for t in vectors}
    bad = evaluate.continuation(noise, playlists)
    # a quarter of the random negatives share the playlist's cluster, so HR@10 is far from 1
    assert good["queries"] == 20 * 5 and good["hr@10"] > bad["hr@10"] + 0.2
    assert good["mpr"] < 0.2 < 0.35 < bad["mpr"]


def test_cli_evaluates_every_measure_and_writes_the_report(tmp_path):
    vectors, labels = clustered()
    ids = sorted(vectors)
    table = pa.table({"track_id": ids, "vector": pa.FixedSizeListArray.from_arrays(
        pa.array(np.concatenate([vectors[t] for t in ids])), 16)})  # fmt: skip
    emb = str(tmp_path / "emb.parquet")
    schemas.write_table(table, emb, schemas.embeddings_schema(16))
    meta = write_track_meta(str(tmp_path), {t: [labels[t]] for t in ids})
    playlists = write_playlists(str(tmp_path), [ids[i : i + 6] for i in range(0, 120, 6)])
    triplets = tmp_path / "triplets.csv"
    triplets.write_text("anchor,positive,negative\nc0-00,c0-01,c1-00\n")
    out = str(tmp_path / "report.json")
    assert main(["evaluate", "--embeddings", emb, "--labels", meta,
                 "--triplets", str(triplets), "--playlists", playlists, "--output", out]) == 0  # fmt: skip
    with open(out) as f:
        report = json.load(f)
    assert report["probe"]["accuracy"] > 0.9 and report["triplets"]["triplets"] == 1
    assert report["continuation"]["queries"] > 0
    assert main(["evaluate", "--embeddings", emb, "--labels", meta,
                 "--shots", "2", "--draws", "5", "--output", out]) == 0  # fmt: skip
    with open(out) as f:
        assert json.load(f)["few_shot"]["draws"] == 5


def test_unknown_ids_in_triplets_are_left_out():
    assert evaluate.triplet_accuracy({}, [("a", "b", "c")])["triplets"] == 0


def test_continuation_with_no_playlist_to_query_is_a_one_line_error_not_nan():
    with pytest.raises(DuetError, match="1 playlist entries have an embedding .of 2.*same track"):
        evaluate.continuation({"a": np.ones(2)}, [["a", "b"]])
    with pytest.raises(ValueError):
        evaluate.probe(np.zeros((2, 2)), ["x", "x"], np.zeros((1, 2)), ["x"], False)
