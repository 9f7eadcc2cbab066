"""The features import end to end with the real Beam runner: a Melon tree with every kind of
bad array becomes a mel stream that reads back equal to the sources, with failures, statistics
over the training split, identical re-runs, resumption after a kill, and one job per root."""

import os
import subprocess
import sys
import tarfile
import time

import numpy as np
import pytest

from duet import publish, schemas
from duet.errors import DuetError
from duet.index import AudioIndex
from duet.pipelines.beam_io import make_pipeline
from duet.pipelines.features import job as features_job
from duet.pipelines.features.profile import presets
from duet.pipelines.shardset.job import RootTaken
from duet.pipelines.shardset.stats import BandStats, merge_in_order
from tests.support.helpers import crash_on_call, run_shards, tree
from tests.support.melon import write_melon
from tests.support.s3 import BUCKET, assert_same_generation
from tests.support.tables import write_splits

MELON = presets()["melon"]


def run_import(source: str, output: str, *, beam_args: list[str] | None = None,
               **options) -> dict:  # fmt: skip
    """Run the real import (FnApiRunner) and return its ``_SUCCESS`` body."""
    job = features_job.FeaturesJob(input=source, output=output, profile=options.pop("profile", MELON),
                                   **{"num_shards": 3, **options})  # fmt: skip
    pipeline = make_pipeline(beam_args or [])
    features_job.build(pipeline, job)
    pipeline.run().wait_until_finish()
    return publish.require_success(output)


def slow_import(source: str, output: str) -> None:
    """An import that stalls after its first shard, for a test to kill it there."""
    real = features_job.write_shard

    def stalling(*args):
        report = real(*args)
        time.sleep(120)
        return report

    features_job.write_shard = stalling
    run_import(source, output)


def mtimes(root: str) -> dict[str, int]:
    return {os.path.relpath(os.path.join(d, n), root): os.stat(os.path.join(d, n)).st_mtime_ns
            for d, _, names in os.walk(root) for n in names}  # fmt: skip


def _save(path: str, array: np.ndarray, **kw) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    np.save(path, array, **kw)


@pytest.fixture(scope="module")
def melon(tmp_path_factory):
    """The miniature Melon plus every other kind of bad file a download can hold."""
    mini = write_melon(str(tmp_path_factory.mktemp("melon")), songs=48, playlists=24)
    bad = {"900001": np.zeros((48, 100), np.float32), "900002": np.zeros((48, 0), np.float32),
           "900003": np.zeros((2, 48, 300), np.float32),
           "900004": np.full((48, 300), np.nan, np.float32)}  # fmt: skip
    for song, array in bad.items():
        _save(mini.path(song), array)
    _save(mini.path("900005"), np.array([{"x": 1}], dtype=object), allow_pickle=True)
    _save(os.path.join(mini.arena_mel, "5", "900006.npy"), np.zeros((48, 300), np.float32))
    with open(os.path.join(mini.arena_mel, "900", "listing.txt"), "w") as f:
        f.write("not an array\n")
    return mini


@pytest.fixture(scope="module")
def imported(melon, tmp_path_factory):
    out = str(tmp_path_factory.mktemp("imported") / "data")
    return out, run_import(melon.arena_mel, out)


def test_every_array_is_indexed_or_failed_with_its_reason(melon, imported):
    out, body = imported
    index = AudioIndex.open(out)
    assert sorted(index.track_ids) == sorted(melon.arrays)
    reasons = {f["track_id"]: (f["stage"], f["error"]) for f in index.failures().to_pylist()}
    expected = {
        melon.forty_bands: ("validate", "40 bands"), melon.truncated: ("parse", "truncated"),
        "900001": ("validate", "too short: 100 frames < 256"),
        "900002": ("validate", "zero frames"), "900003": ("validate", "3 dimension(s)"),
        "900004": ("validate", "non-finite"), "900005": ("parse", "pickled .npy"),
        "900006": ("source", "Melon keeps song 900006 in 900/900006.npy"),
    }  # fmt: skip
    assert set(reasons) == set(expected)
    for song, (stage, reason) in expected.items():
        assert reasons[song][0] == stage and reason in reasons[song][1], (song, reasons[song])
    counts = body["counts"]
    assert (
        counts["input_rows"]
        == len(melon.arrays) + len(expected)
        == counts["indexed"] + counts["failed"]
    )
    assert counts["ignored_files"] == 1 and melon.missing not in index.track_ids
    assert body["job"] == "features" and body["streams"] == ["mel-melon"]


def test_the_imported_stream_reads_back_equal_to_the_sources_transposed(melon, imported):
    index = AudioIndex.open(imported[0])
    for song, source in melon.arrays.items():
        expected = source.T.astype(np.float16)
        np.testing.assert_array_equal(index.load(song, "mel-melon", verify=True), expected)
        np.testing.assert_array_equal(index.read_frames(song, "mel-melon", 7, 256), expected[7:263])
        entry = index.entry(song, "mel-melon")
        assert (entry.length, entry.width, entry.dtype) == (source.shape[1], 48, "float16")


def test_index_rows_declare_the_imported_profile(imported):
    rows = schemas.read_table(os.path.join(imported[0], "index"), schemas.AUDIO_INDEX).to_pylist()
    for r in rows:
        assert (r["stream"], r["profile"], r["n_mels"], r["sample_rate"], r["format"]) == (
            "mel-melon", "melon", 48, 16000, "npy")  # fmt: skip
        assert r["duration"] == pytest.approx(r["frames"] * 256 / 16000)


def test_members_are_webdataset_samples_with_sidecars(imported):
    import webdataset as wds

    out = imported[0]
    folder = os.path.join(out, "shards", "mel-melon")
    urls = sorted(os.path.join(folder, n) for n in os.listdir(folder))
    samples = list(wds.WebDataset(urls, shardshuffle=False).decode())
    index = AudioIndex.open(out)
    assert sorted(s["json"]["track_id"] for s in samples) == index.track_ids
    for s in samples:
        assert s["json"]["source_orientation"] == "bands-frames" and s["json"]["profile"] == "melon"
        np.testing.assert_array_equal(s["npy"], index.load(s["json"]["track_id"], "mel-melon"))
    for url in urls:
        with tarfile.open(url) as tar:
            assert all(m.mtime == 0 and m.uid == 0 for m in tar.getmembers())


def test_statistics_cover_the_training_split_of_the_splits_table(melon, tmp_path):
    songs = sorted(melon.arrays)
    splits = write_splits(str(tmp_path / "tables"),
                          {s: "train" if i % 3 else "test" for i, s in enumerate(songs)})  # fmt: skip
    with open(os.path.join(splits, "_SUCCESS"), "w") as f:
        f.write("{}")
    out = str(tmp_path / "out")
    body = run_import(melon.arena_mel, out, splits=splits)
    stats = AudioIndex.open(out).stats("melon")
    train = [
        BandStats.of(melon.arrays[s].T.astype(np.float16)) for i, s in enumerate(songs) if i % 3
    ]
    direct = merge_in_order(train)
    assert (
        stats.split == "train" and body["stats_split"] == "train" and stats.frames == direct.count
    )
    np.testing.assert_allclose(stats.mean, direct.mean, rtol=1e-6)
    np.testing.assert_allclose(stats.std, direct.std, rtol=1e-6)
    assert body["counts"]["with_split"] == len(songs) and "splits" in body["inputs"]


def test_a_splits_table_without_the_imported_ids_is_refused(melon, tmp_path):
    splits = write_splits(str(tmp_path / "tables"), {"other-dataset-1": "train"})
    with open(os.path.join(splits, "_SUCCESS"), "w") as f:
        f.write("{}")
    out = str(tmp_path / "out")
    with pytest.raises(features_job.SplitsUnmatched, match="none of the .* arrays"):
        run_import(melon.arena_mel, out, splits=splits)
    assert publish.read_success(out) is None


def test_an_unpublished_splits_table_is_refused(melon, tmp_path):
    splits = write_splits(str(tmp_path / "tables"), {s: "train" for s in melon.arrays})
    os.remove(os.path.join(splits, "_SUCCESS"))  # its job failed, or is still running
    with pytest.raises(DuetError, match="not published"):
        run_import(melon.arena_mel, str(tmp_path / "out"), splits=splits)


def test_rerun_is_byte_identical_and_rewrites_nothing(melon, imported, tmp_path):
    out = str(tmp_path / "again")
    run_import(melon.arena_mel, out)
    before, stamps = tree(out), mtimes(out)
    run_import(melon.arena_mel, out)
    assert tree(out) == before == tree(imported[0])
    after = mtimes(out)
    assert all(
        after[p] == stamps[p] for p in stamps if p.startswith(("shards", "index", "reports"))
    )


def test_a_crashed_import_resumes_keeping_finished_shards(melon, imported, tmp_path, monkeypatch):
    out = str(tmp_path / "crashed")
    real = features_job.write_shard
    monkeypatch.setattr(features_job, "write_shard", crash_on_call(real, 3))
    with pytest.raises(RuntimeError, match="worker killed"):
        run_import(melon.arena_mel, out)
    assert publish.read_success(out) is None
    finished = mtimes(out)
    monkeypatch.setattr(features_job, "write_shard", real)
    run_import(melon.arena_mel, out)
    assert tree(out) == tree(imported[0])
    kept = [p for p in finished if p.startswith("shards/") and mtimes(out)[p] == finished[p]]
    assert len(kept) == 2


def test_a_killed_import_is_unpublished_and_a_rerun_completes_identically(
    melon, imported, tmp_path
):
    out = str(tmp_path / "killed")
    code = "import sys; from tests.test_features_job import slow_import; slow_import(*sys.argv[1:])"
    proc = subprocess.Popen([sys.executable, "-c", code, melon.arena_mel, out], cwd=os.getcwd(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    deadline = time.monotonic() + 120
    reports = os.path.join(out, "reports")
    while not (os.path.isdir(reports) and os.listdir(reports)) and time.monotonic() < deadline:
        time.sleep(0.01)
    proc.kill()
    proc.wait()
    assert publish.read_success(out) is None
    run_import(melon.arena_mel, out)
    assert tree(out) == tree(imported[0])


def test_two_worker_processes_write_the_same_bytes(melon, imported, tmp_path):
    out = str(tmp_path / "mp")
    run_import(melon.arena_mel, out,
               beam_args=["--direct_num_workers", "2", "--direct_running_mode", "multi_processing"])  # fmt: skip
    assert tree(out) == tree(imported[0])


def test_fewer_shards_leave_no_stale_files(melon, tmp_path):
    out = str(tmp_path / "out")
    run_import(melon.arena_mel, out, num_shards=4)
    run_import(melon.arena_mel, out, num_shards=2)
    assert not [p for p in tree(out) if "00002" in p or "00003" in p]
    assert len(AudioIndex.open(out).track_ids) == len(melon.arrays)


def test_a_generic_tree_imports_time_major_arrays_and_refuses_duplicate_ids(tmp_path):
    rng = np.random.default_rng(4)
    arrays = {f"{d}/{name}": rng.normal(size=(300 + i, 96)).astype(np.float32)
              for i, (d, name) in enumerate([("a", "x"), ("a", "y"), ("b", "x"), ("b", "z")])}  # fmt: skip
    for rel, array in arrays.items():
        _save(str(tmp_path / "feats" / f"{rel}.npy"), array)
    (tmp_path / "jamendo.yaml").write_text("n_mels: 96\nsample_rate: 16000\nhop_length: 256\n")
    from duet.pipelines.features.profile import resolve

    jamendo = resolve(str(tmp_path / "jamendo.yaml"))
    by_stem = str(tmp_path / "stem")
    run_import(str(tmp_path / "feats" / "**" / "*.npy"), by_stem, profile=jamendo, layout="npy",
               orientation="frames-bands")  # fmt: skip
    index = AudioIndex.open(by_stem)
    assert index.track_ids == ["y", "z"]
    np.testing.assert_array_equal(index.load("z", "mel-jamendo"), arrays["b/z"].astype(np.float16))
    duplicates = [f for f in index.failures().to_pylist() if f["track_id"] == "x"]
    assert len(duplicates) == 2 and all(
        "duplicate track id: 2 arrays" in f["error"] for f in duplicates
    )
    by_path = str(tmp_path / "path")
    run_import(str(tmp_path / "feats"), by_path, profile=jamendo, layout="npy",
               orientation="frames-bands", id_from="path")  # fmt: skip
    assert AudioIndex.open(by_path).track_ids == sorted(arrays)


def test_an_import_never_shares_a_root_with_audio_shards(melon, imported, catalog, tmp_path):
    audio = str(tmp_path / "audio")
    run_shards(os.path.join(catalog, "tracks.parquet"), audio, num_shards=1)
    with pytest.raises(RootTaken, match="holds the shards of `duet shards`"):
        run_import(melon.arena_mel, audio)
    with pytest.raises(RootTaken, match="holds the shards of `duet features import`"):
        run_shards(os.path.join(catalog, "tracks.parquet"), imported[0])
    assert publish.require_success(audio)["job"] == "shards"


def test_an_import_of_nothing_usable_publishes_nothing(tmp_path):
    _save(str(tmp_path / "arena_mel" / "0" / "1.npy"), np.zeros((40, 300), np.float32))
    out = str(tmp_path / "out")
    with pytest.raises(features_job.NothingImported, match="no array of .* could be imported"):
        run_import(str(tmp_path / "arena_mel"), out)
    assert publish.read_success(out) is None


@pytest.mark.slow
def test_an_import_from_a_bucket_writes_what_a_local_run_writes(s3, melon, imported):  # noqa: F811
    source = s3.upload(melon.arena_mel, "arena_mel")
    body = run_import(source, f"s3://{BUCKET}/melon-data", beam_args=s3.args)
    assert_same_generation(tree(imported[0]), s3.tree("melon-data"), skip=("failures/",))
    assert body["counts"] == publish.require_success(imported[0])["counts"]
