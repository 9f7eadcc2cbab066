"""``duet evaluate``: downstream measures of track embeddings written by ``duet embed``.

- linear probe (scikit-learn logistic regression on standardised embeddings, train/test from
  the splits table or a seeded 80/20 split): macro ROC-AUC and PR-AUC for multi-label tags,
  accuracy for single-label genres;
- few-shot probe: the same classifier fitted on k tracks per class, averaged over seeded draws;
- triplet accuracy (dim-sim style): the share of (anchor, positive, negative) triplets where
  the anchor is closer (cosine) to the positive;
- playlist continuation (Choi et al.'s protocol): for each playlist, 3 query tracks; each
  held-out track is ranked by cosine to the query mean against 100 random negatives; HR@10
  and mean percentile rank (MPR, lower is better); with a splits table only test tracks are
  held out and ranked (cold start, as Ferraro et al. evaluate new songs).
"""

from __future__ import annotations

from collections import Counter

import numpy as np
import pyarrow as pa

from duet import publish, readers, schemas, storage
from duet.errors import DuetError


def _normalise(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def probe(train_x: np.ndarray, train_y: list, test_x: np.ndarray, test_y: list,
          multilabel: bool, seed: int = 0) -> dict:  # fmt: skip
    """Linear-probe scores: ROC-AUC / PR-AUC (macro) for multi-label, accuracy otherwise."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import accuracy_score, average_precision_score, roc_auc_score
    from sklearn.multiclass import OneVsRestClassifier
    from sklearn.preprocessing import MultiLabelBinarizer, StandardScaler

    scaler = StandardScaler().fit(train_x)
    train_x, test_x = scaler.transform(train_x), scaler.transform(test_x)
    if multilabel:
        binarizer = MultiLabelBinarizer().fit(list(train_y) + list(test_y))
        y_train, y_test = binarizer.transform(train_y), binarizer.transform(test_y)
        keep = (y_train.sum(0) > 0) & (y_train.sum(0) < len(y_train)) & (y_test.sum(0) > 0) & (
            y_test.sum(0) < len(y_test))  # fmt: skip
        model = OneVsRestClassifier(LogisticRegression(max_iter=2000, random_state=seed))
        model.fit(train_x, y_train[:, keep])
        scores = model.predict_proba(test_x)
        return {"roc_auc": float(roc_auc_score(y_test[:, keep], scores, average="macro")),
                "pr_auc": float(average_precision_score(y_test[:, keep], scores, average="macro")),
                "labels": int(keep.sum())}  # fmt: skip
    model = LogisticRegression(max_iter=2000, random_state=seed).fit(train_x, train_y)
    return {"accuracy": float(accuracy_score(test_y, model.predict(test_x))),
            "classes": len(set(train_y))}  # fmt: skip


def few_shot(vectors: np.ndarray, labels: list, shots: int, draws: int = 20, seed: int = 0) -> dict:
    """Linear probe trained on ``shots`` tracks per class and tested on all the others, mean
    (and std) accuracy over ``draws`` seeded draws: separates encoders where a full probe
    saturates (small catalogues, classes a random encoder already splits)."""
    labels_arr = np.asarray(labels, dtype=object)
    classes = sorted(set(labels))
    usable = [c for c in classes if (labels_arr == c).sum() > shots]
    if len(usable) < 2:
        raise DuetError(
            f"few-shot probe needs 2 classes with more than {shots} tracks each "
            "(lower --shots, or label more tracks)"
        )
    keep = np.isin(labels_arr, usable)
    vectors, labels_arr = vectors[keep], labels_arr[keep]
    rng = np.random.default_rng(seed)
    scores = []
    for draw in range(draws):
        train = np.concatenate([rng.choice(np.flatnonzero(labels_arr == c), shots, replace=False)
                                for c in usable])  # fmt: skip
        test = np.setdiff1d(np.arange(len(labels_arr)), train)
        result = probe(vectors[train], list(labels_arr[train]), vectors[test],
                       list(labels_arr[test]), multilabel=False, seed=seed + draw)  # fmt: skip
        scores.append(result["accuracy"])
    return {"accuracy": float(np.mean(scores)), "std": float(np.std(scores)), "shots": shots,
            "draws": draws, "classes": len(usable)}  # fmt: skip


def triplet_accuracy(vectors: dict[str, np.ndarray], triplets: list[tuple[str, str, str]]) -> dict:
    """Share of triplets whose anchor is closer to the positive than to the negative."""
    usable = [t for t in triplets if all(x in vectors for x in t)]
    if not usable:
        return {"triplet_accuracy": float("nan"), "triplets": 0}
    a, p, n = (np.stack([vectors[t[i]] for t in usable]) for i in range(3))
    a, p, n = _normalise(a), _normalise(p), _normalise(n)
    wins = (a * p).sum(1) > (a * n).sum(1)
    return {"triplet_accuracy": float(wins.mean()), "triplets": len(usable)}


def continuation(vectors: dict[str, np.ndarray], playlists: list[list[str]], seed: int = 0,
                 queries: int = 3, negatives: int = 100,
                 candidates: set[str] | None = None) -> dict:  # fmt: skip
    """Choi et al.'s playlist continuation: HR@10 and mean percentile rank.

    Each playlist's songs are split into ``queries`` random query songs and held-out targets;
    a target is ranked against ``negatives`` songs outside the playlist by cosine similarity to
    the mean query vector. With ``candidates`` (e.g. the test split's songs: cold-start
    continuation), only candidates are held out and ranked against other candidates, queried
    by up to ``queries`` of the playlist's other songs.
    """
    ids = sorted(vectors)
    matrix = _normalise(np.stack([vectors[i] for i in ids]))
    index = {t: i for i, t in enumerate(ids)}
    pool = (
        None if candidates is None else np.array(sorted(index[t] for t in candidates if t in index))
    )
    rng = np.random.default_rng(seed)
    hits, ranks = [], []
    for playlist in playlists:
        tracks = [index[t] for t in dict.fromkeys(playlist) if t in index]
        if pool is None:
            if len(tracks) <= queries:
                continue
            order = rng.permutation(len(tracks))
            query = [tracks[i] for i in order[:queries]]
            held = [tracks[i] for i in order[queries:]]
            outside = np.setdiff1d(np.arange(len(ids)), tracks)
        else:
            assert candidates is not None  # pool is made from them
            held = [t for t in tracks if ids[t] in candidates]
            others = [t for t in tracks if ids[t] not in candidates]
            if not held or not others:
                continue
            query = [others[i] for i in rng.permutation(len(others))[:queries]]
            outside = np.setdiff1d(pool, tracks)
        centre = matrix[query].mean(0)
        if not len(outside):
            continue
        for target in held:
            negs = rng.choice(outside, size=min(negatives, len(outside)), replace=False)
            scores = matrix[np.r_[target, negs]] @ centre
            rank = int((scores[1:] > scores[0]).sum())
            hits.append(rank < 10)
            ranks.append(rank / len(negs))
    if not hits:
        matched = sum(1 for playlist in playlists for t in playlist if t in index)
        raise DuetError(f"playlist continuation has no query: {matched} playlist entries have "
                        f"an embedding (of {sum(map(len, playlists))}), and a playlist needs "
                        f"more than {queries} of them (check that --embeddings and --playlists "
                        "use the same track ids)")  # fmt: skip
    return {"hr@10": float(np.mean(hits)), "mpr": float(np.mean(ranks)), "queries": len(hits)}


def read_vectors(uri: str) -> dict[str, np.ndarray]:
    """An embedding table (``track_id``, ``vector``; ``duet embed``'s output, or a published
    ``emb/<model>/vectors.parquet`` read through its marker) as id → vector."""
    table = readers.read_embeddings(uri, "duet embed, or duet embeddings", users_own=True)
    matrix = np.asarray(table.column("vector").combine_chunks().values).reshape(table.num_rows, -1)
    return dict(zip(table.column("track_id").to_pylist(), matrix, strict=True))


def read_labels(uri: str, column: str, multilabel: bool) -> dict[str, object]:
    """Track id → its label (or list of labels with ``multilabel``) from a table with
    ``track_id`` and ``column`` (a published table such as ``track_meta.parquet``, or the
    user's own file: :func:`duet.publish.input_uris`); a list column gives its first item as
    the single label."""
    parts = publish.input_uris(
        uri, "duet playlists for track_meta.parquet, or name your own labels file"
    )
    labels = pa.concat_tables([schemas.table_from_bytes(storage.read_bytes(p), p, strings=("track_id",))
                               for p in parts])  # fmt: skip
    for name, option in (("track_id", "a track_id column"), (column, "--label-column")):
        if name not in labels.column_names:
            raise DuetError(f"--labels {uri} has no column {name!r} (its columns: "
                            f"{', '.join(labels.column_names[:12])}; it needs {option})")  # fmt: skip
    values = dict(zip(labels.column("track_id").to_pylist(), labels.column(column).to_pylist(),
                      strict=True))  # fmt: skip
    if not multilabel:
        values = {t: (v[0] if v else None) if isinstance(v, list) else v for t, v in values.items()}
    return values


def evaluate(embeddings: str, *, labels: str | None = None, label_column: str = "genres",
             multilabel: bool = False, splits: str | None = None, shots: int = 0, draws: int = 20,
             triplets: str | None = None, playlists: str | None = None,
             seed: int = 0) -> dict:  # fmt: skip
    """Every measure whose inputs are given, as one report: ``tracks``; ``probe`` (and
    ``few_shot`` with ``shots``) when ``labels`` is given, tested on the ``test`` split of
    ``splits`` or else on a seeded 20 %; ``triplets`` (a table ``anchor, positive, negative``);
    ``continuation`` (a playlists table; with ``splits``, only the test tracks are held out and
    ranked: cold-start continuation)."""
    vectors = read_vectors(embeddings)
    report: dict = {"tracks": len(vectors)}
    if labels:
        if shots and multilabel:
            raise DuetError("--shots: the few-shot probe takes single labels (no --multilabel)")
        values = read_labels(labels, label_column, multilabel)
        ids = sorted(t for t, v in values.items() if t in vectors and v not in (None, []))
        if not ids:
            raise DuetError(unmatched(values, vectors, labels, embeddings))
        report["labelled"] = {"in_labels": len(values), "with_embedding": len(ids)}
        if splits:
            test = held_out(splits) & set(ids)
        else:
            rng = np.random.default_rng(seed)
            test = set(rng.choice(ids, size=max(1, len(ids) // 5), replace=False).tolist())
        train_ids = [t for t in ids if t not in test]
        test_ids = sorted(test)
        if not test_ids or not train_ids:
            raise DuetError(f"{len(ids)} labelled tracks have embeddings, {len(test_ids)} of them "
                            "test tracks: the probe needs both train and test tracks (check "
                            "--splits)")  # fmt: skip
        report["probe"] = probe(
            np.stack([vectors[t] for t in train_ids]), [values[t] for t in train_ids],
            np.stack([vectors[t] for t in test_ids]), [values[t] for t in test_ids],
            multilabel=multilabel, seed=seed,
        )  # fmt: skip
        report["probe"] |= baseline([values[t] for t in train_ids], [values[t] for t in test_ids],
                                    multilabel)  # fmt: skip
        if shots:
            report["few_shot"] = few_shot(np.stack([vectors[t] for t in ids]),
                                          [values[t] for t in ids], shots, draws, seed)  # fmt: skip
    if triplets:
        t = schemas.table_from_bytes(storage.read_bytes(triplets), triplets,
                                     strings=("anchor", "positive", "negative"))  # fmt: skip
        rows = list(zip(*(t.column(c).to_pylist() for c in ("anchor", "positive", "negative")),
                        strict=True))  # fmt: skip
        report["triplets"] = triplet_accuracy(vectors, rows)
    if playlists:
        table = readers.read_input(playlists, schemas.PLAYLISTS, "duet playlists")
        lists = table.column("track_ids").to_pylist()
        held = held_out(splits) if splits else None
        report["continuation"] = {**continuation(vectors, lists, seed=seed, candidates=held),
                                  "targets": "test split" if splits else "all tracks"}  # fmt: skip
    return report


def baseline(train_y: list, test_y: list, multilabel: bool) -> dict:
    """What the probe's score means: ``n_train`` and ``n_test`` tracks, and the score of a probe
    that ignores the audio: the accuracy of always answering the most frequent training class
    (``majority_accuracy``), or for tags the PR-AUC of a constant score (the mean share of test
    tracks carrying each tag, ``prevalence_pr_auc``; a constant score's ROC-AUC is 0.5)."""
    out: dict = {"n_train": len(train_y), "n_test": len(test_y)}
    if multilabel:
        tags = sorted({t for y in train_y for t in y} & {t for y in test_y for t in y})
        shares = [sum(t in y for y in test_y) / len(test_y) for t in tags]
        out["prevalence_pr_auc"] = float(np.mean(shares)) if shares else 0.0
    else:
        majority = Counter(train_y).most_common(1)[0][0]
        out["majority_class"] = majority
        out["majority_accuracy"] = sum(y == majority for y in test_y) / len(test_y)
    return out


def unmatched(values: dict[str, object], vectors: dict, labels: str, embeddings: str) -> str:
    """Why no labelled track has an embedding, with a few ids from each side."""
    labelled = sorted(t for t, v in values.items() if v not in (None, []))
    if not labelled:
        return f"--labels {labels}: no track has a label"
    theirs, ours = labelled[:3], sorted(vectors)[:3]
    return (
        f"none of the {len(labelled):,} labelled tracks of --labels {labels} has an "
        f"embedding in --embeddings {embeddings}: labels have {', '.join(map(repr, theirs))}, "
        f"embeddings have {', '.join(map(repr, ours))} (the labels' track_id must equal the "
        "ids the audio got in duet shards: --id-from, --id-column)"
    )


def held_out(splits: str) -> set[str]:
    """The tracks a splits table assigns to ``test``."""
    table = readers.read_input(splits, schemas.SPLITS, "duet splits")
    return {t for t, s in zip(table.column("track_id").to_pylist(),
                              table.column("split").to_pylist(), strict=True) if s == "test"}  # fmt: skip
