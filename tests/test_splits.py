"""Train/val/test splits: multilabel-stratified on genres, test first, reproducible by seed."""

import os
import random
from pathlib import Path

import numpy as np
import pytest
from iterstrat.ml_stratifiers import MultilabelStratifiedShuffleSplit

from duet import publish, schemas
from duet.cli import main
from duet.pipelines.tables import splits
from tests.support.helpers import cli_error
from tests.support.tables import write_track_meta

GENRES = [f"g{i}" for i in range(12)]


def catalogue(n: int = 2000, seed: int = 0, empty: int = 0) -> dict[str, list[str]]:
    """Tracks with 1-3 genres of skewed frequency (rare genres make stratification matter)."""
    rng = random.Random(seed)
    weights = [1 / (i + 1) ** 1.5 for i in range(len(GENRES))]
    meta = {}
    for i in range(n):
        k = rng.choice([1, 1, 2, 3])
        meta[f"track-{i:05d}"] = sorted(set(rng.choices(GENRES, weights, k=k)))
    for i in range(empty):
        meta[f"plain-{i:04d}"] = []
    return meta


def run(root, meta: dict, **options) -> dict[str, str]:
    folder = write_track_meta(str(root), meta)
    job = splits.SplitsJob(folder, str(root), **options)
    job.run()
    table = schemas.read_table(job.folder, schemas.SPLITS)
    return dict(
        zip(table.column("track_id").to_pylist(), table.column("split").to_pylist(), strict=True)
    )


def test_sizes_are_80_10_10_within_a_percent(tmp_path):
    assigned = run(tmp_path, catalogue())
    sizes = {s: list(assigned.values()).count(s) for s in schemas.SPLIT_NAMES}
    assert sum(sizes.values()) == 2000
    for name, target in (("train", 1600), ("val", 200), ("test", 200)):
        assert abs(sizes[name] - target) <= 20, sizes


def test_every_genre_keeps_its_share_in_each_split_better_than_random(tmp_path):
    meta = catalogue()
    assigned = run(tmp_path, meta)
    rng = np.random.default_rng(0)
    shuffled = dict(zip(meta, rng.permutation(["train"] * 1600 + ["val"] * 200 + ["test"] * 200),
                        strict=True))  # fmt: skip

    def worst_error(assignment):
        errors = []
        for genre in GENRES:
            tracks = [t for t, g in meta.items() if genre in g]
            for name, share in (("test", 0.1), ("val", 0.1)):
                errors.append(abs(sum(assignment[t] == name for t in tracks) / len(tracks) - share))
        return max(errors)

    assert worst_error(assigned) < 0.02 < worst_error(shuffled)


def test_same_as_the_library_called_test_first_then_validation(tmp_path):
    meta = catalogue(500)
    assigned = run(tmp_path, meta, seed=7)
    ids = sorted(meta)
    labels = splits.genre_matrix([meta[t] for t in ids])
    rest, test = next(
        MultilabelStratifiedShuffleSplit(1, test_size=0.1, random_state=7).split(ids, labels)
    )
    _, val = next(MultilabelStratifiedShuffleSplit(1, test_size=0.1 / 0.9, random_state=7).split(
        rest, labels[rest]))  # fmt: skip
    assert {ids[i] for i in test} == {t for t, s in assigned.items() if s == "test"}
    assert {ids[i] for i in rest[val]} == {t for t, s in assigned.items() if s == "val"}


def test_reproducible_with_the_seed_whatever_the_row_order(tmp_path):
    meta = catalogue(800)
    reordered = dict(reversed(list(meta.items())))
    first = run(tmp_path / "a", meta, seed=3)
    assert run(tmp_path / "b", reordered, seed=3) == first
    assert run(tmp_path / "c", meta, seed=4) != first


def test_tracks_without_genres_are_spread_over_all_splits(tmp_path):
    assigned = run(tmp_path, catalogue(900, empty=100))
    plain = [s for t, s in assigned.items() if t.startswith("plain-")]
    assert len(plain) == 100 and set(plain) == set(schemas.SPLIT_NAMES)


def test_random_split_when_no_track_has_genres(tmp_path):
    meta = {f"t{i}": [] for i in range(1000)}
    folder = write_track_meta(str(tmp_path), meta)
    body = splits.SplitsJob(folder, str(tmp_path), seed=1).run()
    assert body["parameters"]["method"] == "random"
    assert (body["counts"]["train"], body["counts"]["val"], body["counts"]["test"]) == (
        800,
        100,
        100,
    )


@pytest.mark.parametrize("kind", ["txt", "parquet", "csv"])
def test_excluded_tracks_are_left_out_and_counted(tmp_path, kind):
    meta = catalogue(300)
    drop = ["track-00001", "track-00002", "007", "not-a-track"]
    path = str(tmp_path / f"exclude.{kind}")
    if kind in ("txt", "csv"):
        header = "track_id\n" if kind == "csv" else ""
        Path(path).write_text(header + "\n".join(drop) + "\n")
    else:
        import pyarrow as pa
        import pyarrow.parquet as pq

        pq.write_table(pa.table({"track_id": drop}), path)
    folder = write_track_meta(str(tmp_path), {**meta, "007": ["g1"]})
    code = main(["splits", "--track-meta", folder, "--output", str(tmp_path), "--exclude", path])
    assert code == 0
    table = schemas.read_table(os.path.join(str(tmp_path), "splits.parquet"), schemas.SPLITS)
    assert set(drop).isdisjoint(table.column("track_id").to_pylist()) and table.num_rows == 298
    body = publish.read_success(os.path.join(str(tmp_path), "splits.parquet"))
    assert (body["counts"]["excluded"], body["counts"]["exclude_ids_unknown"]) == (3, 1)


def test_missing_inputs_are_clear_errors(tmp_path, capsys):
    assert "does not exist" in cli_error(
        capsys, ["splits", "--track-meta", str(tmp_path / "nope"), "--output", str(tmp_path)]
    )
    folder = write_track_meta(str(tmp_path), catalogue(10))
    assert "exclude file" in cli_error(
        capsys,
        ["splits", "--track-meta", folder, "--output", str(tmp_path), "--exclude", "missing.txt"],
    )
