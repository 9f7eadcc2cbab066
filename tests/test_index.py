"""One reader of the audio index: the library's ``AudioIndex`` and the trainer's ``Root`` share
the member model, the window arithmetic and the statistics rule, over either byte source."""

import json
import os
import shutil

import numpy as np
import pytest

from duet import publish
from duet.index import STD_FLOOR, AudioIndex, MemberError, StorageSource
from duet.training.data import Root
from duet.training.store import Store
from tests.support.helpers import stored


def readers(root: str) -> list[AudioIndex]:
    return [AudioIndex.open(root), Root(Store(root))]


def test_library_and_trainer_readers_return_the_same_members_windows_and_statistics(published):
    library, trainer = readers(published)
    assert library.members == trainer.members and library.track_ids == trainer.track_ids
    track = library.track_ids[0]
    for stream, start, count in (("mel-alonso", 7, 256), ("wav-22050", 100, 59_049)):
        got = [r.read_window(stream, track, start, count, verify=True) for r in (library, trainer)]
        np.testing.assert_array_equal(got[0], got[1])
        stored = library.read_frames(track, stream, start, count)
        scale = 32768.0 if stored.dtype == np.int16 else 1.0
        np.testing.assert_array_equal(got[0], stored.astype(np.float32) / np.float32(scale))
    a, b = library.stats("alonso"), trainer.stats("alonso")
    assert a.mean.dtype == a.std.dtype == np.float32
    np.testing.assert_array_equal(a.mean, b.mean)
    np.testing.assert_array_equal(a.std, b.std)


def test_a_band_that_never_varies_standardises_to_zero_in_every_reader(published, tmp_path):
    copy = str(tmp_path / "copy")
    shutil.copytree(published, copy)
    path = stored(copy, "stats/mel-alonso.json")
    with open(path) as f:
        body = json.load(f)
    body["std"][0], body["std"][1] = 0.0, 1e-9
    with open(path, "w") as f:
        json.dump(body, f)
    for reader in readers(copy):
        stats = reader.stats("alonso")
        assert stats.std[0] == stats.std[1] == np.float32(STD_FLOOR)
        np.testing.assert_array_equal(stats.std[2:], np.asarray(body["std"][2:], np.float32))
        track = reader.track_ids[0]
        patch = reader.read_window("mel-alonso", track, 0, 16)
        assert np.isfinite((patch - stats.mean) / stats.std).all()


def test_windows_outside_a_member_and_unknown_members_are_member_errors(published):
    for reader in readers(published):
        track = reader.track_ids[0]
        length = reader.entry(track, "mel-alonso").length
        with pytest.raises(MemberError, match=r"window \[.*\) outside"):
            reader.read_window("mel-alonso", track, length - 3, 4)
        with pytest.raises(MemberError, match="not in the index"):
            reader.read_window("mel-alonso", "no-such-track", 0, 4)


def test_both_readers_refuse_a_root_without_its_marker(published, tmp_path):
    copy = str(tmp_path / "copy")
    shutil.copytree(published, copy)
    os.remove(os.path.join(copy, "_SUCCESS"))
    with pytest.raises(publish.NotPublished, match="is not published.*run duet shards"):
        AudioIndex.open(copy)
    with pytest.raises(publish.NotPublished, match="is not published.*run duet shards"):
        Root(Store(copy))


def test_storage_source_lists_and_reads_by_relative_paths(published):
    source = StorageSource(published + "/")
    parts = source.glob("index/*.parquet")
    assert parts and all(p.startswith("index/part-") for p in parts)
    member = AudioIndex(source).entry(AudioIndex(source).track_ids[0], "wav-16000")
    assert len(source.read_range(member.shard, member.offset, member.size)) == member.size
    with pytest.raises(OSError, match="short read"):
        source.read_range(member.shard, os.path.getsize(os.path.join(published, member.shard)), 10)
