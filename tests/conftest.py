"""Fixtures that build real inputs: audio files in several codecs made with the real ffmpeg,
every kind of bad input, the sample catalogue, one published shards run, the datasets the
trainer's tests read (the sample catalogue through every job), and an S3 endpoint."""

from __future__ import annotations

import os
import shutil
import subprocess

import numpy as np
import pytest
import soundfile

from duet.cli import main
from duet.ffmpeg import ffmpeg_path
from duet.pipelines.audio.mel import presets
from duet.pipelines.audio.track import AudioConfig
from duet.sample_catalog import encode, generate
from duet.synth import GENRES, render
from tests.support.helpers import damaged_audio, run_shards, tone, unsupported_codec_wav
from tests.support.s3 import moto_s3

CODECS = ("mp3", "flac", "ogg", "wav", "m4a")


@pytest.fixture(scope="session")
def audio_files(tmp_path_factory) -> dict[str, str]:
    """name → path: good files in every codec and layout, and every kind of bad input."""
    root = tmp_path_factory.mktemp("audio")
    files: dict[str, str] = {}
    rng = np.random.default_rng(7)
    music = render(GENRES[1], key=2, tempo=124, seconds=6, sr=44100, channels=2, rng=rng)
    for codec in CODECS:
        files[codec] = str(root / f"music.{codec}")
        encode(music, 44100, codec, files[codec])
    files["mono48k"] = str(root / "mono48k.flac")
    encode(tone(4, 48000), 48000, "flac", files["mono48k"])
    files["6ch"] = str(root / "six.wav")
    soundfile.write(files["6ch"], np.tile(tone(3, 44100), (1, 6)) * 0.5, 44100, subtype="PCM_16")
    files["8k"] = str(root / "phone.wav")
    soundfile.write(files["8k"], tone(3, 8000, freq=300), 8000, subtype="PCM_16")
    files["long"] = str(root / "long.ogg")
    encode(tone(20, 22050), 22050, "ogg", files["long"])
    files["silent"] = str(root / "silent.flac")
    encode(np.zeros((3 * 22050, 1), np.float32), 22050, "flac", files["silent"])
    nan = tone(3, 16000)
    nan[1000:1010] = np.nan
    files["nan"] = str(root / "nan.wav")
    soundfile.write(files["nan"], nan, 16000, subtype="FLOAT")
    files["empty"] = str(root / "empty.mp3")
    open(files["empty"], "wb").close()
    files["text"] = str(root / "text.wav")
    (root / "text.wav").write_text("not audio at all\n")
    files["unsupported"] = str(root / "unsupported.wav")
    unsupported_codec_wav(files["unsupported"])
    with open(files["mp3"], "rb") as f:
        head = f.read(1200)
    files["truncated"] = str(root / "truncated.mp3")
    with open(files["truncated"], "wb") as f:
        f.write(head)
    files["video_only"] = str(root / "video.mp4")
    subprocess.run([ffmpeg_path(), "-v", "error", "-f", "lavfi", "-i", "color=c=black:s=32x32:d=1",
                    "-c:v", "mpeg4", files["video_only"]], check=True)  # fmt: skip
    return files


@pytest.fixture(scope="session")
def catalog(tmp_path_factory) -> str:
    """A small sample catalogue (10 tracks + the broken files)."""
    root = str(tmp_path_factory.mktemp("catalog"))
    generate(root, tracks=10, seed=3)
    return root


@pytest.fixture(scope="session")
def published(catalog, tmp_path_factory) -> str:
    """One published shards run over the sample catalogue."""
    out = str(tmp_path_factory.mktemp("published"))
    run_shards(os.path.join(catalog, "tracks.parquet"), out)
    return out


@pytest.fixture(scope="module")
def s3():
    """A real S3-compatible endpoint on 127.0.0.1 (moto), bucket ``duet``, for one module."""
    with moto_s3() as store:
        yield store


STRATEGIES = "playlist_co,playlist_tco,artist_co,w2v,self,self_mel"


@pytest.fixture(scope="session")
def dataset(catalog, published, tmp_path_factory):
    """The sample catalogue through every job: shards → tables → pairs (2 epochs)."""
    root = str(tmp_path_factory.mktemp("train") / "data")
    shutil.copytree(published, root)
    for argv in (
        ["playlists", "--input", os.path.join(catalog, "mpd"), "--format", "mpd", "--output", root,
         "--tracks", root],
        ["cooccurrence", "--playlists", os.path.join(root, "playlists.parquet"), "--output", root],
        ["embeddings", "w2v", "--playlists", os.path.join(root, "playlists.parquet"), "--output",
         root, "--deterministic", "--epochs", "2"],
        ["pairs", "--data", root, "--strategies", STRATEGIES, "--epochs", "0:2", "--seed", "1"],
    ):  # fmt: skip
        assert main(argv) == 0
    return root


@pytest.fixture(scope="session")
def choi_dataset(catalog, tmp_path_factory):
    """16 and 22.05 kHz waveforms and Choi's mel, with 2 epochs of every crop strategy."""
    root = str(tmp_path_factory.mktemp("choi") / "data")
    config = AudioConfig(wav_rates=(16000, 22050), profiles=(presets()["choi"],), max_duration=60.0)
    run_shards(os.path.join(catalog, "tracks.parquet"), root, config=config)
    argv = ["pairs", "--data", root, "--strategies", "adjacent,random_segment,self,cpc",
            "--epochs", "0:2"]  # fmt: skip
    assert main(argv) == 0
    return root


@pytest.fixture(scope="session")
def ferraro_dataset(catalog, dataset, tmp_path_factory):
    """Genres and CF factors from the Melon-style playlists, then multimodal pairs."""
    root = str(tmp_path_factory.mktemp("ferraro") / "data")
    shutil.copytree(dataset, root)
    melon = os.path.join(root, "melon")
    for argv in (
        ["playlists", "--input", os.path.join(catalog, "melon"), "--format", "melon", "--output",
         melon, "--tracks", os.path.join(catalog, "tracks.parquet"), "--track-key", "melon_song_id",
         "--melon-genres", "both"],
        ["embeddings", "genre-w2v", "--track-meta", os.path.join(melon, "track_meta.parquet"),
         "--output", root, "--deterministic"],
        ["embeddings", "cf", "--playlists", os.path.join(melon, "playlists.parquet"), "--output",
         root, "--factors", "16", "--epochs", "2"],
        ["pairs", "--data", root, "--strategies", "multimodal", "--epochs", "0:2"],
    ):  # fmt: skip
        assert main(argv) == 0
    return root


@pytest.fixture(scope="session")
def damaged_files(tmp_path_factory) -> dict[str, str]:
    """Joined, chained, cut and over-range files, and the clean file of each codec."""
    return damaged_audio(str(tmp_path_factory.mktemp("damaged")))


def pytest_terminal_summary(terminalreporter) -> None:
    """The fault-injection suite's table (tests/test_faults.py), when it ran."""
    from tests.support import faults

    lines = faults.table()
    if lines:
        terminalreporter.write_sep("-", "fault injection")
        for line in lines:
            terminalreporter.write_line(line)
