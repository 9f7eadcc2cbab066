"""Train/val/test splits of tracks, multilabel-stratified on genres (Ferraro et al.).

Iterative stratification (Sechidis et al. 2011) through iterative-stratification's
MultilabelStratifiedShuffleSplit, test first, then validation from the rest, as in the paper.
The algorithm breaks ties at random, so it is reproducible only with a fixed ``random_state``:
the seed is always passed, and tracks are sorted by id first so the input's row order does
not matter. Tracks without genres are spread over the three splits in the same proportions
(the library handles all-zero label rows); with no genres at all the split is a seeded random
permutation.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from duet import layout, publish, readers, schemas, storage
from duet.pipelines.tables import common


def read_exclude(uri: str) -> set[str]:
    """Track ids to leave out: a table with ``track_id`` (Parquet/CSV/JSONL) or a text file with
    one id per line."""
    if not storage.exists(uri):
        raise common.EmbeddingInputError(f"exclude file {uri} does not exist")
    if uri.lower().removesuffix(".gz").endswith((".parquet", ".csv", ".jsonl", ".json")):
        table = schemas.table_from_bytes(storage.read_bytes(uri), uri, strings=("track_id",))
        if "track_id" not in table.column_names:
            raise common.EmbeddingInputError(f"exclude table {uri} has no track_id column")
        return {str(v) for v in table.column("track_id").to_pylist() if v is not None}
    text = storage.read_bytes(uri).decode("utf-8")
    return {line.strip() for line in text.splitlines() if line.strip()}


def genre_matrix(genres: list[list[str]]) -> np.ndarray:
    """Boolean track × genre matrix (the library indexes with it, so it must be bool)."""
    vocab = {g: i for i, g in enumerate(sorted({g for gs in genres for g in gs}))}
    labels = np.zeros((len(genres), len(vocab)), dtype=bool)
    for row, gs in enumerate(genres):
        labels[row, [vocab[g] for g in gs]] = True
    return labels


def assign(labels: np.ndarray, test: float, val: float, seed: int) -> np.ndarray:
    """Split index per row: 0 train, 1 val, 2 test. Stratified when any row has a label."""
    n = labels.shape[0]
    out = np.zeros(n, dtype=np.int8)
    if n < 3:
        return out
    if not labels.any():
        order = np.random.default_rng(seed).permutation(n)
        n_test, n_val = round(n * test), round(n * val)
        out[order[:n_test]] = 2
        out[order[n_test : n_test + n_val]] = 1
        return out
    from iterstrat.ml_stratifiers import MultilabelStratifiedShuffleSplit

    rest, test_idx = next(MultilabelStratifiedShuffleSplit(
        n_splits=1, test_size=test, random_state=seed).split(np.zeros(n), labels))  # fmt: skip
    out[test_idx] = 2
    inner = MultilabelStratifiedShuffleSplit(
        n_splits=1, test_size=val / (1 - test), random_state=seed
    )
    _, val_idx = next(inner.split(np.zeros(len(rest)), labels[rest]))
    out[rest[val_idx]] = 1
    return out


@dataclass(frozen=True)
class SplitsJob:
    track_meta: str
    output: str
    seed: int = 0
    test: float = 0.1
    val: float = 0.1
    exclude: str | None = None
    commit: publish.Commit = publish.Commit()

    @property
    def folder(self) -> str:
        return layout.at(self.output, layout.SPLITS)

    def check_inputs(self) -> None:
        if not (0 < self.test < 1 and 0 < self.val < 1 and self.test + self.val < 1):
            raise common.EmbeddingInputError(
                "--test and --val must be in (0, 1) with a sum below 1"
            )
        common.require_inputs((self.track_meta, common.PLAYLISTS_BY))
        if self.exclude and not storage.exists(self.exclude):
            raise common.EmbeddingInputError(f"exclude file {self.exclude} does not exist")

    def run(self) -> dict:
        started = time.monotonic()
        self.check_inputs()
        meta = readers.read_input(self.track_meta, schemas.TRACK_META, common.PLAYLISTS_BY)
        meta = meta.take(pc.sort_indices(meta.column("track_id")))
        counts = {"tracks_read": meta.num_rows, "excluded": 0}
        if self.exclude:
            excluded = read_exclude(self.exclude)
            keep = pc.invert(
                pc.is_in(meta.column("track_id"), value_set=pa.array(sorted(excluded), pa.string()))
            )
            counts["excluded"] = meta.num_rows - pc.sum(keep.cast(pa.int64())).as_py()
            counts["exclude_ids_unknown"] = len(excluded) - counts["excluded"]
            meta = meta.filter(keep)
        if not meta.num_rows:
            raise common.EmbeddingInputError(f"{self.track_meta}: no tracks to split")
        labels = genre_matrix(meta.column("genres").to_pylist())
        split = assign(labels, self.test, self.val, self.seed)
        names = np.array(schemas.SPLIT_NAMES)
        table = pa.table({"track_id": meta.column("track_id"), "split": pa.array(names[split])})
        counts.update({name: int((split == i).sum()) for i, name in enumerate(names)})
        counts["tracks"] = len(split)
        counts["tracks_without_genres"] = int((~labels.any(axis=1)).sum())
        counts["genres"] = labels.shape[1]
        method = "iterative-stratification" if labels.any() else "random"
        body = common.sidecar(
            "splits", "splits", {**{k: v for k, v in asdict(self).items() if k not in ("track_meta", "output", "commit")},
                       "method": method},
            self.seed, {"track_meta": self.track_meta, "exclude": self.exclude}, counts,
            common.library_versions("iterative-stratification", "scikit-learn"), started,
        )  # fmt: skip
        return common.publish_tables(self.folder, {layout.part_name(0): (table, schemas.SPLITS)},
                                     body, measures={"tracks": "counts.tracks"}, how=self.commit)  # fmt: skip
