"""``duet evaluate``: downstream measures of track embeddings written by ``duet embed``.

- linear probe (scikit-learn logistic regression on standardised embeddings, train/test from
  the splits table or a seeded 80/20 split): macro ROC-AUC and PR-AUC for multi-label tags,
  accuracy for single-label genres;
- few-shot probe: the same classifier fitted on k tracks per class, averaged over seeded draws;
- triplet accuracy (dim-sim style): the share of (anchor, positive, negative) triplets where
  the anchor is closer (cosine) to the positive;
- playlist continuation (Choi et al.'s protocol): for each playlist, 3 query tracks; each
  held-out track is ranked by cosine to the query mean against 100 random negatives; HR@10
  and mean percentile rank (MPR, lower is better).
"""

from __future__ import annotations

import numpy as np


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
        raise ValueError(f"few-shot probe needs 2 classes with more than {shots} tracks each")
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
                 queries: int = 3, negatives: int = 100) -> dict:  # fmt: skip
    """Choi et al.'s playlist continuation: HR@10 and mean percentile rank."""
    ids = sorted(vectors)
    matrix = _normalise(np.stack([vectors[i] for i in ids]))
    index = {t: i for i, t in enumerate(ids)}
    rng = np.random.default_rng(seed)
    hits, ranks = [], []
    for playlist in playlists:
        tracks = [index[t] for t in dict.fromkeys(playlist) if t in index]
        if len(tracks) <= queries:
            continue
        order = rng.permutation(len(tracks))
        query = [tracks[i] for i in order[:queries]]
        held = [tracks[i] for i in order[queries:]]
        centre = matrix[query].mean(0)
        outside = np.setdiff1d(np.arange(len(ids)), tracks)
        if not len(outside):
            continue
        for target in held:
            negs = rng.choice(outside, size=min(negatives, len(outside)), replace=False)
            scores = matrix[np.r_[target, negs]] @ centre
            rank = int((scores[1:] > scores[0]).sum())
            hits.append(rank < 10)
            ranks.append(rank / len(negs))
    if not hits:
        return {"hr@10": float("nan"), "mpr": float("nan"), "queries": 0}
    return {"hr@10": float(np.mean(hits)), "mpr": float(np.mean(ranks)), "queries": len(hits)}
