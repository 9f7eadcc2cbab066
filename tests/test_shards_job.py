"""The shards Beam job end to end on real files with the real runner."""

import json
import os
import re
import subprocess
import sys
import tarfile
import time

import numpy as np
import pytest

from duet import publish, schemas
from duet.hashing import shard_of
from duet.index import AudioIndex, IntegrityError, MemberError
from duet.pipelines.audio.track import AudioConfig
from duet.pipelines.shardset.stats import BandStats, merge_in_order
from tests.support.helpers import (
    FAST_CONFIG,
    catalog_rows,
    run_shards,
    stored,
    tree,
    write_manifest,
)

MEMBER = re.compile(r"^[A-Za-z0-9_-]{1,40}-[0-9a-f]{16}\.(npy|json|flac)$")
HOSTILE = ["../../etc/passwd", "名前/曲 🎵", "x" * 10_000, "nul\x00id", "dup", "dup", "", "tab\tid"]


def mtimes(root: str) -> dict[str, int]:
    return {os.path.relpath(os.path.join(d, n), root): os.stat(os.path.join(d, n)).st_mtime_ns
            for d, _, names in os.walk(root) for n in names}  # fmt: skip


@pytest.fixture(scope="module")
def hostile_run(audio_files, tmp_path_factory):
    """A manifest with every good codec, every bad file, hostile and duplicate ids."""
    rows = [{"track_id": f"good/{name}", "audio_uri": path} for name, path in audio_files.items()]
    rows += [{"track_id": tid, "audio_uri": audio_files["mp3"]} for tid in HOSTILE]
    rows.append({"track_id": "missing", "audio_uri": "/nonexistent/file.mp3"})
    root = tmp_path_factory.mktemp("hostile")
    manifest = str(root / "tracks.jsonl")
    import json

    with open(manifest, "w") as f:
        for r in rows:
            f.write(json.dumps(r) + "\n")
        f.write("{broken json\n")
    config = AudioConfig(profiles=FAST_CONFIG.profiles, max_duration=10.0)
    out = str(root / "out")
    body = run_shards(manifest, out, config=config)
    return rows, out, body


def test_every_input_row_is_indexed_or_failed(hostile_run):
    rows, out, body = hostile_run
    index = AudioIndex.open(out)
    failures = index.failures().to_pylist()
    failed_ids = [f["track_id"] for f in failures]
    input_ids = [r["track_id"] for r in rows]
    assert sorted(map(repr, index.track_ids + failed_ids)) == sorted(map(repr, input_ids + [None]))
    assert set(index.track_ids).isdisjoint(failed_ids)
    assert body["counts"]["input_rows"] == len(rows) + 1
    assert body["counts"]["indexed"] + body["counts"]["failed"] == len(rows) + 1


def test_bad_inputs_land_in_failures_with_stage_and_reason(hostile_run):
    _, out, _ = hostile_run
    reasons = {
        f["track_id"]: (f["stage"], f["error"]) for f in AudioIndex.open(out).failures().to_pylist()
    }
    expected = {
        "good/empty": ("read", "empty file"), "good/text": ("decode", "not a readable audio file"),
        "good/truncated": ("decode", "not a readable"), "good/unsupported": ("decode", "unsupported codec"),
        "good/video_only": ("decode", "no audio stream"), "good/silent": ("validate", "silent"),
        "good/nan": ("validate", "non-finite"), "good/long": ("validate", "over-long"),
        "missing": ("read", "no such file"), "x" * 10_000: ("manifest", "bytes long"),
        "nul\x00id": ("manifest", "control characters"), "": ("manifest", "empty"),
        "tab\tid": ("manifest", "control characters"), "dup": ("manifest", "duplicate track_id"),
        None: ("manifest", "malformed JSON"),
    }  # fmt: skip
    for track_id, (stage, reason) in expected.items():
        assert reasons[track_id][0] == stage and reason in reasons[track_id][1], (
            track_id,
            reasons[track_id],
        )


def test_hostile_but_valid_ids_are_indexed(hostile_run):
    _, out, _ = hostile_run
    index = AudioIndex.open(out)
    for track_id in ("../../etc/passwd", "名前/曲 🎵", "good/6ch", "good/8k", "good/m4a"):
        assert index.load(track_id, "wav-16000", verify=True).dtype == np.int16


def test_member_names_never_come_from_raw_ids(hostile_run):
    _, out, _ = hostile_run
    for folder, _, names in os.walk(os.path.join(out, "shards")):
        for name in names:
            with tarfile.open(os.path.join(folder, name)) as tar:
                assert all(MEMBER.match(m.name) for m in tar.getmembers())
    assert not os.path.exists(os.path.join(out, "..", "etc"))


def test_index_ranged_reads_match_sha256_and_tar_contents(published):
    index = AudioIndex.open(published)
    table = schemas.read_table(os.path.join(published, "index"), schemas.AUDIO_INDEX).to_pylist()
    for row in table:
        data = index.read_member(row["track_id"], row["stream"], verify=True)
        with tarfile.open(os.path.join(published, row["shard"])) as tar:
            assert tar.extractfile(row["member"]).read() == data


def test_crop_is_one_ranged_read_equal_to_a_slice(published):
    index = AudioIndex.open(published)
    track = index.track_ids[0]
    full = index.load(track, "mel-alonso")
    np.testing.assert_array_equal(index.read_frames(track, "mel-alonso", 10, 256), full[10:266])
    wav = index.load(track, "wav-22050")
    np.testing.assert_array_equal(index.read_frames(track, "wav-22050", 500, 59049), wav[500:59549])
    with pytest.raises(MemberError, match="outside"):
        index.read_frames(track, "mel-alonso", len(full) - 5, 10)


def test_unknown_track_and_stream_are_precise_errors(published):
    index = AudioIndex.open(published)
    with pytest.raises(MemberError, match="not in the index"):
        index.entry("duet:broken:empty", "wav-16000")
    with pytest.raises(MemberError, match="unknown stream 'mel-nope'"):
        index.entry(index.track_ids[0], "mel-nope")


def test_corrupted_member_fails_verification(published, tmp_path):
    import shutil

    copy = str(tmp_path / "copy")
    shutil.copytree(published, copy)
    index = AudioIndex.open(copy)
    entry = index.entry(index.track_ids[0], "mel-alonso")
    with open(os.path.join(copy, entry.shard), "r+b") as f:
        f.seek(entry.start + 3)
        f.write(b"\xff")
    with pytest.raises(IntegrityError, match="sha256 mismatch"):
        index.read_member(index.track_ids[0], "mel-alonso", verify=True)


def test_shards_open_with_plain_webdataset(published):
    import webdataset as wds

    index = AudioIndex.open(published)
    urls = sorted(
        os.path.join(published, "shards/mel-alonso", n)
        for n in os.listdir(os.path.join(published, "shards/mel-alonso"))
    )
    samples = list(wds.WebDataset(urls, shardshuffle=False).decode())
    assert sorted(s["json"]["track_id"] for s in samples) == index.track_ids
    for s in samples:
        np.testing.assert_array_equal(s["npy"], index.load(s["json"]["track_id"], "mel-alonso"))


def test_mel_statistics_equal_direct_computation(published):
    index = AudioIndex.open(published)
    frames = np.concatenate(
        [index.load(t, "mel-ferraro").astype(np.float64) for t in index.track_ids]
    )
    with open(stored(published, "stats/mel-ferraro.json")) as f:
        stats = json.load(f)  # the exact float64 values the job published
    assert stats["frames"] == len(frames) and stats["split"] == "all"
    np.testing.assert_allclose(stats["mean"], frames.mean(axis=0), rtol=1e-9)
    np.testing.assert_allclose(stats["std"], frames.std(axis=0), rtol=1e-7)


def test_statistics_use_only_the_training_split(catalog, tmp_path):
    table = catalog_rows(catalog)
    for i, row in enumerate(table):
        row["split"] = "train" if i % 2 else "test"
    manifest = write_manifest(str(tmp_path / "split.parquet"), table)
    run_shards(manifest, str(tmp_path / "out"))
    index = AudioIndex.open(str(tmp_path / "out"))
    train = [t for t in index.track_ids if index.entry(t, "mel-alonso").split == "train"]
    parts = [BandStats.of(index.load(t, "mel-alonso")) for t in sorted(train)]
    stats = index.stats("alonso")
    assert stats.split == "train" and stats.frames == merge_in_order(parts).count


def test_rerun_is_byte_identical_and_leaves_shards_untouched(catalog, tmp_path):
    manifest = os.path.join(catalog, "tracks.parquet")
    out = str(tmp_path / "out")
    run_shards(manifest, out)
    before, stamps = tree(out), mtimes(out)
    run_shards(manifest, out)
    assert tree(out) == before
    after = mtimes(out)
    assert all(
        after[p] == stamps[p] for p in stamps if p.startswith(("shards", "index", "reports"))
    )


def test_adding_tracks_rewrites_only_the_shards_that_receive_them(catalog, tmp_path):
    full = catalog_rows(catalog)
    added = full[3:5]
    small = write_manifest(str(tmp_path / "small.parquet"), full[:3] + full[5:])
    big = write_manifest(str(tmp_path / "big.parquet"), full)
    out, fresh = str(tmp_path / "out"), str(tmp_path / "fresh")
    run_shards(small, out, num_shards=5)
    stamps, before = mtimes(out), publish.require_success(out)["files"]
    run_shards(big, out, num_shards=5)
    run_shards(big, fresh, num_shards=5)
    ours, reference = tree(out), tree(fresh)
    assert {k: v for k, v in ours.items() if k != "_SUCCESS"} == {
        k: v for k, v in reference.items() if k != "_SUCCESS"
    }
    touched = {f"shards/wav-16000/shard-{shard_of(r['track_id'], 5):05d}.tar" for r in added}
    assert len(touched) < 5
    after = mtimes(out)
    for logical in (f"shards/wav-16000/shard-{s:05d}.tar" for s in range(5)):
        name = before[logical]["name"]  # a rewritten shard is a new file; the old one is gone
        assert (after.get(name) != stamps[name]) == (logical in touched), logical


def test_two_worker_processes_write_the_same_bytes(catalog, published, tmp_path):
    out = str(tmp_path / "mp")
    run_shards(os.path.join(catalog, "tracks.parquet"), out,
               beam_args=["--direct_num_workers", "2", "--direct_running_mode", "multi_processing"])  # fmt: skip
    assert tree(out) == tree(published)


def test_fewer_shards_and_streams_leave_no_stale_files(catalog, tmp_path):
    manifest, out = os.path.join(catalog, "tracks.parquet"), str(tmp_path / "out")
    run_shards(manifest, out, num_shards=4)
    config = AudioConfig(wav_rates=(16000,), profiles=FAST_CONFIG.profiles[:1])
    run_shards(manifest, out, num_shards=2, config=config)
    files = sorted(tree(out))
    assert not [
        f
        for f in files
        if "shard-00002" in f or "part-00003" in f or "wav-22050" in f or "ferraro" in f
    ]
    assert len([f for f in files if f.startswith("shards/")]) == 4


def test_glob_input_uses_relative_paths_as_ids(catalog, tmp_path):
    out = str(tmp_path / "out")
    body = run_shards(os.path.join(catalog, "audio/**/*.*"), out, num_shards=1)
    index = AudioIndex.open(out)
    assert body["counts"]["failed"] == 0
    assert all(re.match(r"^[a-z]+/\d{5}\.(mp3|flac|ogg|wav|m4a)$", t) for t in index.track_ids)


def test_killed_run_is_unpublished_and_a_rerun_completes_identically(catalog, published, tmp_path):
    out = str(tmp_path / "out")
    cmd = [sys.executable, "-m", "duet.cli", "shards", "--tracks", os.path.join(catalog, "tracks.parquet"),
           "--output", out, "--streams", "wav-16000,wav-22050,mel-alonso,mel-ferraro",
           "--max-duration", "60", "--num-shards", "3"]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    reports = os.path.join(out, "reports")
    while not (os.path.isdir(reports) and os.listdir(reports)) and time.monotonic() < deadline:
        time.sleep(0.01)
    proc.kill()
    proc.wait()
    assert publish.read_success(out) is None
    with pytest.raises(publish.NotPublished):
        AudioIndex.open(out)
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    assert tree(out) == tree(published)


def test_success_marker_records_counts_config_and_input_fingerprint(published):
    body = publish.require_success(published)
    assert body["counts"]["failed_by_stage"] == {"decode": 1, "read": 1, "validate": 2}
    assert body["streams"] == ["wav-16000", "wav-22050", "mel-alonso", "mel-ferraro"]
    assert (
        len(body["inputs"]["tracks"]["fingerprint"]) == 64 and body["config"]["wav_format"] == "npy"
    )
