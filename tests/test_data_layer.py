"""The data layer: how an epoch's rows are split over ranks and workers, what a missing or
corrupt member does, and the genre view."""

import glob
import os
import shutil

import numpy as np
import pyarrow.parquet as pq
import pytest

from duet import schemas
from duet.hashing import BLOCK_BYTES
from duet.index import IntegrityError
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


def _flip(root_dir: str, member, at: int) -> None:
    """Overwrite two bytes of ``member``'s array payload at byte ``at``."""
    with open(os.path.join(root_dir, member.shard), "r+b") as f:
        f.seek(member.start + at)
        f.write(b"\xff\xff")


def test_a_verified_crop_checks_only_the_blocks_it_reads(dataset, tmp_path):
    copy = str(tmp_path / "copy")
    shutil.copytree(dataset, copy)
    root = data.Root(Store(copy))
    track, member = max(root.members["mel-alonso"].items(), key=lambda kv: kv[1].length)
    row = member.width * 2  # bytes per frame (float16)
    block_frames = BLOCK_BYTES // row
    assert member.block_size == BLOCK_BYTES and member.length > 3 * block_frames
    _flip(copy, member, 2 * BLOCK_BYTES + 10)  # inside the third block
    clean = root.read_window("mel-alonso", track, 0, block_frames, verify=True)
    assert np.isfinite(clean).all()  # the first block still verifies: crops stay ranged
    root.read_window("mel-alonso", track, 2 * block_frames, 4)  # unverified: garbage, no error
    with pytest.raises(IntegrityError, match="does not match the index"):
        root.read_window("mel-alonso", track, 2 * block_frames - 2, 4, verify=True)


def test_an_index_without_block_digests_verifies_whole_members(dataset, tmp_path):
    copy = str(tmp_path / "old")
    shutil.copytree(dataset, copy)
    for part in glob.glob(os.path.join(copy, "index", "*.parquet")):
        table = pq.read_table(part)
        pq.write_table(table.drop_columns(["block_size", "block_digests"]), part)
    root = data.Root(Store(copy))
    track, member = next(iter(root.members["mel-alonso"].items()))
    assert member.block_digests is None
    _flip(copy, member, member.length * member.width * 2 - 4)  # the last frame
    root.read_window("mel-alonso", track, 0, 4)
    with pytest.raises(IntegrityError, match="sha256"):
        root.read_window("mel-alonso", track, 0, 4, verify=True)


def test_genre_view_stacks_a_tracks_genre_vectors_with_zero_padding(ferraro_dataset):
    root = data.Root(Store(ferraro_dataset))
    genres = root.genres("emb/genre_w2v")
    track, stacked = next(iter(genres.items()))
    assert stacked.shape[0] == schemas.GENRE_SLOTS
    used = (np.abs(stacked).sum(axis=1) > 0).sum()
    assert 1 <= used <= schemas.GENRE_SLOTS and not np.abs(stacked[used:]).sum()
