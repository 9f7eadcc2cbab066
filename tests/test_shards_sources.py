"""The shards job records how each source was read: damaged sources are found with one query
on the index, counted in the summary, and unreadable URIs fail with the way out."""

import os
import re
import subprocess
import sys

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from duet import publish, schemas
from duet.index import AudioIndex
from tests.support.helpers import FAST_CONFIG, run_shards, stored, tree, write_manifest

NAMES = ["clean.mp3", "clean.flac", "clean.ogg", "clean.opus", "clean.wav", "clean.m4a",
         "joined-same.mp3", "joined-rates.mp3", "joined-channels.mp3", "cut.mp3", "chained.ogg",
         "understated.flac", "peak2.wav", "peak8.wav", "stray.wav"]  # fmt: skip
URLS = ["http://example.com/a.mp3", "https://example.com/b.flac"]


@pytest.fixture(scope="module")
def sources_run(damaged_files, tmp_path_factory):
    root = tmp_path_factory.mktemp("sources")
    rows = [{"track_id": name, "audio_uri": damaged_files[name]} for name in NAMES]
    rows += [{"track_id": url, "audio_uri": url} for url in URLS]
    manifest = write_manifest(str(root / "tracks.parquet"), rows)
    out = str(root / "out")
    return manifest, out, run_shards(manifest, out)


def index_table(out: str) -> pa.Table:
    table = schemas.read_table(os.path.join(out, "index"), schemas.AUDIO_INDEX)
    return table.filter(pc.equal(table["stream"], "wav-16000"))


def ids(table: pa.Table) -> list[str]:
    return sorted(table["track_id"].to_pylist())


def test_every_input_row_is_indexed_or_failed(sources_run):
    _, out, body = sources_run
    index = AudioIndex.open(out)
    failed = [f["track_id"] for f in index.failures().to_pylist()]
    assert sorted(index.track_ids + failed) == sorted(NAMES + URLS)
    assert body["counts"]["indexed"] + body["counts"]["failed"] == len(NAMES + URLS)


def test_cut_and_long_sources_are_found_with_one_query(sources_run):
    table = index_table(sources_run[1])
    assert ids(table.filter(pc.equal(table["length_check"], "short"))) == ["cut.mp3"]
    assert ids(table.filter(pc.equal(table["length_check"], "long"))) == ["understated.flac"]
    cut = table.filter(pc.equal(table["track_id"], "cut.mp3")).to_pylist()[0]
    assert cut["declared_duration"] == pytest.approx(4.0, abs=0.01)
    assert cut["source_duration"] == pytest.approx(2.0, abs=0.1)
    assert "cut short" in cut["decode_note"]


def test_index_names_the_decoder_and_why_a_second_one_was_used(sources_run):
    table = index_table(sources_run[1])
    rows = {r["track_id"]: r for r in table.to_pylist()}
    for name in ("joined-same.mp3", "joined-rates.mp3", "joined-channels.mp3", "chained.ogg"):
        assert rows[name]["decoder"].startswith("ffmpeg") and rows[name]["length_check"] == "ok"
        assert rows[name]["source_duration"] == pytest.approx(4.0, abs=0.1)
        assert rows[name]["decode_note"].startswith("libsndfile decoded 2.000 s")
    assert rows["clean.mp3"]["decoder"].startswith("libsndfile")
    assert rows["clean.mp3"]["decode_note"] is None and rows["clean.mp3"]["length_check"] == "ok"


def test_over_range_sources_are_found_with_one_query(sources_run):
    table = index_table(sources_run[1])
    clipped = table.filter(pc.greater(table["clipped"], 0))
    assert ids(clipped) == ["peak2.wav", "peak8.wav"]
    gains = dict(zip(clipped["track_id"].to_pylist(), clipped["gain"].to_pylist(), strict=True))
    assert gains == {
        "peak2.wav": pytest.approx(0.5, rel=0.01),
        "peak8.wav": pytest.approx(0.125, rel=0.01),
    }


def failures(out: str) -> dict[str, dict]:
    return {f["track_id"]: f for f in AudioIndex.open(out).failures().to_pylist()}


def test_stray_sample_fails_with_its_reason(sources_run):
    stray = failures(sources_run[1])["stray.wav"]
    assert stray["stage"] == "validate" and "isolated sample" in stray["error"]


def test_urls_fail_naming_the_schemes_that_are_read(sources_run):
    for url in URLS:
        failure = failures(sources_run[1])[url]
        error = failure["error"]
        assert failure["stage"] == "read" and "URLs are not read" in error
        assert all(s in error for s in ("local path", "file://", "s3://", "gs://"))
        assert "apache-beam[gcp]" not in error


def test_success_marker_counts_checks_and_gains(sources_run):
    counts = sources_run[2]["counts"]
    assert counts["decode_check"] == {"ok": 12, "short": 1, "long": 1, "undeclared": 0,
                                      "decoded_again": 6}  # fmt: skip
    assert counts["over_range"] == {"scaled_tracks": 2, "clipped_tracks": 2,
                                    "clipped_samples": counts["over_range"]["clipped_samples"],
                                    "min_gain": pytest.approx(0.125, rel=0.01)}  # fmt: skip
    assert counts["over_range"]["clipped_samples"] > 0.6 * 2 * 44100 * 2


def test_command_prints_the_checks_and_reruns_byte_identically(sources_run, tmp_path):
    manifest, out, _ = sources_run
    again = str(tmp_path / "again")
    result = subprocess.run(
        [sys.executable, "-m", "duet.cli", "shards", "--tracks", manifest, "--output", again,
         "--streams", "wav-16000,wav-22050,mel-alonso,mel-ferraro", "--max-duration", "60",
         "--num-shards", "3"], capture_output=True, text=True)  # fmt: skip
    assert result.returncode == 0, result.stderr
    for pattern in (r"decode length check +12 ok, 1 short, 1 long, 0 undeclared",
                    r"decoded again +6 ", r"over full scale +2 tracks",
                    r"scaled down +2 tracks \(min gain 0\.125\)", r"cut\.mp3 +short",
                    r"understated\.flac +long"):  # fmt: skip
        assert re.search(pattern, result.stdout), (pattern, result.stdout)
    assert publish.read_success(again)["config"] == FAST_CONFIG.to_dict()
    assert tree(again) == tree(out)


def test_an_index_written_before_these_columns_still_reads(sources_run, tmp_path):
    old = [f for f in schemas.AUDIO_INDEX if f.name not in
           ("decoder", "source_duration", "declared_duration", "length_check", "decode_note",
            "clipped", "gain")]  # fmt: skip
    part = pq.read_table(stored(sources_run[1], "index/part-00000.parquet"))
    os.makedirs(tmp_path / "index")
    pq.write_table(part.select([f.name for f in old]), tmp_path / "index" / "part-00000.parquet")
    table = schemas.read_table(str(tmp_path / "index"), schemas.AUDIO_INDEX)
    assert table.num_rows == part.num_rows and table["length_check"].null_count == table.num_rows
