"""The papers' classification protocols on frozen track embeddings.

- :func:`linear_evaluation` — CLMR (Spijkervet & Burgoyne, ISMIR 2021, experiments: linear
  evaluation): a logistic-regression layer (optionally one hidden layer) on the frozen encoder
  output h, trained with Adam (lr 3e-4, weight decay 1e-6) and stopped after 5 epochs without
  a lower validation loss; tag-wise and clip-wise macro ROC-AUC and PR-AUC, mean and std over
  3 seeds. PEMR (Yao et al., WWW 2022) reports its MagnaTagATune tagging the same way.
- :func:`shallow_classifiers` — Choi et al. (ICME 2022, experiments: downstream tasks): a
  linear SVM and a logistic regression on the track summary (per-dimension mean and std of the
  segment embeddings); accuracy for single-label tasks, macro ROC-AUC / PR-AUC for tags.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import numpy as np

from duet.errors import DuetError


def tag_and_clip_auc(truth: np.ndarray, scores: np.ndarray) -> dict:
    """Macro ROC-AUC and PR-AUC (average precision) of ``scores`` against the 0/1 ``truth``
    ``[clips, tags]``: tag-wise averages over tags (columns), clip-wise over clips (rows);
    each skips the columns / rows where the truth has only one class, and counts them (no
    clip with both classes: clip-wise measures are NaN; no such tag: ``DuetError``)."""
    from sklearn.metrics import average_precision_score, roc_auc_score

    out: dict[str, float | int] = {}
    for axis, name in ((0, "tag"), (1, "clip")):
        t, s = (truth, scores) if axis == 0 else (truth.T, scores.T)
        positives = t.sum(0)
        keep = (positives > 0) & (positives < len(t))
        if not keep.any() and axis == 0:
            raise DuetError("tag-wise AUC: every tag has a single class in the test set")
        if not keep.any():  # e.g. one tag per clip: clip-wise AUC is undefined
            out.update(clip_roc_auc=float("nan"), clip_pr_auc=float("nan"), clips_scored=0)
            continue
        out[f"{name}_roc_auc"] = float(roc_auc_score(t[:, keep], s[:, keep], average="macro"))
        out[f"{name}_pr_auc"] = float(
            average_precision_score(t[:, keep], s[:, keep], average="macro")
        )
        out[f"{name}s_scored"] = int(keep.sum())
    return out


def _fit_head(train_x: np.ndarray, train_y: np.ndarray, val_x: np.ndarray, val_y: np.ndarray,
              seed: int, hidden: int, lr: float, weight_decay: float, patience: int,
              max_epochs: int, batch_size: int):  # fmt: skip
    import torch
    from torch import nn

    torch.manual_seed(seed)
    dim, tags = train_x.shape[1], train_y.shape[1]
    head = (nn.Sequential(nn.Linear(dim, hidden), nn.ReLU(), nn.Linear(hidden, tags))
            if hidden else nn.Linear(dim, tags))  # fmt: skip
    optimiser = torch.optim.Adam(head.parameters(), lr=lr, weight_decay=weight_decay)
    loss_fn = nn.BCEWithLogitsLoss()
    x, y = torch.from_numpy(train_x), torch.from_numpy(train_y)
    vx, vy = torch.from_numpy(val_x), torch.from_numpy(val_y)
    order = torch.Generator().manual_seed(seed)
    best, best_state, waited, epochs = float("inf"), copy.deepcopy(head.state_dict()), 0, 0
    for epoch in range(max_epochs):
        epochs = epoch + 1
        head.train()
        for rows in torch.randperm(len(x), generator=order).split(batch_size):
            optimiser.zero_grad()
            loss_fn(head(x[rows]), y[rows]).backward()
            optimiser.step()
        head.eval()
        with torch.no_grad():
            val_loss = float(loss_fn(head(vx), vy))
        if val_loss < best:
            best, best_state, waited = val_loss, copy.deepcopy(head.state_dict()), 0
        else:
            waited += 1
            if waited >= patience:
                break
    head.load_state_dict(best_state)
    return head, epochs


def linear_evaluation(train: tuple[np.ndarray, np.ndarray], val: tuple[np.ndarray, np.ndarray],
                      test: tuple[np.ndarray, np.ndarray], *, seeds: Sequence[int] = (0, 1, 2),
                      hidden: int = 0, lr: float = 3e-4, weight_decay: float = 1e-6,
                      patience: int = 5, max_epochs: int = 1000,
                      batch_size: int = 256) -> dict:  # fmt: skip
    """CLMR's linear evaluation. Each split is ``(vectors [n, dim] float, truth [n, tags]
    0/1)``; ``hidden`` > 0 adds one hidden ReLU layer of that width. Returns the mean and std
    over ``seeds`` of every measure of :func:`tag_and_clip_auc` (``tag_roc_auc``,
    ``tag_roc_auc_std``, ...), the epochs each seed ran, and the split sizes."""
    import torch

    arrays = [
        np.ascontiguousarray(a, dtype=np.float32) for pair in (train, val, test) for a in pair
    ]
    train_x, train_y, val_x, val_y, test_x, test_y = arrays
    if not len(val_x):
        raise DuetError("linear evaluation stops early on a validation split, and it is empty")
    runs, epochs = [], []
    for seed in seeds:
        head, ran = _fit_head(train_x, train_y, val_x, val_y, seed, hidden, lr, weight_decay,
                              patience, max_epochs, batch_size)  # fmt: skip
        with torch.no_grad():
            scores = torch.sigmoid(head(torch.from_numpy(test_x))).numpy()
        runs.append(tag_and_clip_auc(test_y, scores))
        epochs.append(ran)
    report: dict = {}
    for key in ("tag_roc_auc", "tag_pr_auc", "clip_roc_auc", "clip_pr_auc"):
        values = [r[key] for r in runs]
        report[key], report[f"{key}_std"] = float(np.mean(values)), float(np.std(values))
    report.update(tags=runs[0]["tags_scored"], seeds=len(runs), epochs=epochs,
                  train=len(train_x), val=len(val_x), test=len(test_x))  # fmt: skip
    return report


def shallow_classifiers(train_x: np.ndarray, train_y: list, test_x: np.ndarray, test_y: list,
                        multilabel: bool, seed: int = 0) -> dict:  # fmt: skip
    """Choi et al.'s linear SVM and logistic regression on standardised track summaries:
    ``{"svm": {...}, "logistic": {...}}``, each ``accuracy`` (single label) or ``roc_auc`` /
    ``pr_auc`` (macro, one-vs-rest over the tags both splits have in both classes)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import accuracy_score, average_precision_score, roc_auc_score
    from sklearn.multiclass import OneVsRestClassifier
    from sklearn.preprocessing import MultiLabelBinarizer, StandardScaler
    from sklearn.svm import LinearSVC

    scaler = StandardScaler().fit(train_x)
    train_x, test_x = scaler.transform(train_x), scaler.transform(test_x)
    models = {"svm": LinearSVC(random_state=seed, max_iter=10000),
              "logistic": LogisticRegression(max_iter=2000, random_state=seed)}  # fmt: skip
    report: dict = {}
    if not multilabel:
        for name, model in models.items():
            model.fit(train_x, train_y)
            report[name] = {"accuracy": float(accuracy_score(test_y, model.predict(test_x)))}
        report["classes"] = len(set(train_y))
        return report
    binarizer = MultiLabelBinarizer().fit(list(train_y) + list(test_y))
    y_train, y_test = binarizer.transform(train_y), binarizer.transform(test_y)
    keep = ((y_train.sum(0) > 0) & (y_train.sum(0) < len(y_train)) & (y_test.sum(0) > 0)
            & (y_test.sum(0) < len(y_test)))  # fmt: skip
    if not keep.any():
        raise DuetError("no tag has both classes in both the training and the test split")
    for name, model in models.items():
        fitted = OneVsRestClassifier(model).fit(train_x, y_train[:, keep])
        scores = fitted.decision_function(test_x)
        report[name] = {
            "roc_auc": float(roc_auc_score(y_test[:, keep], scores, average="macro")),
            "pr_auc": float(average_precision_score(y_test[:, keep], scores, average="macro")),
        }
    report["tags"] = int(keep.sum())
    return report
