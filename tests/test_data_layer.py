"""The data layer: how an epoch's rows are split over ranks and workers, what a missing or
corrupt member does, and the genre view."""

import os
import shutil

import numpy as np
import pytest

from duet import schemas
from duet.training import data
from duet.training.store import Store


def test_each_rank_and_worker_gets_distinct_rows_without_gaps(dataset):
    root = data.Root(Store(dataset))
    run = root.latest_run()
    views = (data.View("a", stream="wav-22050", length=1000),)
    seen = []
    for rank in range(2):
        batches = data.EpochBatches(root, run, "self", 0, views, 2, 0, rank=rank, world=2)
        for b in range(batches.batches):
            seen += data.batch_rows(b, 2, rank, 2).tolist()
    rows = root.manifest(run, "self", 0).num_rows
    assert len(seen) == len(set(seen)) and set(seen) == set(range(len(seen)))
    assert rows - len(seen) < 2 * 2  # only the tail that cannot fill a batch on every rank


def test_a_missing_member_is_skipped_and_counted_not_fatal(dataset):
    root = data.Root(Store(dataset))
    run = root.latest_run()
    victim = next(iter(root.members["wav-22050"]))
    del root.members["wav-22050"][victim]
    views = (data.View("a", stream="wav-22050", length=1000),)
    batches = data.EpochBatches(root, run, "self", 0, views, 3, 0)
    got = [b for b in batches if not b.get("empty")]
    assert batches.counters.skipped == 1 and victim not in sum((b["ids"] for b in got), [])
    assert sum(b["skipped"] for b in got) == 1


def test_sha256_is_verified_on_demand(dataset, tmp_path):
    copy = str(tmp_path / "copy")
    shutil.copytree(dataset, copy)
    root = data.Root(Store(copy))
    track, member = next(iter(root.members["mel-alonso"].items()))
    with open(os.path.join(copy, member.shard), "r+b") as f:
        f.seek(member.start + 10)
        f.write(b"\xff\xff")
    root.read_window("mel-alonso", track, 0, 4)
    with pytest.raises(data.MemberError, match="sha256"):
        root.read_window("mel-alonso", track, 0, 4, verify=True)


def test_genre_view_stacks_a_tracks_genre_vectors_with_zero_padding(ferraro_dataset):
    root = data.Root(Store(ferraro_dataset))
    genres = root.genres("emb/genre_w2v")
    track, stacked = next(iter(genres.items()))
    assert stacked.shape[0] == schemas.GENRE_SLOTS
    used = (np.abs(stacked).sum(axis=1) > 0).sum()
    assert 1 <= used <= schemas.GENRE_SLOTS and not np.abs(stacked[used:]).sum()
