"""The command line as a user runs it."""

import os
import subprocess
import sys

import pytest

from duet import ffmpeg


def duet(*args: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "duet.cli", *args], capture_output=True, text=True, **kw
    )


def test_doctor_reports_versions_and_which_ffmpeg():
    result = duet("doctor")
    assert result.returncode == 0, result.stderr
    for word in ("ffmpeg path", "apache-beam", "numpy", "torch", "2.77.0"):
        assert word in result.stdout
    assert "apitools" not in result.stderr


def test_ffmpeg_from_path_wins_over_the_wheel(tmp_path, monkeypatch):
    fake = tmp_path / "ffmpeg"
    fake.write_text("#!/bin/sh\n")
    fake.chmod(0o755)
    monkeypatch.delenv("DUET_FFMPEG", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    ffmpeg.ffmpeg_binary.cache_clear()
    try:
        assert ffmpeg.ffmpeg_binary() == (str(fake), "PATH")
        monkeypatch.setenv("PATH", str(tmp_path / "empty"))
        ffmpeg.ffmpeg_binary.cache_clear()
        assert ffmpeg.ffmpeg_binary()[1] == "imageio-ffmpeg"
    finally:
        ffmpeg.ffmpeg_binary.cache_clear()


def test_bad_ffmpeg_override_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("DUET_FFMPEG", "/no/such/ffmpeg")
    ffmpeg.ffmpeg_binary.cache_clear()
    try:
        with pytest.raises(ffmpeg.FfmpegNotFound, match="DUET_FFMPEG"):
            ffmpeg.ffmpeg_binary()
    finally:
        ffmpeg.ffmpeg_binary.cache_clear()


def test_shards_command_prints_a_summary_and_the_failures(catalog, tmp_path):
    result = duet("shards", "--tracks", os.path.join(catalog, "tracks.parquet"), "--output", str(tmp_path / "out"),
                  "--streams", "wav-16000,mel-alonso", "--num-shards", "2")  # fmt: skip
    assert result.returncode == 0, result.stderr
    for text in (
        "indexed tracks        10",
        "failed at decode",
        "realtime",
        "duet:broken:empty",
        "empty file",
    ):
        assert text in result.stdout
    assert "trk/s" in result.stderr


def test_unknown_stream_is_refused_before_anything_runs(tmp_path):
    result = duet(
        "shards",
        "--tracks",
        "x.parquet",
        "--output",
        str(tmp_path),
        "--streams",
        "wav-16000,spec-1",
    )
    assert result.returncode != 0 and "unknown stream 'spec-1'" in result.stderr
    assert not os.listdir(tmp_path)


def test_sample_catalog_command(tmp_path):
    result = duet(
        "sample-catalog", "--output", str(tmp_path / "c"), "--tracks", "2", "--playlists", "5"
    )
    assert result.returncode == 0, result.stderr
    assert "2 tracks" in result.stdout and (tmp_path / "c" / "tracks.parquet").exists()


def test_unknown_beam_argument_on_a_non_beam_command_is_refused():
    result = duet("doctor", "--runner", "DataflowRunner")
    assert result.returncode != 0 and "unrecognized arguments" in result.stderr


def test_an_object_store_that_keeps_failing_is_named_as_such_not_as_a_bug():
    from botocore.exceptions import ConnectionClosedError

    from duet.cli.commands import explain

    message, status = explain(ConnectionClosedError(endpoint_url="http://127.0.0.1:9"))
    assert status == 1 and message.startswith("the object store kept failing")
    assert "a bug" not in message and "re-run" in message
    wrapped = RuntimeError("reading index")
    wrapped.__cause__ = ConnectionResetError("reset by peer")
    assert explain(wrapped)[0].startswith("the object store kept failing")
    assert "a bug in duet" in explain(KeyError("x"))[0]
