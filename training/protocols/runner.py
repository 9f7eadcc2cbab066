"""``duet evaluate --protocol NAME``: each protocol read from the tables duet writes (an
embedding table, labels, splits, playlists), checked, scored and laid out as in its paper."""

from __future__ import annotations

import numpy as np

from duet import readers, schemas
from duet.errors import DuetError
from duet.training.evaluate import read_labels, read_vectors
from duet.training.protocols import classification, retrieval

PROTOCOLS = ("clmr-linear", "choi", "alonso-finetune", "ferraro-continuation", "pemr-cover")


def read_splits(uri: str) -> dict[str, str]:
    """Track id → its split (``train``, ``val``, ``test``) from a splits table (published, read
    through its marker, or the user's own file)."""
    table = readers.read_input(uri, schemas.SPLITS, "duet splits")
    return dict(zip(table.column("track_id").to_pylist(), table.column("split").to_pylist(),
                    strict=True))  # fmt: skip


def markdown(columns: list[str], row: list[str]) -> str:
    """A one-row Markdown table."""
    return "\n".join(("| " + " | ".join(columns) + " |", "|" + " --- |" * len(columns),
                      "| " + " | ".join(row) + " |"))  # fmt: skip


def _need(value: str | None, flag: str, protocol: str) -> str:
    if not value:
        raise DuetError(f"--protocol {protocol} needs {flag}")
    return value


def _by_split(ids: list[str], splits: dict[str, str]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {"train": [], "val": [], "test": []}
    for track in ids:
        if splits.get(track) in out:
            out[splits[track]].append(track)
    return out


def clmr_linear(embeddings: str, labels: str, label_column: str, splits: str,
                hidden: int = 0, seeds: int = 3, lr: float = 3e-4,
                max_epochs: int = 1000) -> dict:  # fmt: skip
    """CLMR's linear evaluation (see :func:`classification.linear_evaluation`) on the tags in
    ``label_column`` (a list column), trained on ``train``, stopped on ``val``, tested on
    ``test`` of the splits table."""
    vectors = read_vectors(embeddings)
    values: dict[str, list[str]] = {
        t: list(v or ())  # type: ignore[call-overload]
        for t, v in read_labels(labels, label_column, multilabel=True).items()
    }
    ids = sorted(t for t in values if t in vectors)
    parts = _by_split(ids, read_splits(splits))
    empty = [name for name, tracks in parts.items() if not tracks]
    if empty:
        raise DuetError(f"clmr-linear needs train, val and test tracks with embeddings and "
                        f"labels; {', '.join(empty)} has none")  # fmt: skip
    tags = sorted({tag for t in ids for tag in values[t]})
    column = {tag: i for i, tag in enumerate(tags)}

    def arrays(tracks: list[str]) -> tuple[np.ndarray, np.ndarray]:
        truth = np.zeros((len(tracks), len(tags)), np.float32)
        for row, track in enumerate(tracks):
            truth[row, [column[tag] for tag in values[track]]] = 1
        return np.stack([vectors[t] for t in tracks]), truth

    report = classification.linear_evaluation(*(arrays(parts[s]) for s in ("train", "val", "test")),
                                              seeds=tuple(range(seeds)), hidden=hidden, lr=lr,
                                              max_epochs=max_epochs)  # fmt: skip
    report["table"] = markdown(
        ["ROC-AUC (tag)", "PR-AUC (tag)", "ROC-AUC (clip)", "PR-AUC (clip)"],
        [f"{report[k]:.3f} ± {report[k + '_std']:.3f}"
         for k in ("tag_roc_auc", "tag_pr_auc", "clip_roc_auc", "clip_pr_auc")],
    )  # fmt: skip
    return report


def choi(embeddings: str, labels: str, label_column: str, splits: str,
         multilabel: bool, seed: int = 0) -> dict:  # fmt: skip
    """Choi et al.'s shallow classifiers: fitted on the train and val tracks, tested on test."""
    vectors = read_vectors(embeddings)
    values = read_labels(labels, label_column, multilabel)
    ids = sorted(t for t, v in values.items() if t in vectors and v not in (None, []))
    parts = _by_split(ids, read_splits(splits))
    fit, test = parts["train"] + parts["val"], parts["test"]
    if not fit or not test:
        raise DuetError("choi needs tracks with embeddings and labels in train (or val) and test")
    report = classification.shallow_classifiers(
        np.stack([vectors[t] for t in fit]), [values[t] for t in fit],
        np.stack([vectors[t] for t in test]), [values[t] for t in test], multilabel, seed)  # fmt: skip
    key = "roc_auc" if multilabel else "accuracy"
    report["table"] = markdown(["Linear SVM", "Logistic regression"],
                               [f"{report[m][key]:.3f}" for m in ("svm", "logistic")])  # fmt: skip
    report.update(train=len(fit), test=len(test), measure=key)
    return report


def ferraro_continuation(embeddings: str, playlists: str, splits: str, k: int = 100) -> dict:
    """Ferraro et al.'s continuation with the test split's tracks as the new songs."""
    vectors = read_vectors(embeddings)
    table = readers.read_input(playlists, schemas.PLAYLISTS, "duet playlists")
    lists = table.column("track_ids").to_pylist()
    test = {t for t, s in read_splits(splits).items() if s == "test"}
    report = retrieval.playlist_continuation(vectors, lists, test, k)
    report["table"] = markdown([f"nDCG@{k}", f"MAP@{k}"],
                               [f"{report[f'ndcg@{k}']:.4f}", f"{report[f'map@{k}']:.4f}"])  # fmt: skip
    return report


def pemr_cover(embeddings: str, labels: str, label_column: str, splits: str | None = None) -> dict:
    """PEMR's cover-song identification; ``label_column`` holds each track's cover-set id;
    with ``splits``, only the test split's tracks take part."""
    vectors = read_vectors(embeddings)
    values = read_labels(labels, label_column, multilabel=False)
    keep = None if splits is None else {t for t, s in read_splits(splits).items() if s == "test"}
    ids = sorted(t for t, v in values.items() if t in vectors and v is not None
                 and (keep is None or t in keep))  # fmt: skip
    if not ids:
        raise DuetError("no track has both an embedding and a cover-set label")
    report = retrieval.cover_identification(np.stack([vectors[t] for t in ids]),
                                            [values[t] for t in ids])  # fmt: skip
    report["table"] = markdown(["MAP", "P@10", "MR1"],
                               [f"{report['map']:.3f}", f"{report['p@10']:.3f}", f"{report['mr1']:.2f}"])  # fmt: skip
    return report


def alonso_finetune(checkpoint: str, data: str, labels: str, label_column: str, splits: str,
                    runs: int = 3, max_epochs: int = 50) -> dict:  # fmt: skip
    """Alonso-Jiménez et al.'s fine-tuning (:func:`finetune.finetune`) of ``checkpoint`` on the
    tags of ``label_column``, audio read from the dataset root ``data``."""
    from duet.training.protocols import finetune

    values = {t: list(v or ()) for t, v in read_labels(labels, label_column, True).items()}  # type: ignore[call-overload]
    tags = sorted({tag for v in values.values() for tag in v})
    column = {tag: i for i, tag in enumerate(tags)}
    truth = {}
    for track, listed in values.items():
        row = np.zeros(len(tags), np.float32)
        row[[column[tag] for tag in listed]] = 1
        truth[track] = row
    report = finetune.finetune(checkpoint, data, truth, read_splits(splits), runs=runs,
                               max_epochs=max_epochs)  # fmt: skip
    report["table"] = markdown(["ROC-AUC", "PR-AUC"],
                               [f"{report['roc_auc']:.3f} ± {report['roc_auc_std']:.3f}",
                                f"{report['pr_auc']:.3f} ± {report['pr_auc_std']:.3f}"])  # fmt: skip
    return report


def run(protocol: str, *, embeddings: str | None = None, labels: str | None = None,
        label_column: str = "genres", multilabel: bool = False, splits: str | None = None,
        playlists: str | None = None, hidden: int = 0, seeds: int = 3, seed: int = 0,
        lr: float = 3e-4, max_epochs: int | None = None, checkpoint: str | None = None,
        data: str | None = None) -> dict:  # fmt: skip
    """One protocol by name, its inputs checked: a missing input is a one-line ``DuetError``."""
    report: dict
    if protocol == "alonso-finetune":
        report = alonso_finetune(_need(checkpoint, "--checkpoint", protocol),
                                 _need(data, "--data", protocol),
                                 _need(labels, "--labels", protocol), label_column,
                                 _need(splits, "--splits", protocol), seeds, max_epochs or 50)  # fmt: skip
        return {"protocol": protocol, **report}
    embeddings = _need(embeddings, "--embeddings", protocol)
    if protocol == "clmr-linear":
        report = clmr_linear(embeddings, _need(labels, "--labels", protocol), label_column,
                             _need(splits, "--splits", protocol), hidden, seeds, lr, max_epochs or 1000)  # fmt: skip
    elif protocol == "choi":
        report = choi(embeddings, _need(labels, "--labels", protocol), label_column,
                      _need(splits, "--splits", protocol), multilabel, seed)  # fmt: skip
    elif protocol == "ferraro-continuation":
        report = ferraro_continuation(embeddings, _need(playlists, "--playlists", protocol),
                                      _need(splits, "--splits", protocol))  # fmt: skip
    elif protocol == "pemr-cover":
        report = pemr_cover(embeddings, _need(labels, "--labels", protocol), label_column, splits)
    else:
        raise DuetError(f"unknown protocol {protocol!r}; expected one of {', '.join(PROTOCOLS)}")
    return {"protocol": protocol, **report}
