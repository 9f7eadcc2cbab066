"""Collaborative-filtering track factors from the playlist × track matrix.

- ``warp``: LightFM's WARP (Weston et al.), as Ferraro et al. ran it: 300 factors, max_sampled 40,
  learning rate 0.05 (adagrad), 50 epochs. The fork ``lightfm-next`` is used because LightFM 1.17
  no longer builds on Python 3.11. Vector = 300 item factors followed by the item bias (301).
- ``bpr``: implicit's BayesianPersonalizedRanking (CPU). Vector = factors followed by the item
  bias, the layout implicit itself uses (its user factors end in a constant 1).
- ``als``: implicit's AlternatingLeastSquares (CPU). Vector = factors (no bias).

Playlists are the users. A track that appears in no (used) playlist gets no vector.
``deterministic`` trains on one thread: all three are Hogwild/parallel otherwise.
"""

from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import scipy.sparse as sp

from duet import layout, progress, publish, schemas
from duet.pipelines.tables import common

MODELS = ("warp", "bpr", "als")
DEFAULTS: dict[str, dict[str, float | None]] = {
    "warp": {"epochs": 50, "learning_rate": 0.05, "regularization": 0.0},
    "bpr": {"epochs": 100, "learning_rate": 0.01, "regularization": 0.01},
    "als": {"epochs": 15, "learning_rate": None, "regularization": 0.01},
}
"""Per-model defaults: WARP's are Ferraro et al.'s public code; BPR's and ALS's are implicit's."""
VECTOR_LAYOUTS = {"warp": "factors + item bias", "bpr": "factors + item bias", "als": "factors"}


def interactions(lists: pa.ListArray) -> tuple[sp.csr_matrix, list[str]]:
    """Binary playlist × track matrix (float32 CSR) and the track id of each column."""
    flat = pc.list_flatten(lists)
    encoded = pc.dictionary_encode(flat)
    rows = pc.list_parent_indices(lists).to_numpy()
    cols = encoded.indices.to_numpy()
    matrix = sp.csr_matrix(
        (np.ones(len(cols), np.float32), (rows, cols)),
        shape=(len(lists), len(encoded.dictionary)),
    )
    matrix.sum_duplicates()
    matrix.data[:] = 1.0
    return matrix, encoded.dictionary.to_pylist()


def _check_finite(epoch: int, *arrays: np.ndarray) -> None:
    if not all(np.isfinite(a).all() for a in arrays):
        raise common.Diverged(epoch, "factors", "--learning-rate")


def fit_warp(matrix: sp.csr_matrix, factors: int, epochs: int, learning_rate: float,
             max_sampled: int, regularization: float, seed: int, threads: int) -> np.ndarray:  # fmt: skip
    """LightFM WARP item factors with the item bias appended: ``[n_items, factors + 1]``.

    One epoch at a time (``fit`` is ``fit_partial`` after a reset, so the result is the same
    as one ``fit`` of all epochs), stopping with Diverged at the first non-finite epoch."""
    from lightfm import LightFM

    model = LightFM(
        no_components=factors, loss="warp", learning_rate=learning_rate,
        max_sampled=max_sampled, item_alpha=regularization, user_alpha=regularization,
        random_state=np.random.RandomState(seed),
    )  # fmt: skip
    coo = matrix.tocoo()
    for epoch in progress.steps(range(1, epochs + 1), desc="warp", unit="epoch"):
        fit = model.fit if epoch == 1 else model.fit_partial
        try:
            with np.errstate(invalid="ignore", over="ignore"):  # the check below reports it
                fit(coo, epochs=1, num_threads=threads)
        except ValueError as exc:  # LightFM's own check: "Not all estimated parameters are finite"
            if "finite" not in str(exc):
                raise
            raise common.Diverged(epoch, "factors", "--learning-rate") from None
        _check_finite(epoch, model.item_embeddings, model.item_biases)
    return np.hstack([model.item_embeddings, model.item_biases[:, None]])


def fit_implicit(matrix: sp.csr_matrix, model: str, factors: int, epochs: int,
                 learning_rate: float | None, regularization: float, alpha: float, seed: int,
                 threads: int) -> np.ndarray:  # fmt: skip
    """implicit BPR (factors + bias column) or ALS (factors) item factors."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1, "blas"):  # implicit warns (and slows) with a threaded BLAS
        if model == "bpr":
            from implicit.cpu.bpr import BayesianPersonalizedRanking

            learner = BayesianPersonalizedRanking(
                factors=factors, learning_rate=learning_rate, regularization=regularization,
                iterations=epochs, num_threads=threads, random_state=seed,
            )  # fmt: skip
        else:
            from implicit.cpu.als import AlternatingLeastSquares

            learner = AlternatingLeastSquares(
                factors=factors, regularization=regularization, alpha=alpha, iterations=epochs,
                num_threads=threads, random_state=seed,
            )  # fmt: skip

        def tick(i: int, *_: object) -> None:
            _check_finite(i + 1, learner.item_factors)
            progress.tick()

        with progress.monitored(epochs, model, "epoch"):
            learner.fit(matrix, show_progress=False, callback=tick)
    return np.asarray(learner.item_factors)


@dataclass(frozen=True)
class CFJob:
    """Item factors of one model; ``None`` parameters take the model's defaults (DEFAULTS)."""

    playlists: str
    output: str
    model: str = "warp"
    factors: int = 300
    epochs: int | None = None
    learning_rate: float | None = None
    regularization: float | None = None
    max_sampled: int = 40
    alpha: float = 1.0
    seed: int = 0
    threads: int | None = None
    deterministic: bool = False
    splits: str | None = None
    split: tuple[str, ...] = ()
    commit: publish.Commit = publish.Commit()

    @property
    def folder(self) -> str:
        return layout.at(self.output, layout.embedding_folder(layout.cf_model(self.model)))

    def check_inputs(self) -> None:
        self.parameters()
        common.require_inputs((self.playlists, common.PLAYLISTS_BY),
                              (self.splits if self.split else None, common.SPLITS_BY))  # fmt: skip

    def parameters(self) -> dict:
        if self.model not in MODELS:
            raise common.EmbeddingInputError(
                f"unknown CF model {self.model!r}; expected one of {MODELS}"
            )
        params = {k: v for k, v in asdict(self).items()
                  if k not in ("playlists", "output", "splits", "threads", "commit")}  # fmt: skip
        for key, value in DEFAULTS[self.model].items():
            if params[key] is None:
                params[key] = value
        if self.model != "warp":
            params.pop("max_sampled")
        if self.model != "als":
            params.pop("alpha")
        if self.model == "als":
            params.pop("learning_rate")
        params["threads"] = 1 if self.deterministic else (self.threads or os.cpu_count() or 1)
        return params

    def run(self) -> dict:
        started = time.monotonic()
        params = self.parameters()
        keep = common.split_tracks(self.splits, self.split) if self.split else None
        lists, counts = common.read_playlists(self.playlists, keep)
        matrix, track_ids = interactions(lists)
        if self.model == "warp":
            vectors = fit_warp(matrix, self.factors, params["epochs"], params["learning_rate"],
                               self.max_sampled, params["regularization"], self.seed,
                               params["threads"])  # fmt: skip
            libraries = common.library_versions("lightfm-next")
        else:
            vectors = fit_implicit(matrix, self.model, self.factors, params["epochs"],
                                   params.get("learning_rate"), params["regularization"],
                                   self.alpha, self.seed, params["threads"])  # fmt: skip
            libraries = common.library_versions("implicit")
        _check_finite(params["epochs"], vectors)
        counts.update(vectors=len(track_ids), interactions=int(matrix.nnz))
        body = common.sidecar(
            "embeddings", layout.cf_model(self.model), params, self.seed,
            {"playlists": self.playlists, "splits": self.splits if self.split else None},
            counts, libraries, started, vector_layout=VECTOR_LAYOUTS[self.model],
            dropped={"outside_split": counts["tracks_read"] - len(track_ids)},
        )  # fmt: skip
        table = common.vectors_table(track_ids, vectors)
        return common.publish_tables(
            self.folder,
            {layout.VECTORS: (table, schemas.embeddings_schema(vectors.shape[1]))},
            body,
            measures={"vectors": "counts.vectors"},
            how=self.commit,
        )
